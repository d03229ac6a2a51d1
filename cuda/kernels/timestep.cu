// The sinusoidal timestep features of the time conditioning (the CPU's timestep.cpp), in double as the CPU
// computes them, one thread per (b, i).
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// out[b, i] = cos(sigma_b f_i), out[b, half + i] = sin(sigma_b f_i), f_i = exp(-ln(10000) i / half), in double
// as the CPU computes it.                                       out: (B, 2 half), sigma: (B); one thread per (b, i)
__global__ void timestep_kernel(float* out, const float* sigma, int B, int half) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= int64_t(B) * half) return;
  const int b = int(t / half), i = int(t % half);
  const double freq = exp(-log(10000.0) * double(i) / double(half));
  const double angle = double(sigma[b]) * freq;
  out[int64_t(b) * 2 * half + i] = float(cos(angle));
  out[int64_t(b) * 2 * half + half + i] = float(sin(angle));
}

}  // namespace

void CudaOps::do_timestep_embedding(Tensor& out, const Tensor& sigma) {
  const char* op = "timestep_embedding";
  check_f32(op, {&out, &sigma});  // the shapes were checked by Ops::timestep_embedding
  const int B = int(out.shape[0]), half = int(out.shape[1] / 2);
  const int64_t n = int64_t(B) * half;
  if (n)
    DUO_LAUNCH(timestep_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(out), fptr(sigma), B, half);
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
