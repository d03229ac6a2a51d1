// Optimiser ops over flat fp32 buffers: deterministic sum of squares (global grad norm), scaling, fused AdamW
// and the EMA of the weights. The elementwise updates evaluate the CPU backend's expressions in the same fp32
// order with the same host-precomputed constants.
//
// sum_squares is a two-stage reduction in double with a fixed shape: stage 1, block c sums chunk c
// (kSumChunk elements, strided over its threads, then a fixed tree); stage 2, one block sums the partials the
// same way. Nothing depends on scheduling or atomics, so the norm is bit-reproducible on any GPU run.
#include "backend/comm.h"
#include "backend/weight_copies.h"
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

constexpr int kSumThreads = 256;
constexpr int64_t kSumChunk = 8192;  // elements per stage-1 block
static_assert(kShardGrain % kSumChunk == 0, "ZeRO-1's shards start at whole chunks");

__global__ void __launch_bounds__(kSumThreads)
    sum_squares_partial_kernel(double* partial, const float* x, int64_t n) {
  DUO_SHARED(double, scratch, 32);
  const int64_t c = blockIdx.x, end = (c + 1) * kSumChunk < n ? (c + 1) * kSumChunk : n;
  double s = 0.0;
  for (int64_t i = c * kSumChunk + threadIdx.x; i < end; i += kSumThreads) s += double(x[i]) * double(x[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[c] = s;
}

__global__ void __launch_bounds__(kSumThreads)
    sum_partials_kernel(double* total, const double* partial, int64_t chunks) {
  DUO_SHARED(double, scratch, 32);
  double s = 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += kSumThreads) s += partial[c];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *total = s;
}

__global__ void scale_kernel(float* x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= s;
}

// PyTorch's AdamW (single-tensor path), with step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= step_size m / (sqrt(v) / bc2_sqrt + eps)
struct AdamWConsts {
  float decay, b1, b2, eps, step_size, bc2_sqrt;
};
// With p16: the weights' bf16 working copy, written as they are updated (backend/weight_copies.h).
__global__ void adamw_kernel(float* p, __nv_bfloat16* p16, const float* g, float* m, float* v, AdamWConsts c,
                             int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    const float pi = p[i] * c.decay;
    const float mi = c.b1 * m[i] + (1.0f - c.b1) * gi;
    const float vi = c.b2 * v[i] + (1.0f - c.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float updated = pi - c.step_size * mi / (sqrtf(vi) / c.bc2_sqrt + c.eps);
    p[i] = updated;
    if (p16) p16[i] = __float2bfloat16_rn(updated);
  }
}

// shadow -= (1 - decay) (shadow - params)
__global__ void ema_kernel(float* s, const float* p, float rate, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s[i] -= rate * (s[i] - p[i]);
}

}  // namespace

double CudaOps::do_sum_squares(const Tensor& x) {
  const char* op = "sum_squares";
  check_f32(op, {&x});
  check_numel(op, "x", x, x.numel());
  const int64_t n = x.numel(), chunks = (n + kSumChunk - 1) / kSumChunk;
  if (n == 0) return 0.0;
  double* partial = static_cast<double*>(workspace(size_t(chunks + 1) * sizeof(double)));
  cudaStream_t s = as_stream(stream_);
  DUO_LAUNCH(sum_squares_partial_kernel, unsigned(chunks), kSumThreads, 0, s)(partial, fptr(x), n);
  DUO_LAUNCH(sum_partials_kernel, 1, kSumThreads, 0, s)(partial + chunks, partial, chunks);
  DUO_CU_LAUNCHED(op);
  double total = 0.0;
  DUO_CU(op, cudaMemcpyAsync(&total, partial + chunks, sizeof(double), cudaMemcpyDeviceToHost, s));
  wait_for_stream(op);
  return total;
}

int64_t CudaOps::sum_squares_chunk() const { return kSumChunk; }

// Stage 1 alone; the chunk sums come back to the host.
std::vector<double> CudaOps::do_sum_squares_chunks(const Tensor& x) {
  const char* op = "sum_squares_chunks";
  check_f32(op, {&x});
  check_numel(op, "x", x, x.numel());
  const int64_t n = x.numel(), chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> out((size_t)chunks);
  if (n == 0) return out;
  double* partial = static_cast<double*>(workspace(size_t(chunks) * sizeof(double)));
  cudaStream_t s = as_stream(stream_);
  DUO_LAUNCH(sum_squares_partial_kernel, unsigned(chunks), kSumThreads, 0, s)(partial, fptr(x), n);
  DUO_CU_LAUNCHED(op);
  DUO_CU(op, cudaMemcpyAsync(out.data(), partial, size_t(chunks) * sizeof(double), cudaMemcpyDeviceToHost, s));
  wait_for_stream(op);
  return out;
}

void CudaOps::do_scale(Tensor& x, double s) {
  check_f32("scale", {&x});
  check_numel("scale", "x", x, x.numel());
  const int64_t n = x.numel();
  if (n) DUO_LAUNCH(scale_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(x), float(s), n);
  DUO_CU_LAUNCHED("scale");
}

void CudaOps::do_adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) {
  const char* op = "adamw";
  check_f32(op, {&params, &grads, &m, &v});
  checks::adamw(str("CudaOps::", op), params, grads, m, v, a.step);
  const int64_t n = params.numel();
  const AdamWConsts c{float(1.0 - a.lr * a.weight_decay),
                      float(a.beta1),
                      float(a.beta2),
                      float(a.eps),
                      float(a.lr / (1.0 - std::pow(a.beta1, double(a.step)))),
                      float(std::sqrt(1.0 - std::pow(a.beta2, double(a.step))))};
  auto* p16 = static_cast<__nv_bfloat16*>(copies_->follows(params));  // the working copy, when params have one
  if (n)
    DUO_LAUNCH(adamw_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(params), p16, fptr(grads),
                                                                            fptr(m), fptr(v), c, n);
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_ema_update(Tensor& shadow, const Tensor& params, double decay) {
  const char* op = "ema_update";
  check_f32(op, {&shadow, &params});
  check_numel(op, "shadow", shadow, shadow.numel());
  check_numel(op, "params", params, shadow.numel());
  const int64_t n = shadow.numel();
  if (n)
    DUO_LAUNCH(ema_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(shadow), fptr(params),
                                                                          float(1.0 - decay), n);
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
