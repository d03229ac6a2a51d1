// DUO's curriculum input (Ops::gaussian_relaxation, Ops::embed_relaxed): the Gaussian relaxation w = α̃·e_x + σ̃·ε of every clean
// token, written as the soft-input logits w/τ (B, L, V), and its argmax z_t. One block per row: each thread
// draws whole Philox blocks of the row (four normals, the CPU's normal4 on the same counters, so the two
// backends draw the same ε) and writes them as consecutive floats; the argmax is a block reduction over
// (value, index) pairs that keeps the first maximum, as the CPU's sequential scan does. Without soft logits
// (distillation) only z is written.
#include <climits>

#include "math/relaxation.h"
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// grid (B·L), block kThreads. y (B·L, V) or null (only z), z (B·L), x (B·L), scales (B, 2) as (α̃, σ̃).
__global__ void gaussian_relaxation_kernel(float* y, int32_t* z, const int32_t* x, const double* scales, int L, int V,
                                           float beta, Philox noise) {
  DUO_SHARED(float, warp_v, 32);
  DUO_SHARED(int, warp_j, 32);
  const int64_t n = blockIdx.x;
  const int xn = valid_id(x[n], V);
  const float at = float(scales[2 * (n / L)]), st = float(scales[2 * (n / L) + 1]);
  const uint64_t first = uint64_t(n) * uint64_t(V), last = first + uint64_t(V);  // the row's normals [first, last)
  float best = -INFINITY;
  int best_j = INT_MAX;
  for (uint64_t blk = (first >> 2) + threadIdx.x; blk < (last + 3) >> 2; blk += blockDim.x) {
    float eps[4];
    noise.normal4(blk, eps);
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t i = 4 * blk + uint64_t(lane);
      if (i < first || i >= last) continue;  // the neighbouring rows' share of a boundary block
      const int j = int(i - first);
      const float w = relaxed_coordinate(eps[lane], j == xn, at, st);
      if (y) y[i] = w * beta;  // y is row-major (B·L, V): element (n, j) is normal number i
      keep_first_max(best, best_j, w, j);
    }
  }
  const int j = block_first_argmax(best, best_j, warp_v, warp_j);
  if (threadIdx.x == 0) z[n] = j;
}

// embed_relaxed's softmax: p16[n, :] = bf16(softmax(w·beta)) of row n's relaxation w (the kernel above's draws
// and arithmetic) and z[n] = argmax w, without writing w: each thread draws its Philox blocks of the row three times
// (the maximum and the argmax, the sum of exponentials, the probabilities), a few dozen operations an entry where
// writing and reading w back would move 8 bytes. grid (B·L), block kThreads.
__global__ void relaxed_softmax_kernel(__nv_bfloat16* p16, int32_t* z, const int32_t* x, const double* scales, int L,
                                       int V, float beta, Philox noise) {
  DUO_SHARED(float, scratch, 32);
  DUO_SHARED(float, warp_v, 32);
  DUO_SHARED(int, warp_j, 32);
  const int64_t n = blockIdx.x;
  const int xn = valid_id(x[n], V);
  const float at = float(scales[2 * (n / L)]), st = float(scales[2 * (n / L) + 1]);
  const uint64_t first = uint64_t(n) * uint64_t(V), last = first + uint64_t(V);
  auto for_each_w = [&](auto&& f) {  // f(j, w_j) for this thread's entries of the row
    for (uint64_t blk = (first >> 2) + threadIdx.x; blk < (last + 3) >> 2; blk += blockDim.x) {
      float eps[4];
      noise.normal4(blk, eps);
      for (int lane = 0; lane < 4; ++lane) {
        const uint64_t i = 4 * blk + uint64_t(lane);
        if (i < first || i >= last) continue;
        const int j = int(i - first);
        f(j, relaxed_coordinate(eps[lane], j == xn, at, st));
      }
    }
  };
  float m = -INFINITY, best = -INFINITY;
  int best_j = INT_MAX;
  for_each_w([&](int j, float w) {
    m = fmaxf(m, w * beta);
    keep_first_max(best, best_j, w, j);
  });
  const int zj = block_first_argmax(best, best_j, warp_v, warp_j);
  if (threadIdx.x == 0) z[n] = zj;
  m = block_max(m, scratch);
  float s = 0.0f;
  for_each_w([&](int, float w) { s += expf(w * beta - m); });
  s = block_sum(s, scratch);
  __nv_bfloat16* q = p16 + int64_t(n) * V;
  for_each_w([&](int j, float w) { q[j] = __float2bfloat16_rn(expf(w * beta - m) / s); });
}

}  // namespace

void CudaOps::do_embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                               double inverse_tau, const Philox& noise, const Tensor& table) {
  const char* op = "embed_relaxed";
  check_f32(op, {&out, &probs, &table});
  check_on_device(op, z);
  check_on_device(op, x);
  check_on_device(op, scales);
  const auto [B, L, V, D] = checks::embed_relaxed(str("CudaOps::", op), out, probs, z, x, scales, inverse_tau, table);
  DUO_CHECK(V < INT_MAX && L < INT_MAX, str("CudaOps::", op), str("rows of ", V, " ids or sequences of ", L,
            " tokens exceed the kernel's int indices"), "");
  check_ids(op, x, V);
  const int64_t N = B * L;
  if (N == 0) return;
  DUO_LAUNCH(relaxed_softmax_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(
      static_cast<__nv_bfloat16*>(probs.data), static_cast<int32_t*>(z.data), iptr(x),
      static_cast<const double*>(scales.data), int(L), int(V), float(inverse_tau), noise);
  DUO_CU_LAUNCHED(op);
  soft_embedding_product(op, out, probs, table, N, V, D);
}

void CudaOps::do_gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales,
                                     double inverse_tau, const Philox& noise) {
  const char* op = "gaussian_relaxation";
  check_f32(op, {&soft_logits});
  check_on_device(op, z);
  check_on_device(op, x);
  check_on_device(op, scales);
  const auto [B, L, V] = checks::gaussian_relaxation(str("CudaOps::", op), soft_logits, z, x, scales, inverse_tau);
  DUO_CHECK(V < INT_MAX && L < INT_MAX, str("CudaOps::", op), str("rows of ", V, " ids or sequences of ", L,
            " tokens exceed the kernel's int indices"), "");
  check_ids(op, x, V);
  if (B * L == 0) return;
  DUO_LAUNCH(gaussian_relaxation_kernel, unsigned(B * L), kThreads, 0, as_stream(stream_))(
      fptr(soft_logits), static_cast<int32_t*>(z.data), iptr(x), static_cast<const double*>(scales.data), int(L),
      int(V), float(inverse_tau), noise);
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
