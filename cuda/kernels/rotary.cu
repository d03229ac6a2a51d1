// Rotary position embedding, rotate-half (GPT-NeoX) convention, base 10000, on packed qkv (B, L, 3D) with
// feature order [q|k|v][head][dim]. For head_dim hd and half = hd/2, the pair (j, j + half) of every q and k
// head at position l turns by angle = l 10000^(-2j/hd):
//   out_j = x_j cos - x_{j+half} sin,   out_{j+half} = x_{j+half} cos + x_j sin
// v is copied; the backward turns by -angle. cos and sin are evaluated in double, as the CPU's table, then
// rounded to fp32, so both backends multiply by the same numbers.
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// One thread per (token n, pair p) with p < H_qk * half (the q and k heads), then per v feature.
// in, out: (N, 3D); direction +1 (forward) or -1 (backward).
__global__ void rotary_kernel(float* out, const float* in, int64_t N, int L, int D, int hd, float direction) {
  const int half = hd / 2, pairs = (2 * D / hd) * half, W = 3 * D;
  const int64_t per_token = pairs + D;  // rotated pairs, then the copied v features
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < N * per_token;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = t / per_token;
    const int p = int(t % per_token);
    const float* x = in + n * W;
    float* y = out + n * W;
    if (p >= pairs) {  // v passes through
      y[2 * D + (p - pairs)] = x[2 * D + (p - pairs)];
      continue;
    }
    const int head = p / half, j = p % half, l = int(n % L);
    const double inv_freq = pow(10000.0, -2.0 * double(j) / double(hd));
    const float c = float(cos(double(l) * inv_freq)), sn = float(direction * sin(double(l) * inv_freq));
    const float x1 = x[head * hd + j], x2 = x[head * hd + j + half];
    y[head * hd + j] = x1 * c - x2 * sn;
    y[head * hd + j + half] = x2 * c + x1 * sn;
  }
}

using checks::RotaryShape;

RotaryShape rotary_shape(const char* op, const Tensor& out, const Tensor& in, int n_heads) {
  check_f32(op, {&out, &in});
  return checks::rotary(str("CudaOps::", op), out, in, n_heads);
}

void launch_rotary(const char* op, cudaStream_t s, Tensor& out, const Tensor& in, const RotaryShape& r, float dir) {
  const int64_t N = r.B * r.L, work = N * (r.D + r.D);  // pairs = D (q and k: 2D features), plus D v features
  if (N == 0) return;
  DUO_LAUNCH(rotary_kernel, blocks_for(work), kThreads, 0, s)(fptr(out), fptr(in), N, int(r.L), int(r.D),
                                                              int(r.hd), dir);
  DUO_CU_LAUNCHED(op);
}

}  // namespace

void CudaOps::do_rotary(Tensor& out, const Tensor& in, int n_heads) {
  const RotaryShape r = rotary_shape("rotary", out, in, n_heads);
  launch_rotary("rotary", as_stream(stream_), out, in, r, +1.0f);
}

void CudaOps::do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) {
  const RotaryShape r = rotary_shape("rotary_backward", din, dout, n_heads);
  launch_rotary("rotary_backward", as_stream(stream_), din, dout, r, -1.0f);
}

}  // namespace duo
