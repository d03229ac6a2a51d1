// LayerNorm (no bias, eps 1e-5, biased variance) fused with the DiT's adaLN modulate:
//   xhat = (x - mean) rstd,   out = (xhat w) (1 + scale[b]) + shift[b]
// x, out: (N = B L, D); w: (D); shift, scale: (B, D) rows of stride ss (column views of the adaLN output), or
// absent (plain LN, the causal model). mean, rstd: (N) fp32, saved for the backward.
//
// Forward and dx: one warp per row (llm.c's layout), statistics in fp32 by warp shuffles, variance from the
// centred values (two passes over the row, as the CPU). The cross-row sums of the backward are deterministic
// without atomics, in two stages (column_sums.cu): fixed chunks of rows into partials in the workspace, then the
// chunks in order — per sequence for dshift/dscale, over all rows for dweight.
// The backward is one pass over dout and x (layernorm_backward_kernel: dx and all three partial sums per chunk)
// when the chunks of the sequences are the chunks of all rows (L a multiple of the chunk, or one sequence), so
// that dweight's partials come out in the same order; otherwise three passes (dx, dshift/dscale, dweight). Both
// give the same bits.
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// grid: ceil(N / warps per block); warp w of block b owns row b * warps + w. out: fp32, or bf16 (the activation
// dtype: the next GEMM's operand, rounded once here).
template <class Out>
__global__ void layernorm_forward_kernel(Out* out, float* mean, float* rstd, const float* x, const float* w,
                                         const float* shift, const float* scale, int64_t ss, int64_t N, int L, int D) {
  const int lane = int(threadIdx.x) % 32;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together
  const float* xr = x + n * D;
  float s = 0.0f;
  for (int d = lane; d < D; d += 32) s += xr[d];
  const float m = warp_sum(s) / float(D);
  float v = 0.0f;
  for (int d = lane; d < D; d += 32) v += (xr[d] - m) * (xr[d] - m);
  const float r = layernorm_row_rstd(v, m, D, lane, n, mean, rstd);
  Out* y = out + n * D;
  const float* sh = shift ? shift + (n / L) * ss : nullptr;
  const float* sc = shift ? scale + (n / L) * ss : nullptr;
  for (int d = lane; d < D; d += 32) y[d] = act_store<Out>(layernorm_modulate_value(xr[d], m, r, w[d], sh, sc, d));
}

// The row means of dxhat = g w (1 + scale) and of dxhat·xhat for row n (a warp per row; every lane gets them), in
// the one summation order both backward paths share, so they give the same bits.
template <class G>
__device__ inline void dxhat_row_means(const G* gr, const float* xr, const float* w, const float* sc, float m,
                                       float r, int D, int lane, float& mean_dxhat, float& mean_dxhat_xhat) {
  float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
  for (int d = lane; d < D; d += 32) {
    const float dxhat = act_load(gr[d]) * w[d] * (sc ? 1.0f + sc[d] : 1.0f);
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * ((xr[d] - m) * r);
  }
  mean_dxhat = warp_sum(sum_dxhat) / float(D);
  mean_dxhat_xhat = warp_sum(sum_dxhat_xhat) / float(D);
}

// dx[n] += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = g w (1 + scale[b]). Warp per row.
template <class G>
__global__ void layernorm_dx_kernel(float* dx, const G* g, const float* x, const float* mean, const float* rstd,
                                    const float* w, const float* scale, int64_t ss, int64_t N, int L, int D) {
  const int lane = int(threadIdx.x) % 32;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  const G* gr = g + n * D;
  const float* xr = x + n * D;
  const float* sc = scale ? scale + (n / L) * ss : nullptr;
  const float m = mean[n], r = rstd[n];
  float mean_dxhat, mean_dxhat_xhat;
  dxhat_row_means(gr, xr, w, sc, m, r, D, lane, mean_dxhat, mean_dxhat_xhat);
  float* dxr = dx + n * D;
  for (int d = lane; d < D; d += 32) {
    const float dxhat = act_load(gr[d]) * w[d] * (sc ? 1.0f + sc[d] : 1.0f);
    dxr[d] += r * (dxhat - mean_dxhat - ((xr[d] - m) * r) * mean_dxhat_xhat);
  }
}

// Stage 1 of dshift[b, d] = sum_l g and dscale[b, d] = sum_l g xhat w: partials over the chunks of each
// sequence, psh/psc[(b·chunks + c)·D + d] for rows l of chunk c in order.    grid (B·chunks, column blocks)
template <class G>
__global__ void layernorm_dmod_partial_kernel(float* psh, float* psc, const G* g, const float* x, const float* mean,
                                              const float* rstd, const float* w, int L, int64_t chunks, int D) {
  const int64_t b = blockIdx.x / chunks, c = blockIdx.x % chunks;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  const int64_t l0 = c * kColumnSumRows, l1 = l0 + kColumnSumRows < L ? l0 + kColumnSumRows : L;
  float sh = 0.0f, sc = 0.0f;
  for (int64_t l = l0; l < l1; ++l) {
    const int64_t n = b * L + l;
    const float gv = act_load(g[n * D + d]);
    sh += gv;
    sc += gv * ((x[n * D + d] - mean[n]) * rstd[n]) * w[d];
  }
  psh[blockIdx.x * int64_t(D) + d] = sh;
  psc[blockIdx.x * int64_t(D) + d] = sc;
}

// Stage 1 of dweight: partial[c, d] = sum over rows n of chunk c (in order) of g xhat (1 + scale[b]).
// grid (chunks, column blocks)                                                        partial: (chunks, D)
template <class G>
__global__ void layernorm_dweight_partial_kernel(float* partial, const G* g, const float* x, const float* mean,
                                                 const float* rstd, const float* scale, int64_t ss, int64_t N, int L,
                                                 int D) {
  const int64_t c = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  float acc = 0.0f;
  const int64_t n1 = (c + 1) * kColumnSumRows < N ? (c + 1) * kColumnSumRows : N;
  for (int64_t n = c * kColumnSumRows; n < n1; ++n) {
    const float a = scale ? 1.0f + scale[(n / L) * ss + d] : 1.0f;
    acc += act_load(g[n * D + d]) * ((x[n * D + d] - mean[n]) * rstd[n]) * a;
  }
  partial[c * D + d] = acc;
}

// The whole backward in one pass over a chunk of ≤ kColumnSumRows rows of one sequence (grid B·chunks):
// phase 1, a warp per row, the row means of dxhat and dxhat·xhat (as layernorm_dx_kernel); phase 2, a thread per
// column over the chunk's rows in order: dx += ... (when dx), and the partials of dshift, dscale (psh, psc,
// when psh) and dweight (pdw, when pdw) at [blockIdx.x·D + d], as the three-pass kernels compute them.
template <class G>
__global__ void layernorm_backward_kernel(float* dx, float* psh, float* psc, float* pdw, const G* g,
                                          const float* x, const float* mean, const float* rstd, const float* w,
                                          const float* scale, int64_t ss, int L, int64_t chunks, int D) {
  DUO_SHARED(float, row_mean_dxhat, kColumnSumRows);
  DUO_SHARED(float, row_mean_dxhat_xhat, kColumnSumRows);
  const int64_t b = blockIdx.x / chunks, c = blockIdx.x % chunks;
  const int64_t l0 = c * kColumnSumRows, l1 = l0 + kColumnSumRows < L ? l0 + kColumnSumRows : L;
  const float* sc = scale ? scale + b * ss : nullptr;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32, warps = int(blockDim.x) / 32;
  if (dx) {
    for (int64_t l = l0 + warp; l < l1; l += warps) {  // whole warps take the same rows
      const int64_t n = b * L + l;
      const G* gr = g + n * D;
      const float* xr = x + n * D;
      float a, bx;
      dxhat_row_means(gr, xr, w, sc, mean[n], rstd[n], D, lane, a, bx);
      if (lane == 0) {
        row_mean_dxhat[l - l0] = a;
        row_mean_dxhat_xhat[l - l0] = bx;
      }
    }
  }
  __syncthreads();
  for (int d = int(threadIdx.x); d < D; d += int(blockDim.x)) {
    const float a = sc ? 1.0f + sc[d] : 1.0f;
    float sh = 0.0f, scs = 0.0f, dw = 0.0f;
    for (int64_t l = l0; l < l1; ++l) {
      const int64_t n = b * L + l;
      const float gv = act_load(g[n * D + d]), m = mean[n], r = rstd[n], xhat = (x[n * D + d] - m) * r;
      if (dx) {
        const float dxhat = gv * w[d] * (sc ? 1.0f + sc[d] : 1.0f);
        dx[n * D + d] += r * (dxhat - row_mean_dxhat[l - l0] - xhat * row_mean_dxhat_xhat[l - l0]);
      }
      sh += gv;
      scs += gv * xhat * w[d];
      dw += gv * xhat * a;
    }
    if (psh) {
      psh[blockIdx.x * int64_t(D) + d] = sh;
      psc[blockIdx.x * int64_t(D) + d] = scs;
    }
    if (pdw) pdw[blockIdx.x * int64_t(D) + d] = dw;
  }
}

using checks::LnShape;

// The shared checks, plus this backend's own: the kernels read shift and scale with one row stride.
LnShape layernorm_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& shift,
                        const Tensor& scale) {
  const LnShape s = checks::layernorm(str("CudaOps::", op), x, weight, shift, scale);
  DUO_CHECK(shift.empty() || shift.stride[0] == scale.stride[0], str("CudaOps::", op),
            "shift and scale have different row strides", "pass column blocks of one adaLN output");
  return s;
}

constexpr int kWarpsPerBlock = kThreads / 32;
unsigned row_blocks(int64_t N) { return unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

void CudaOps::do_layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                                    const Tensor& shift, const Tensor& scale) {
  const char* op = "layernorm_modulate";
  check_f32(op, {&x, &mean, &rstd, &weight, &shift, &scale});
  check_f32_or_bf16(op, {&out});
  const LnShape s = layernorm_shape(op, x, weight, shift, scale);
  const int64_t N = s.B * s.L;
  check_matrix(op, "out", out, N, s.D);
  check_numel(op, "mean", mean, N);
  check_numel(op, "rstd", rstd, N);
  if (N == 0) return;
  const bool mod = !shift.empty();
  const float *sh = mod ? fptr(shift) : nullptr, *sc = mod ? fptr(scale) : nullptr;
  const int64_t ss = mod ? shift.stride[0] : 0;
  cudaStream_t st = as_stream(stream_);
  if (is_bf16(out))
    DUO_LAUNCH(layernorm_forward_kernel<__nv_bfloat16>, row_blocks(N), kThreads, 0, st)(
        hptr(out), fptr(mean), fptr(rstd), fptr(x), fptr(weight), sh, sc, ss, N, int(s.L), int(s.D));
  else
    DUO_LAUNCH(layernorm_forward_kernel<float>, row_blocks(N), kThreads, 0, st)(
        fptr(out), fptr(mean), fptr(rstd), fptr(x), fptr(weight), sh, sc, ss, N, int(s.L), int(s.D));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale,
                                             const Tensor& dout, const Tensor& x, const Tensor& mean,
                                             const Tensor& rstd,
                                             const Tensor& weight, const Tensor& shift, const Tensor& scale) {
  const char* op = "layernorm_modulate_backward";
  check_f32(op, {&x, &dx, &dweight, &dshift, &dscale, &mean, &rstd, &weight, &shift, &scale});
  check_f32_or_bf16(op, {&dout});
  const LnShape s = layernorm_shape(op, x, weight, shift, scale);
  checks::layernorm_backward(str("CudaOps::", op), s, dx, dweight, dshift, dscale, dout, mean, rstd, shift);
  DUO_CHECK(dshift.empty() || dscale.empty() || dshift.stride[0] == dscale.stride[0],
            "CudaOps::layernorm_modulate_backward", "dshift and dscale have different row strides",
            "pass column blocks of one gradient buffer");
  if (s.B * s.L == 0 || s.D == 0) return;
  if (is_bf16(dout))
    layernorm_backward(dx, dweight, dshift, dscale, hptr(dout), x, mean, rstd, weight, shift, scale);
  else
    layernorm_backward(dx, dweight, dshift, dscale, fptr(dout), x, mean, rstd, weight, shift, scale);
}

// The backward's kernels for a dout of type G (fp32, or the bf16 activation dtype: the gradient a linear_backward
// wrote), all arithmetic in fp32.
template <class G>
void CudaOps::layernorm_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const G* g,
                                 const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                 const Tensor& shift, const Tensor& scale) {
  const char* op = "layernorm_modulate_backward";
  const LnShape s = checks::layernorm(str("CudaOps::", op), x, weight, shift, scale);
  const int64_t N = s.B * s.L;
  cudaStream_t st = as_stream(stream_);
  const float* sc = shift.empty() ? nullptr : fptr(scale);
  const int64_t ss = shift.empty() ? 0 : scale.stride[0];
  const int L = int(s.L), D = int(s.D);
  const bool dmod = !dshift.empty() || !dscale.empty();
  if (s.L % kColumnSumRows == 0 || s.B == 1) {  // one pass (see the top of the file)
    if (dx.empty() && !dmod && dweight.empty()) return;
    const int64_t chunks = column_sum_chunks(L), parts = s.B * chunks;
    float* psh = static_cast<float*>(workspace(size_t((dmod ? 2 : 0) + (dweight.empty() ? 0 : 1)) * parts * D *
                                               sizeof(float)));
    float* psc = dmod ? psh + parts * D : nullptr;
    float* pdw = dweight.empty() ? nullptr : psh + (dmod ? 2 : 0) * parts * D;
    DUO_LAUNCH_NAMED(layernorm_backward_kernel<G>,
                     named<G>("layernorm_backward_kernel<float>", "layernorm_backward_kernel<__nv_bfloat16>"),
                     unsigned(parts), kThreads, 0, st)(
        dx.empty() ? nullptr : fptr(dx), dmod ? psh : nullptr, psc, pdw, g, fptr(x), fptr(mean), fptr(rstd),
        fptr(weight), sc, ss, L, chunks, D);
    DUO_CU_LAUNCHED(op);
    const int64_t ds = dshift.empty() ? (dscale.empty() ? 0 : dscale.stride[0]) : dshift.stride[0];
    if (!dshift.empty()) sum_chunks(fptr(dshift), ds, false, psh, s.B, chunks, D, st);
    if (!dscale.empty()) sum_chunks(fptr(dscale), ds, false, psc, s.B, chunks, D, st);
    if (!dweight.empty()) sum_chunks(fptr(dweight), 0, true, pdw, 1, parts, D, st);
    return;
  }
  if (!dx.empty())
    DUO_LAUNCH_NAMED(layernorm_dx_kernel<G>,
                     named<G>("layernorm_dx_kernel<float>", "layernorm_dx_kernel<__nv_bfloat16>"), row_blocks(N),
                     kThreads, 0, st)(
        fptr(dx), g, fptr(x), fptr(mean), fptr(rstd), fptr(weight), sc, ss, N, L, D);
  if (!dshift.empty() || !dscale.empty()) {
    const int64_t ds = dshift.empty() ? dscale.stride[0] : dshift.stride[0], chunks = column_sum_chunks(L);
    float* psh = static_cast<float*>(workspace(size_t(2 * s.B * chunks * D) * sizeof(float)));
    float* psc = psh + s.B * chunks * D;
    const dim3 grid(unsigned(s.B * chunks), blocks_for(D));
    DUO_LAUNCH_NAMED(layernorm_dmod_partial_kernel<G>,
                     named<G>("layernorm_dmod_partial_kernel<float>",
                              "layernorm_dmod_partial_kernel<__nv_bfloat16>"),
                     grid, kThreads, 0, st)(
        psh, psc, g, fptr(x), fptr(mean), fptr(rstd), fptr(weight), L, chunks, D);
    if (!dshift.empty()) sum_chunks(fptr(dshift), ds, false, psh, s.B, chunks, D, st);
    if (!dscale.empty()) sum_chunks(fptr(dscale), ds, false, psc, s.B, chunks, D, st);
  }
  if (!dweight.empty()) {
    const int64_t chunks = column_sum_chunks(N);
    float* partial = static_cast<float*>(workspace(size_t(chunks * D) * sizeof(float)));
    const dim3 grid(unsigned(chunks), blocks_for(D));
    DUO_LAUNCH_NAMED(layernorm_dweight_partial_kernel<G>,
                     named<G>("layernorm_dweight_partial_kernel<float>",
                              "layernorm_dweight_partial_kernel<__nv_bfloat16>"),
                     grid, kThreads, 0, st)(
        partial, g, fptr(x), fptr(mean), fptr(rstd), sc, ss, N, L, D);
    sum_chunks(fptr(dweight), 0, true, partial, 1, chunks, D, st);
  }
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
