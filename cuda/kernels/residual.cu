// Gated residual with dropout (DiT blocks): h += gate[b] * dropout_p(branch), h and branch (B, L, D), gate
// (B, D) with row stride gs, or absent (= 1). Element i (flat index into (B, L, D)) is kept when
// rng.uniform(i) > p and then scaled by 1/(1 - p): the Philox of core/philox.h runs on the device (DUO_HD),
// so the keep mask is the CPU backend's bit for bit, and the backward recomputes it instead of storing it.
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// 0 (dropped) or keep_scale; always 1 when p = 0 (rng unused).
__device__ __forceinline__ float dropout_factor(const Philox& rng, float p, float keep_scale, uint64_t i) {
  return p <= 0.0f ? 1.0f : (rng.uniform(i) > p ? keep_scale : 0.0f);
}

// h[i] + g · x[i] f(i), g the element's gate (null: 1): the one expression both residual kernels use.
template <class X>
__device__ __forceinline__ float residual_value(const float* h, const X* x, const float* g, const Philox& rng, float p,
                                                float keep_scale, int64_t i) {
  const float dropped = act_load(x[i]) * dropout_factor(rng, p, keep_scale, uint64_t(i));
  return h[i] + (g ? *g * dropped : dropped);
}

// out[i] = h[i] + gate[b, d] x[i] f(i) (out may be h); one thread per element. The branch x: fp32, or bf16 (the
// activation dtype, as its linear layer wrote it).
template <class X>
__global__ void gated_residual_kernel(float* out, const float* h, const X* x, const float* gate, int64_t gs,
                                      Philox rng, float p, float keep_scale, int64_t n, int64_t LD, int D) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = residual_value(h, x, gate ? gate + (i / LD) * gs + i % D : nullptr, rng, p, keep_scale, i);
}

// out = h + gate[b] x f as gated_residual_kernel, then ln = LayerNorm + modulate of out as layernorm.cu's forward
// (mean, rstd saved), one warp per row: the two kernels' arithmetic in their order, so the same bits, with the new
// residual row held in registers (K per lane: D ≤ 32 K) instead of read back. x and ln: fp32, or bf16 (the
// activation dtype).                        grid: ceil(N / warps per block); warp w of block b owns row b·warps + w
template <int K, class T>
__global__ void gated_residual_layernorm_kernel(float* out, T* ln, float* mean, float* rstd, const float* h,
                                                const T* x, const float* gate, int64_t gs, Philox rng, float p,
                                                float keep_scale, const float* w, const float* shift,
                                                const float* scale, int64_t ss, int64_t N, int L, int D) {
  const int lane = int(threadIdx.x) % 32;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave together
  const float* g = gate ? gate + (n / L) * gs : nullptr;
  float v[K];
  float s = 0.0f;
  for (int k = 0; k < K; ++k) {
    const int d = lane + 32 * k;
    if (d >= D) break;
    const int64_t i = n * D + d;
    v[k] = residual_value(h, x, g ? g + d : nullptr, rng, p, keep_scale, i);
    out[i] = v[k];
    s += v[k];
  }
  const float m = warp_sum(s) / float(D);
  float var = 0.0f;
  for (int k = 0; k < K && lane + 32 * k < D; ++k) var += (v[k] - m) * (v[k] - m);
  const float r = layernorm_row_rstd(var, m, D, lane, n, mean, rstd);
  T* y = ln + n * D;
  const float* sh = shift ? shift + (n / L) * ss : nullptr;
  const float* sc = shift ? scale + (n / L) * ss : nullptr;
  for (int k = 0; k < K && lane + 32 * k < D; ++k) {
    const int d = lane + 32 * k;
    y[d] = act_store<T>(layernorm_modulate_value(v[k], m, r, w[d], sh, sc, d));
  }
}

// Rows up to this many features take the fused kernel (its registers per lane); wider ones the two kernels.
constexpr int kFusedLnMaxD = 32 * 32;

template <class T>
void launch_gated_residual_layernorm(cudaStream_t st, int64_t N, int D, float* out, T* ln, float* mean, float* rstd,
                                     const float* h, const T* x, const float* g, int64_t gs, const Philox& rng,
                                     float p, float ks, const float* w, const float* sh, const float* sc, int64_t ss,
                                     int L) {
  const unsigned blocks = unsigned((N + kThreads / 32 - 1) / (kThreads / 32));  // a warp per row
  auto* k8 = gated_residual_layernorm_kernel<8, T>;  // the registers per lane: D ≤ 256, 512, 768, 1024
  auto* k16 = gated_residual_layernorm_kernel<16, T>;
  auto* k24 = gated_residual_layernorm_kernel<24, T>;
  auto* k32 = gated_residual_layernorm_kernel<32, T>;
  auto* kernel = D <= 256 ? k8 : D <= 512 ? k16 : D <= 768 ? k24 : k32;
  DUO_LAUNCH_NAMED(kernel, named<T>("gated_residual_layernorm_kernel<float>",
                                    "gated_residual_layernorm_kernel<__nv_bfloat16>"),
                   blocks, kThreads, 0, st)(out, ln, mean, rstd, h, x, g, gs, rng, p, ks, w, sh, sc, ss, N, L, D);
}

// dbranch[i] = gate[b, d] f(i) dh[i]; one thread per element. dx: fp32, or bf16 (the activation dtype: the
// branch's linear_backward reads it as its GEMM operand).
template <class Out>
__global__ void gated_residual_dbranch_kernel(Out* dx, const float* dh, const float* gate, int64_t gs, Philox rng,
                                              float p, float keep_scale, int64_t n, int64_t LD, int D) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float f = dropout_factor(rng, p, keep_scale, uint64_t(i));
    dx[i] = act_store<Out>((gate ? gate[(i / LD) * gs + i % D] : 1.0f) * f * dh[i]);
  }
}

// With dgate wanted (the DiT's gated branches): dbranch as above (when dx is given) and stage 1 of
// dgate[b, d] = sum_l dh x f, partial[(b·chunks + c)·D + d] over the rows l of chunk c in order (stage 2: sum_chunks,
// column_sums.cu), in one pass: each thread walks the rows of its chunk in one column, so dh and the dropout mask are
// read and drawn once for both.                                                 grid (B·chunks, column blocks)
template <class X, class Out>
__global__ void gated_residual_backward_kernel(Out* dx, float* partial, const float* dh, const X* x,
                                               const float* gate, int64_t gs, Philox rng, float p, float keep_scale,
                                               int L, int64_t chunks, int D) {
  const int64_t b = blockIdx.x / chunks, c = blockIdx.x % chunks;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  const int64_t l0 = c * kColumnSumRows, l1 = l0 + kColumnSumRows < L ? l0 + kColumnSumRows : L;
  const float g = gate ? gate[b * gs + d] : 1.0f;
  float acc = 0.0f;
  for (int64_t l = l0; l < l1; ++l) {
    const int64_t i = (b * L + l) * D + d;
    const float f = dropout_factor(rng, p, keep_scale, uint64_t(i));
    if (dx) dx[i] = act_store<Out>(g * f * dh[i]);
    acc += dh[i] * act_load(x[i]) * f;
  }
  partial[blockIdx.x * int64_t(D) + d] = acc;
}

template <class X, class Out>
void launch_gated_residual_backward(cudaStream_t st, Out* dx, float* partial, const float* dh, const X* x,
                                    const float* gate, int64_t gs, const Philox& rng, float p, float ks, int64_t B,
                                    int L, int64_t chunks, int D) {
  auto* kernel = gated_residual_backward_kernel<X, Out>;  // one name in the emulator for every dtype pair
  DUO_LAUNCH_NAMED(kernel, "gated_residual_backward_kernel", dim3(unsigned(B * chunks), blocks_for(D)), kThreads, 0,
                   st)(dx, partial, dh, x, gate, gs, rng, p, ks, L, chunks, D);
}

using checks::ResidualShape;

ResidualShape residual_shape(const char* op, const Tensor& h, const Tensor& gate, float p) {
  return checks::gated_residual(str("CudaOps::", op), h, gate, p);
}

// 1/(1-p) computed in double and rounded once, as the CPU's factor.
float keep_scale_of(float p) { return p > 0 ? float(1.0 / (1.0 - p)) : 1.0f; }

}  // namespace

void CudaOps::do_gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                                const Philox& rng) {
  const char* op = "gated_residual";
  check_f32(op, {&out, &h, &gate});
  check_f32_or_bf16(op, {&branch});
  const ResidualShape s = residual_shape(op, out, gate, p);
  check_matrix(op, "branch", branch, s.B * s.L, s.D);
  check_matrix(op, "h", h, s.B * s.L, s.D);
  const int64_t n = s.B * s.L * s.D;
  if (n == 0) return;
  const float* g = gate.empty() ? nullptr : fptr(gate);
  const int64_t gs = gate.empty() ? 0 : gate.stride[0];
  cudaStream_t st = as_stream(stream_);
  if (is_bf16(branch))
    DUO_LAUNCH(gated_residual_kernel<__nv_bfloat16>, blocks_for(n), kThreads, 0, st)(
        fptr(out), fptr(h), hptr(branch), g, gs, rng, p, keep_scale_of(p), n, s.L * s.D, int(s.D));
  else
    DUO_LAUNCH(gated_residual_kernel<float>, blocks_for(n), kThreads, 0, st)(
        fptr(out), fptr(h), fptr(branch), g, gs, rng, p, keep_scale_of(p), n, s.L * s.D, int(s.D));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_gated_residual_layernorm(Tensor& out, Tensor& ln, Tensor& mean, Tensor& rstd, const Tensor& h,
                                          const Tensor& branch, const Tensor& gate, float p, const Philox& rng,
                                          const Tensor& weight, const Tensor& shift, const Tensor& scale) {
  const char* op = "gated_residual_layernorm";
  check_f32(op, {&out, &h, &gate, &mean, &rstd, &weight, &shift, &scale});
  check_f32_or_bf16(op, {&branch, &ln});
  const ResidualShape s = residual_shape(op, out, gate, p);
  DUO_CHECK(shift.empty() || shift.stride[0] == scale.stride[0], str("CudaOps::", op),
            "shift and scale have different row strides", "pass column blocks of one adaLN output");
  const int64_t N = s.B * s.L;
  if (N == 0 || s.D == 0) return;
  if (s.D > kFusedLnMaxD) {  // wider rows than the fused kernel's registers hold: the two kernels
    do_gated_residual(out, h, branch, gate, p, rng);
    do_layernorm_modulate(ln, mean, rstd, out, weight, shift, scale);
    return;
  }
  const bool mod = !shift.empty();
  const float *g = gate.empty() ? nullptr : fptr(gate), *sh = mod ? fptr(shift) : nullptr,
              *sc = mod ? fptr(scale) : nullptr;
  const int64_t gs = gate.empty() ? 0 : gate.stride[0], ss = mod ? shift.stride[0] : 0;
  cudaStream_t st = as_stream(stream_);
  if (is_bf16(ln))
    launch_gated_residual_layernorm(st, N, int(s.D), fptr(out), hptr(ln), fptr(mean), fptr(rstd), fptr(h),
                                    hptr(branch), g, gs, rng, p, keep_scale_of(p), fptr(weight), sh, sc, ss, int(s.L));
  else
    launch_gated_residual_layernorm(st, N, int(s.D), fptr(out), fptr(ln), fptr(mean), fptr(rstd), fptr(h),
                                    fptr(branch), g, gs, rng, p, keep_scale_of(p), fptr(weight), sh, sc, ss, int(s.L));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                                         const Tensor& gate, float p, const Philox& rng) {
  const char* op = "gated_residual_backward";
  check_f32(op, {&dh, &dgate, &gate});
  check_f32_or_bf16(op, {&dbranch});
  check_f32_or_bf16(op, {&branch});
  const ResidualShape s = residual_shape(op, dh, gate, p);
  checks::gated_residual_grads(str("CudaOps::", op), s, dbranch, dgate, branch, gate);
  const int64_t n = s.B * s.L * s.D;
  if (n == 0) return;
  cudaStream_t st = as_stream(stream_);
  const float ks = keep_scale_of(p);
  const float* g = gate.empty() ? nullptr : fptr(gate);
  const int64_t gs = gate.empty() ? 0 : gate.stride[0];
  if (!dgate.empty()) {  // both in one pass (dbranch when wanted), then the chunks' sums
    const int64_t chunks = column_sum_chunks(s.L);
    float* partial = static_cast<float*>(workspace(size_t(s.B * chunks * s.D) * sizeof(float)));
    const bool x16 = is_bf16(branch), d16 = !dbranch.empty() && is_bf16(dbranch);
    using bf16 = __nv_bfloat16;
    void* dx = dbranch.empty() ? nullptr : dbranch.data;
    if (x16 && d16)
      launch_gated_residual_backward(st, static_cast<bf16*>(dx), partial, fptr(dh), hptr(branch), g, gs, rng, p, ks,
                                     s.B, int(s.L), chunks, int(s.D));
    else if (x16)
      launch_gated_residual_backward(st, static_cast<float*>(dx), partial, fptr(dh), hptr(branch), g, gs, rng, p, ks,
                                     s.B, int(s.L), chunks, int(s.D));
    else if (d16)
      launch_gated_residual_backward(st, static_cast<bf16*>(dx), partial, fptr(dh), fptr(branch), g, gs, rng, p, ks,
                                     s.B, int(s.L), chunks, int(s.D));
    else
      launch_gated_residual_backward(st, static_cast<float*>(dx), partial, fptr(dh), fptr(branch), g, gs, rng, p, ks,
                                     s.B, int(s.L), chunks, int(s.D));
    sum_chunks(fptr(dgate), dgate.stride[0], false, partial, s.B, chunks, int(s.D), st);
    DUO_CU_LAUNCHED(op);
    return;
  }
  if (!dbranch.empty() && is_bf16(dbranch))
    DUO_LAUNCH(gated_residual_dbranch_kernel<__nv_bfloat16>, blocks_for(n), kThreads, 0, st)(
        hptr(dbranch), fptr(dh), g, gs, rng, p, ks, n, s.L * s.D, int(s.D));
  else if (!dbranch.empty())
    DUO_LAUNCH(gated_residual_dbranch_kernel<float>, blocks_for(n), kThreads, 0, st)(
        fptr(dbranch), fptr(dh), g, gs, rng, p, ks, n, s.L * s.D, int(s.D));
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
