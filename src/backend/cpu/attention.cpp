// Softmax attention over packed qkv (B, L, 3D) with feature order [q|k|v][head][dim], scale 1/sqrt(hd),
// bidirectional or causal (with --compute bf16, its GEMMs take bf16 inputs: attention_forward_bf16 below). One (batch, head) pair per OpenMP task; its q, k, v are read in place as strided
// (L, hd) matrices (row stride 3D) by the GEMMs. The forward keeps only lse (B, H, L); the backward
// recomputes the probabilities P = exp(S - lse) from it, so no L x L tensor lives between the two passes.
#include <omp.h>
#include <cmath>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"
#include "backend/cpu/gemm_bf16.h"

namespace duo {
using namespace cpu;

using checks::AttnShape;

static AttnShape attention_shape(const char* op, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                 int n_heads) {
  return checks::attention(str("CpuOps::", op), qkv, out, lse, n_heads);
}

// Row by row of the scores S (L, L), in place: P = exp(S - lse) with the causal mask (P = 0 above the diagonal).
// The forward computes each row's log-sum-exp into lse_out; the backward passes lse_out = nullptr and reads
// the saved values from lse_in.
template <class T>
static DUO_INLINE_INTO_CLONES void softmax_rows(T* P, int64_t L, bool causal, T* lse_out, const T* lse_in) {
  for (int64_t i = 0; i < L; ++i) {
    T* p = P + i * L;
    const int64_t visible = causal ? i + 1 : L;  // keys j < visible are attended to
    if (lse_out) {  // forward: one exp per score, then normalise
      T m = p[0];
      for (int64_t j = 1; j < visible; ++j) m = p[j] > m ? p[j] : m;
      T sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        p[j] = fast_exp(p[j] - m);
        sum += p[j];
      }
      lse_out[i] = m + std::log(sum);
      const T inv = T(1) / sum;
      for (int64_t j = 0; j < visible; ++j) p[j] *= inv;
    } else {  // backward: P from the saved lse
      const T row_lse = lse_in[i];
      for (int64_t j = 0; j < visible; ++j) p[j] = fast_exp(p[j] - row_lse);
    }
    for (int64_t j = visible; j < L; ++j) p[j] = 0;
  }
}

// S = scale * q k^T, then the probabilities of softmax_rows.
template <class T>
static DUO_INLINE_INTO_CLONES void attention_probs(T* P, const T* q, const T* k, AttnShape s, bool causal, T* lse_out,
                                                   const T* lse_in) {
  const int64_t L = s.L, ld = 3 * s.D;
  const T scale = T(1) / std::sqrt(T(s.hd));
  gemm(false, true, L, L, s.hd, scale, q, ld, k, ld, T(0), P, L);  // (L,hd)(hd,L) -> (L,L)
  softmax_rows(P, L, causal, lse_out, lse_in);
}

// The softmax's backward for one head, in place: dS = P * (dP - delta) row by row, dS holding dP (L, L) on entry,
// with delta_i = sum_d dO_id O_id (dO and O: (L, hd) at row stride D).
template <class T>
static DUO_INLINE_INTO_CLONES void softmax_backward_rows(T* dS, const T* P, const T* dO, const T* o, int64_t L,
                                                         int64_t hd, int64_t D) {
  for (int64_t i = 0; i < L; ++i) {
    T delta = 0;
    for (int64_t d = 0; d < hd; ++d) delta += dO[i * D + d] * o[i * D + d];
    for (int64_t j = 0; j < L; ++j) dS[i * L + j] = P[i * L + j] * (dS[i * L + j] - delta);
  }
}

// Offsets of task bh = (sequence b, head h): its q block (L, hd) in a packed qkv (B, L, 3D) buffer (k and v follow
// at +D and +2D, row stride 3D), and its block (L, hd) in an attention output (B, L, D).
static int64_t qkv_offset(AttnShape s, int64_t bh) { return (bh / s.H) * s.L * 3 * s.D + (bh % s.H) * s.hd; }
static int64_t head_offset(AttnShape s, int64_t bh) { return (bh / s.H) * s.L * s.D + (bh % s.H) * s.hd; }
template <class T>
struct HeadQkv {
  const T *q, *k, *v;
  HeadQkv(const T* qkv, AttnShape s, int64_t bh) : q(qkv + qkv_offset(s, bh)), k(q + s.D), v(q + 2 * s.D) {}
};

// y[0..n) = x rounded to bf16, on the calling thread (inside a task of a parallel loop).
static DUO_INLINE_INTO_CLONES void round_rows(const float* x, bf16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
}

template <class T>
DUO_SIMD_CLONES static void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv, AttnShape s, bool causal, T* scratch) {
  const int64_t L = s.L, D = s.D, ld = 3 * D;
  const bool parallel = worth_threads(s.B * s.H * s.L * s.L * s.hd);
  BlasSingleThreaded blas_guard(parallel);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    T* P = scratch + omp_get_thread_num() * L * L;                 // (L, L) of this thread
    const T* q = qkv.ptr<T>() + b * L * ld + h * s.hd;             // (L, hd), row stride 3D
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* o = out.ptr<T>() + b * L * D + h * s.hd;                    // (L, hd), row stride D
    attention_probs(P, q, k, s, causal, lse.ptr<T>() + bh * L, (const T*)nullptr);
    gemm(false, false, L, s.hd, L, T(1), P, L, v, ld, T(0), o, D);  // o = P v
  }
}

// --compute bf16: the same attention with its GEMMs on bf16 inputs (q, k, v, P and in the backward dO, dS) and
// fp32 sums; the softmax, its statistics and dS = P (dP - delta) stay fp32. qkv16: qkv rounded (B, L, 3D);
// p16: (L, L) bf16 scratch per thread.
DUO_SIMD_CLONES static void attention_forward_bf16(Bf16Gemm& gemm16, Tensor& out, Tensor& lse, AttnShape s, bool causal,
                                                   const bf16_t* qkv16, float* scratch, bf16_t* p16) {
  const int64_t L = s.L, D = s.D, ld = 3 * D;
  const float scale = 1.0f / std::sqrt((float)s.hd);
  const bool parallel = worth_threads(s.B * s.H * s.L * s.L * s.hd);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    float* P = scratch + omp_get_thread_num() * L * L;
    bf16_t* P16 = p16 + omp_get_thread_num() * L * L;
    const HeadQkv<bf16_t> h(qkv16, s, bh);
    gemm16(false, true, L, L, s.hd, scale, h.q, ld, h.k, ld, 0.0f, P, L);  // S = scale q k^T
    softmax_rows(P, L, causal, lse.ptr<float>() + bh * L, (const float*)nullptr);
    round_rows(P, P16, L * L);
    gemm16(false, false, L, s.hd, L, 1.0f, P16, L, h.v, ld, 0.0f, out.ptr<float>() + head_offset(s, bh), D);  // P v
  }
}

DUO_SIMD_CLONES static void attention_backward_bf16(Bf16Gemm& gemm16, Tensor& dqkv, const Tensor& dout, const Tensor& out,
                                                    const Tensor& lse, AttnShape s, bool causal, const bf16_t* qkv16,
                                                    const bf16_t* dout16, float* scratch, bf16_t* p16) {
  const int64_t L = s.L, D = s.D, ld = 3 * D;
  const float scale = 1.0f / std::sqrt((float)s.hd);
  const bool parallel = worth_threads(s.B * s.H * s.L * s.L * s.hd);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    float* P = scratch + omp_get_thread_num() * 2 * L * L;  // probabilities
    float* dS = P + L * L;                                   // dP, then dS in place
    bf16_t* P16 = p16 + omp_get_thread_num() * 2 * L * L;
    bf16_t* dS16 = P16 + L * L;
    const HeadQkv<bf16_t> h(qkv16, s, bh);
    const int64_t off = head_offset(s, bh);
    const bf16_t* dO16 = dout16 + off;
    const float* o = out.ptr<float>() + off;
    const float* dO = dout.ptr<float>() + off;
    float* dq = dqkv.ptr<float>() + qkv_offset(s, bh);
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    gemm16(false, true, L, L, s.hd, scale, h.q, ld, h.k, ld, 0.0f, P, L);  // S, then P from the saved lse
    softmax_rows(P, L, causal, (float*)nullptr, lse.ptr<float>() + bh * L);
    round_rows(P, P16, L * L);
    gemm16(true, false, L, s.hd, L, 1.0f, P16, L, dO16, D, 0.0f, dv, ld);  // dV = P^T dO
    gemm16(false, true, L, L, s.hd, 1.0f, dO16, D, h.v, ld, 0.0f, dS, L);  // dP = dO V^T
    softmax_backward_rows(dS, P, dO, o, L, s.hd, D);
    round_rows(dS, dS16, L * L);
    gemm16(false, false, L, s.hd, L, scale, dS16, L, h.k, ld, 0.0f, dq, ld);  // dQ = scale dS K
    gemm16(true, false, L, s.hd, L, scale, dS16, L, h.q, ld, 0.0f, dk, ld);   // dK = scale dS^T Q
  }
}

void CpuOps::do_attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) {
  const char* op = "attention";
  check_same_dtype(op, {&qkv, &out, &lse});
  AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  DUO_CHECK(out.data != qkv.data, "CpuOps::attention", "out may not alias qkv", "");
  if (bf16_gemm_ && qkv.dtype == DType::F32) {
    const int64_t threads = omp_get_max_threads();
    if (bf16_p_.size() < (size_t)(threads * s.L * s.L)) bf16_p_.resize((size_t)(threads * s.L * s.L));
    if (bf16_x_.size() < (size_t)qkv.numel()) bf16_x_.resize((size_t)qkv.numel());
    to_bf16(qkv.ptr<float>(), bf16_x_.data(), qkv.numel());
    attention_forward_bf16(*bf16_gemm_, out, lse, s, causal, bf16_x_.data(), scratch<float>((size_t)(threads * s.L * s.L)),
                           bf16_p_.data());
    return;
  }
  dispatch(op, qkv, [&](auto tag) {
    using T = decltype(tag);
    T* buf = scratch<T>((size_t)(omp_get_max_threads() * s.L * s.L));
    attention_forward<T>(out, lse, qkv, s, causal, buf);
  });
}

// With dO the output gradient of one head and delta_i = sum_d dO_id O_id:
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - delta),  dQ = scale dS K,  dK = scale dS^T Q
template <class T>
DUO_SIMD_CLONES static void attention_backward_impl(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                    const Tensor& lse, AttnShape s, bool causal, T* scratch) {
  const int64_t L = s.L, D = s.D, ld = 3 * D;
  const T scale = T(1) / std::sqrt(T(s.hd));
  const bool parallel = worth_threads(s.B * s.H * s.L * s.L * s.hd);
  BlasSingleThreaded blas_guard(parallel);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    T* P = scratch + omp_get_thread_num() * 2 * L * L;  // (L, L) probabilities
    T* dS = P + L * L;                                   // (L, L) dP, then dS in place
    const T* q = qkv.ptr<T>() + b * L * ld + h * s.hd;
    const T* k = q + D;
    const T* v = q + 2 * D;
    const T* o = out.ptr<T>() + b * L * D + h * s.hd;
    const T* dO = dout.ptr<T>() + b * L * D + h * s.hd;
    T* dq = dqkv.ptr<T>() + b * L * ld + h * s.hd;
    T* dk = dq + D;
    T* dv = dq + 2 * D;

    attention_probs(P, q, k, s, causal, (T*)nullptr, lse.ptr<T>() + bh * L);
    gemm(true, false, L, s.hd, L, T(1), P, L, dO, D, T(0), dv, ld);    // dV = P^T dO
    gemm(false, true, L, L, s.hd, T(1), dO, D, v, ld, T(0), dS, L);    // dP = dO V^T
    softmax_backward_rows(dS, P, dO, o, L, s.hd, D);
    gemm(false, false, L, s.hd, L, scale, dS, L, k, ld, T(0), dq, ld);  // dQ = scale dS K
    gemm(true, false, L, s.hd, L, scale, dS, L, q, ld, T(0), dk, ld);   // dK = scale dS^T Q
  }
}

void CpuOps::do_attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                   const Tensor& lse, int n_heads, bool causal) {
  const char* op = "attention_backward";
  check_same_dtype(op, {&qkv, &dqkv, &dout, &out, &lse});
  AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  check_matrix(op, "dout", dout, s.B * s.L, s.D);
  check_matrix(op, "dqkv", dqkv, s.B * s.L, 3 * s.D);
  if (bf16_gemm_ && qkv.dtype == DType::F32) {
    const int64_t threads = omp_get_max_threads();
    if (bf16_p_.size() < (size_t)(threads * 2 * s.L * s.L)) bf16_p_.resize((size_t)(threads * 2 * s.L * s.L));
    if (bf16_x_.size() < (size_t)qkv.numel()) bf16_x_.resize((size_t)qkv.numel());
    if (bf16_dy_.size() < (size_t)dout.numel()) bf16_dy_.resize((size_t)dout.numel());
    to_bf16(qkv.ptr<float>(), bf16_x_.data(), qkv.numel());
    to_bf16(dout.ptr<float>(), bf16_dy_.data(), dout.numel());
    attention_backward_bf16(*bf16_gemm_, dqkv, dout, out, lse, s, causal, bf16_x_.data(), bf16_dy_.data(),
                            scratch<float>((size_t)(threads * 2 * s.L * s.L)), bf16_p_.data());
    return;
  }
  dispatch(op, qkv, [&](auto tag) {
    using T = decltype(tag);
    T* buf = scratch<T>((size_t)(omp_get_max_threads() * 2 * s.L * s.L));
    attention_backward_impl<T>(dqkv, dout, qkv, out, lse, s, causal, buf);
  });
}

}  // namespace duo
