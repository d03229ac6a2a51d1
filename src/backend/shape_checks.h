// Argument checks shared by the backends (CPU, CUDA): each names the backend's op ("CpuOps::linear") in its
// error, so a wrong shape or dtype is reported where it was passed, never read as garbage.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include "core/error.h"
#include "core/tensor.h"
#include "math/sampling_step.h"

namespace duo::checks {

inline void dtype(const std::string& where, const char* name, const Tensor& t, DType want) {
  DUO_CHECK(t.dtype == want, where, str(name, " has dtype ", dtype_name(t.dtype), ", expected ", dtype_name(want)), "");
}

inline void present(const std::string& where, const char* name, const Tensor& t) {
  DUO_CHECK(!t.empty(), where, str(name, " is empty (null data) but is required"), "");
}

// Two tensors of an elementwise op: both present, contiguous, with the same element count.
inline void elementwise(const std::string& where, const Tensor& a, const char* a_name, const Tensor& b,
                        const char* b_name) {
  present(where, a_name, a);
  present(where, b_name, b);
  DUO_CHECK(a.is_contiguous() && b.is_contiguous() && a.numel() == b.numel(), where,
            str(a_name, " ", a.shape_str(), " and ", b_name, " ", b.shape_str(),
                " must be contiguous with the same element count"), "");
}

// A contiguous tensor read as a matrix [rows, cols]: last dim = cols, all leading dims fold into rows.
inline void matrix(const std::string& where, const char* name, const Tensor& t, int64_t rows, int64_t cols) {
  present(where, name, t);
  DUO_CHECK(t.is_contiguous(), where, str(name, " ", t.shape_str(), " must be contiguous"), "");
  DUO_CHECK(t.ndim >= 1 && t.dim(-1) == cols && t.numel() == rows * cols, where,
            str(name, " has shape ", t.shape_str(), ", expected ", rows, " rows of ", cols), "");
}

// A contiguous tensor of n elements, whatever its shape (a bias [O], LayerNorm statistics [B*L], ...).
inline void numel(const std::string& where, const char* name, const Tensor& t, int64_t n) {
  present(where, name, t);
  DUO_CHECK(t.is_contiguous() && t.numel() == n, where,
            str(name, " has shape ", t.shape_str(), ", expected ", n, " contiguous elements"), "");
}

// A [B, D] view whose rows may be strided (a column block of the adaLN output): stride[1] must be 1.
inline void row_view(const std::string& where, const char* name, const Tensor& t, int64_t B, int64_t D) {
  DUO_CHECK(t.ndim == 2 && t.shape[0] == B && t.shape[1] == D, where,
            str(name, " has shape ", t.shape_str(), ", expected (", B, ", ", D, ")"), "");
  DUO_CHECK(t.stride[1] == 1 || D == 1, where, str(name, " must have unit column stride"),
            "pass a column block made with Tensor::cols()");
}

// Rows of a tensor read as [rows, last dim].
inline int64_t rows_of(const Tensor& t) { return t.ndim == 0 || t.dim(-1) == 0 ? 0 : t.numel() / t.dim(-1); }

// ---- the arguments of the ops shared by every backend (the backend adds only its own limits) ----------------

struct RelaxationShape { int64_t B, L, V; };

// Ops::gaussian_relaxation: soft_logits (B, L, V) (empty: only z is wanted, the shape still gives V), z and x
// (B·L) I32, scales (B, 2) F64, 1/τ > 0.
inline RelaxationShape gaussian_relaxation(const std::string& where, const Tensor& soft_logits, const Tensor& z,
                                           const Tensor& x, const Tensor& scales, double inverse_tau) {
  DUO_CHECK(soft_logits.ndim == 3 && soft_logits.is_contiguous(), where,
            str("soft_logits ", soft_logits.shape_str(), " must be a contiguous (B, L, V) tensor"), "");
  const RelaxationShape s{soft_logits.shape[0], soft_logits.shape[1], soft_logits.shape[2]};
  for (auto [name, t] : {std::pair{"x", &x}, std::pair{"z", &z}}) {
    numel(where, name, *t, s.B * s.L);
    dtype(where, name, *t, DType::I32);
  }
  matrix(where, "scales", scales, s.B, 2);
  dtype(where, "scales", scales, DType::F64);
  DUO_CHECK(inverse_tau > 0 && inverse_tau < INFINITY, where, str("1/τ = ", inverse_tau, " must be positive and finite"),
            "use inverse_temperature(settings, step)");
  return s;
}

struct SamplingShape { int64_t B, L, V; };

// Ops::diffusion_step: logits (B, L, V) F32 (or F64, which the CPU backend reads as float) with V >= 2, z (B·L) I32, status (2) I32, keep (B·L) U8 or empty,
// sigma (B) F64 (SEDD; may be empty for the others); the step's settings as the sampler checks them.
inline SamplingShape diffusion_step(const std::string& where, const Tensor& z, const Tensor& status,
                                    const Tensor& logits, const Tensor& keep, const Tensor& sigma,
                                    const DiffusionStepArgs& a) {
  DUO_CHECK(logits.ndim == 3 && logits.is_contiguous() && !logits.empty(), where,
            str("logits ", logits.shape_str(), " must be a contiguous (B, L, V) tensor"), "");
  const SamplingShape s{logits.shape[0], logits.shape[1], logits.shape[2]};
  DUO_CHECK(s.V >= 2, where, str("rows of ", s.V, " categories"), "the model output needs V >= 2");
  DUO_CHECK(logits.dtype == DType::F32 || logits.dtype == DType::F64, where,
            str("logits have dtype ", dtype_name(logits.dtype), ", expected F32"), "");
  numel(where, "z", z, s.B * s.L);
  dtype(where, "z", z, DType::I32);
  numel(where, "status", status, 2);
  dtype(where, "status", status, DType::I32);
  if (!keep.empty()) {
    numel(where, "keep", keep, s.B * s.L);
    dtype(where, "keep", keep, DType::U8);
  }
  if (a.family == DiffusionFamily::sedd || !sigma.empty()) {
    numel(where, "sigma", sigma, s.B);
    dtype(where, "sigma", sigma, DType::F64);
  }
  if (a.family != DiffusionFamily::uniform)
    DUO_CHECK(a.mask_id >= 0 && a.mask_id < s.V, where, str("mask id ", a.mask_id, " is not in [0, ", s.V, ")"),
              "set the tokenizer's [MASK] id");
  DUO_CHECK(!(a.family == DiffusionFamily::sedd && a.filtered()), where,
            "SEDD's model output is a score, not log-probs: no top-k or top-p", "");
  DUO_CHECK(a.p_nucleus > 0 && a.p_nucleus <= 1 && a.top_k >= 0, where,
            str("p_nucleus ", a.p_nucleus, " / top_k ", a.top_k), "use p in (0, 1] and k >= 0");
  DUO_CHECK(a.first_position >= 0, where, str("first position ", a.first_position), "");
  DUO_CHECK(s.B * s.L < INT32_MAX, where, str(s.B * s.L, " positions"), "the status counts in 32 bits");
  return s;
}

// Ops::embed_relaxed: x (B, L) I32, scales (B, 2) F64, z (B·L) I32, probs (B·L, V), table (V, D), out (B·L, D) (the
// floats' dtype), 1/τ > 0. Returns (B, L, V, D).
struct RelaxedEmbedShape { int64_t B, L, V, D; };
inline RelaxedEmbedShape embed_relaxed(const std::string& where, const Tensor& out, const Tensor& probs, const Tensor& z,
                                       const Tensor& x, const Tensor& scales, double inverse_tau, const Tensor& table) {
  DUO_CHECK(x.ndim == 2 && x.is_contiguous(), where, str("x ", x.shape_str(), " must be a contiguous (B, L) tensor"), "");
  dtype(where, "x", x, DType::I32);
  DUO_CHECK(table.ndim == 2 && table.is_contiguous(), where,
            str("table ", table.shape_str(), " must be a contiguous (V, D) matrix"), "");
  const RelaxedEmbedShape s{x.shape[0], x.shape[1], table.shape[0], table.shape[1]};
  numel(where, "z", z, s.B * s.L);
  dtype(where, "z", z, DType::I32);
  matrix(where, "scales", scales, s.B, 2);
  dtype(where, "scales", scales, DType::F64);
  matrix(where, "probs", probs, s.B * s.L, s.V);
  matrix(where, "out", out, s.B * s.L, s.D);
  DUO_CHECK(out.dtype == table.dtype && probs.dtype == table.dtype, where,
            str("out, probs and table must share a dtype (got ", dtype_name(out.dtype), ", ", dtype_name(probs.dtype),
                ", ", dtype_name(table.dtype), ")"), "");
  DUO_CHECK(s.V >= 1, where, "an empty vocabulary", "");
  DUO_CHECK(inverse_tau > 0 && inverse_tau < INFINITY, where, str("1/τ = ", inverse_tau, " must be positive and finite"),
            "use inverse_temperature(settings, step)");
  return s;
}

// A Linear weight: a contiguous (O, I) matrix.
inline void weight_matrix(const std::string& where, const Tensor& W) {
  present(where, "W", W);
  DUO_CHECK(W.ndim == 2 && W.is_contiguous(), where, str("W ", W.shape_str(), " must be a contiguous (O, I) matrix"), "");
}

struct LinearShape { int64_t N, O, I; };

// Ops::linear: out (N, O) = in (N, I) W^T + bias (O).
inline LinearShape linear(const std::string& where, const Tensor& out, const Tensor& in, const Tensor& W,
                          const Tensor& bias) {
  weight_matrix(where, W);
  const LinearShape s{rows_of(in), W.shape[0], W.shape[1]};
  matrix(where, "in", in, s.N, s.I);
  matrix(where, "out", out, s.N, s.O);
  if (!bias.empty()) numel(where, "bias", bias, s.O);
  return s;
}

// Ops::linear_backward: din (N, I), dW (O, I) with in (N, I), dbias (O), each optional.
inline LinearShape linear_backward(const std::string& where, const Tensor& din, const Tensor& dW, const Tensor& dbias,
                                   const Tensor& dout, const Tensor& in, const Tensor& W) {
  weight_matrix(where, W);
  const LinearShape s{rows_of(dout), W.shape[0], W.shape[1]};
  matrix(where, "dout", dout, s.N, s.O);
  if (!din.empty()) matrix(where, "din", din, s.N, s.I);
  if (!dW.empty()) {
    matrix(where, "dW", dW, s.O, s.I);
    matrix(where, "in", in, s.N, s.I);
  }
  if (!dbias.empty()) numel(where, "dbias", dbias, s.O);
  return s;
}

// The sizes of one LayerNorm call: N = B*L rows of width D; B = 1 (and L = N) when there is no modulation.
struct LnShape { int64_t B, L, D; };

// Ops::layernorm_modulate's inputs: x (B, L, D) or (N, D), weight (D), shift and scale (B, D) row views or both
// empty.
inline LnShape layernorm(const std::string& where, const Tensor& x, const Tensor& weight, const Tensor& shift,
                         const Tensor& scale) {
  present(where, "x", x);
  present(where, "weight", weight);
  DUO_CHECK(shift.empty() == scale.empty(), where, "shift and scale must be both given or both empty",
            "pass empty tensors for both to get a plain LayerNorm");
  const int64_t D = x.dim(-1), N = rows_of(x);
  const int64_t B = shift.empty() ? 1 : shift.dim(0);
  DUO_CHECK(B > 0 && N % B == 0, where,
            str("x ", x.shape_str(), " does not split into ", B, " sequences (shift has ", B, " rows)"), "");
  if (x.ndim == 3 && !shift.empty())
    DUO_CHECK(x.shape[0] == B, where,
              str("x ", x.shape_str(), " has batch ", x.shape[0], " but shift/scale have ", B, " rows"), "");
  matrix(where, "x", x, N, D);
  numel(where, "weight", weight, D);
  if (!shift.empty()) {
    row_view(where, "shift", shift, B, D);
    row_view(where, "scale", scale, B, D);
  }
  return {B, N / B, D};
}

// Ops::layernorm_modulate_backward's gradients and saved statistics for a call of shape s.
inline void layernorm_backward(const std::string& where, const LnShape& s, const Tensor& dx, const Tensor& dweight,
                               const Tensor& dshift, const Tensor& dscale, const Tensor& dout, const Tensor& mean,
                               const Tensor& rstd, const Tensor& shift) {
  const int64_t N = s.B * s.L;
  matrix(where, "dout", dout, N, s.D);
  numel(where, "mean", mean, N);
  numel(where, "rstd", rstd, N);
  if (!dx.empty()) matrix(where, "dx", dx, N, s.D);
  if (!dweight.empty()) numel(where, "dweight", dweight, s.D);
  if (!dshift.empty()) row_view(where, "dshift", dshift, s.B, s.D);
  if (!dscale.empty()) row_view(where, "dscale", dscale, s.B, s.D);
  DUO_CHECK(!shift.empty() || (dshift.empty() && dscale.empty()), where,
            "dshift/dscale given for a LayerNorm without modulation", "pass empty tensors");
}

struct AttnShape { int64_t B, L, D, H, hd; };

// Ops::attention: qkv (B, L, 3D) split into n_heads heads, out (B, L, D), lse (B, H, L).
inline AttnShape attention(const std::string& where, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                           int n_heads) {
  present(where, "qkv", qkv);
  DUO_CHECK(qkv.ndim == 3 && qkv.shape[2] % 3 == 0, where, str("qkv has shape ", qkv.shape_str(), ", expected (B, L, 3D)"),
            "");
  const int64_t B = qkv.shape[0], L = qkv.shape[1], D = qkv.shape[2] / 3;
  DUO_CHECK(n_heads > 0 && D % n_heads == 0, where, str("hidden size ", D, " does not split into ", n_heads, " heads"),
            "");
  matrix(where, "qkv", qkv, B * L, 3 * D);
  matrix(where, "out", out, B * L, D);
  numel(where, "lse", lse, B * n_heads * L);
  return {B, L, D, n_heads, D / n_heads};
}

struct ResidualShape { int64_t B, L, D; };

// Ops::gated_residual: h a contiguous (B, L, D), gate (B, D) row view or empty, dropout p in [0, 1).
inline ResidualShape gated_residual(const std::string& where, const Tensor& h, const Tensor& gate, float p) {
  present(where, "h", h);
  DUO_CHECK(h.ndim == 3 && h.is_contiguous(), where, str("h has shape ", h.shape_str(), ", expected a contiguous (B, L, D)"),
            "");
  DUO_CHECK(p >= 0.0f && p < 1.0f, where, str("dropout p = ", p, " is outside [0, 1)"), "");
  const ResidualShape s{h.shape[0], h.shape[1], h.shape[2]};
  if (!gate.empty()) row_view(where, "gate", gate, s.B, s.D);
  return s;
}

// Ops::gated_residual_backward beyond gated_residual's checks: dbranch (B·L, D) or empty; dgate (B, D) row view or
// empty, and then gate must be given and branch (B·L, D) is read.
inline void gated_residual_grads(const std::string& where, const ResidualShape& s, const Tensor& dbranch,
                                 const Tensor& dgate, const Tensor& branch, const Tensor& gate) {
  if (!dbranch.empty()) matrix(where, "dbranch", dbranch, s.B * s.L, s.D);
  if (dgate.empty()) return;
  DUO_CHECK(!gate.empty(), where, "dgate given but gate is empty (= 1)", "pass an empty dgate when there is no gate");
  row_view(where, "dgate", dgate, s.B, s.D);
  matrix(where, "branch", branch, s.B * s.L, s.D);
}

// ---- embeddings ---------------------------------------------------------------------------------------------
// (Each backend checks the ids' range itself: the CPU in a loop, CUDA with a kernel.)

struct EmbedShape { int64_t N, K, V, D; };  // N rows of K ids (K = 1 for ids, V for the soft input), table (V, D)

// An embedding table or its gradient: a contiguous (V, D) matrix.
inline void table(const std::string& where, const char* name, const Tensor& t) {
  present(where, name, t);
  DUO_CHECK(t.ndim == 2 && t.is_contiguous(), where, str(name, " ", t.shape_str(), " must be a contiguous (V, D)"), "");
}

// Ops::embed_ids and its backward: ids I32 (N, any shape), rows = out or dout (N, D), table or dtable (V, D).
inline EmbedShape embed_ids(const std::string& where, const Tensor& rows, const char* rows_name, const Tensor& ids,
                            const Tensor& tab, const char* table_name) {
  table(where, table_name, tab);
  numel(where, "ids", ids, ids.numel());
  dtype(where, "ids", ids, DType::I32);
  matrix(where, rows_name, rows, ids.numel(), tab.shape[1]);
  return {ids.numel(), 1, tab.shape[0], tab.shape[1]};
}

// Ops::embed_bag and its backward: ids I32 and weights (N, K), rows = out or dout (N, D), table or dtable (V, D).
inline EmbedShape embed_bag(const std::string& where, const Tensor& rows, const char* rows_name, const Tensor& ids,
                            const Tensor& weights, const Tensor& tab, const char* table_name) {
  table(where, table_name, tab);
  present(where, "ids", ids);
  const int64_t K = ids.dim(-1), N = rows_of(ids);
  matrix(where, "ids", ids, N, K);
  dtype(where, "ids", ids, DType::I32);
  matrix(where, "weights", weights, N, K);
  matrix(where, rows_name, rows, N, tab.shape[1]);
  return {N, K, tab.shape[0], tab.shape[1]};
}

// Ops::embed_soft and its backward: a (N, V) distribution input (logits or probs), rows = out or dout (N, D),
// table or dtable (V, D).
inline EmbedShape embed_soft(const std::string& where, const Tensor& rows, const char* rows_name, const Tensor& dist,
                             const char* dist_name, const Tensor& tab, const char* table_name) {
  table(where, table_name, tab);
  present(where, dist_name, dist);
  const int64_t V = tab.shape[0], D = tab.shape[1], N = rows_of(dist);
  matrix(where, dist_name, dist, N, V);
  matrix(where, rows_name, rows, N, D);
  return {N, V, V, D};
}

// ---- rotary -------------------------------------------------------------------------------------------------

struct RotaryShape { int64_t B, L, D, H, hd; };

// Ops::rotary and its backward: in (B, L, 3D) = [q|k|v], out the same shape and not aliasing it, D split into
// n_heads heads of even size.
inline RotaryShape rotary(const std::string& where, const Tensor& out, const Tensor& in, int n_heads) {
  present(where, "input", in);
  DUO_CHECK(in.ndim == 3 && in.shape[2] % 3 == 0, where,
            str("input has shape ", in.shape_str(), ", expected (B, L, 3D)"), "");
  const int64_t B = in.shape[0], L = in.shape[1], D = in.shape[2] / 3;
  DUO_CHECK(n_heads > 0 && D % n_heads == 0 && (D / n_heads) % 2 == 0, where,
            str("hidden size ", D, " does not split into ", n_heads, " heads of even size"), "");
  matrix(where, "input", in, B * L, 3 * D);
  matrix(where, "output", out, B * L, 3 * D);
  DUO_CHECK(out.data != in.data, where, "output may not alias the input", "");
  return {B, L, D, n_heads, D / n_heads};
}

// Ops::rotary_attention and its backward: qkv as the attention takes it, out and lse as it writes them, and the
// rotary scratch `rotated` of qkv's shape and dtype (or empty, where the backend uses none: Ops checks that).
inline AttnShape rotary_attention(const std::string& where, const Tensor& qkv, const Tensor& rotated, const Tensor& out,
                                  const Tensor& lse, int n_heads) {
  if (!rotated.empty()) {
    rotary(where, rotated, qkv, n_heads);
    DUO_CHECK(rotated.dtype == qkv.dtype, where, "rotated must have qkv's dtype",
              "give scratch of qkv's shape and dtype");
  }
  return attention(where, qkv, out, lse, n_heads);
}

// ---- output heads -------------------------------------------------------------------------------------------

struct RowsShape { int64_t N, V; };

// Ops::log_softmax: logits (N, V) with V > 0, out (N, V).
// A contiguous (N, V) tensor of rows with V > 0 (logits and their kin): its shape.
inline RowsShape rows(const std::string& where, const char* name, const Tensor& t) {
  present(where, name, t);
  const RowsShape s{rows_of(t), t.dim(-1)};
  DUO_CHECK(s.V > 0, where, str(name, " have an empty last dimension"), "");
  matrix(where, name, t, s.N, s.V);
  return s;
}

inline RowsShape log_softmax(const std::string& where, const Tensor& out, const Tensor& logits) {
  const RowsShape s = rows(where, "logits", logits);
  matrix(where, "out", out, s.N, s.V);
  return s;
}

// Ops::log_softmax_backward: out, dout and dlogits (N, V).
inline RowsShape log_softmax_backward(const std::string& where, const Tensor& dlogits, const Tensor& dout,
                                      const Tensor& out) {
  present(where, "out", out);
  const int64_t V = out.dim(-1), N = rows_of(out);
  matrix(where, "out", out, N, V);
  matrix(where, "dout", dout, N, V);
  matrix(where, "dlogits", dlogits, N, V);
  return {N, V};
}

// Ops::loss_head: logits (N, V) with V > 0, losses (N), x and z I32 (N), alpha, dalpha and weight F64 (N), dlogits
// (N, V) or empty. (The ids' range: each backend.)
inline RowsShape loss_head(const std::string& where, const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                           const Tensor& x, const Tensor& z, const Tensor& alpha, const Tensor& dalpha,
                           const Tensor& weight) {
  const auto [N, V] = rows(where, "logits", logits);
  numel(where, "losses", losses, N);
  for (auto [name, t] : {std::pair{"x", &x}, std::pair{"z", &z}}) {
    numel(where, name, *t, N);
    dtype(where, name, *t, DType::I32);
  }
  for (auto [name, t] : {std::pair{"alpha", &alpha}, std::pair{"dalpha", &dalpha}, std::pair{"weight", &weight}}) {
    numel(where, name, *t, N);
    dtype(where, name, *t, DType::F64);
  }
  if (!dlogits.empty()) matrix(where, "dlogits", dlogits, N, V);
  return {N, V};
}

struct VocabHeadShape { int64_t N, D, V; };

// Ops::linear_loss_head: y (N, D), W (V, D), bias (V) or empty, the per-token inputs of loss_head (N); dy (N, D) or
// empty (no backward); with dy, dW (V, D) and dbias (V, or empty when bias is).
inline VocabHeadShape linear_loss_head(const std::string& where, const Tensor& losses, const Tensor& dy,
                                       const Tensor& dW, const Tensor& dbias, const Tensor& y, const Tensor& W,
                                       const Tensor& bias, const Tensor& x, const Tensor& z, const Tensor& alpha,
                                       const Tensor& dalpha, const Tensor& weight) {
  weight_matrix(where, W);
  const VocabHeadShape s{rows_of(y), W.shape[1], W.shape[0]};
  DUO_CHECK(s.V > 0, where, "the vocabulary (W's rows) is empty", "");
  matrix(where, "y", y, s.N, s.D);
  if (!bias.empty()) numel(where, "bias", bias, s.V);
  numel(where, "losses", losses, s.N);
  for (auto [name, t] : {std::pair{"x", &x}, std::pair{"z", &z}}) {
    numel(where, name, *t, s.N);
    dtype(where, name, *t, DType::I32);
  }
  for (auto [name, t] : {std::pair{"alpha", &alpha}, std::pair{"dalpha", &dalpha}, std::pair{"weight", &weight}}) {
    numel(where, name, *t, s.N);
    dtype(where, name, *t, DType::F64);
  }
  if (!dy.empty()) {
    matrix(where, "dy", dy, s.N, s.D);
    matrix(where, "dW", dW, s.V, s.D);
    DUO_CHECK(dbias.empty() == bias.empty(), where, "dbias must be given exactly when bias is", "");
    if (!dbias.empty()) numel(where, "dbias", dbias, s.V);
  }
  return s;
}

// Ops::kl_head: student and teacher (N, V) with V > 0, losses (N), weight F64 (N), dstudent (N, V) or empty.
inline RowsShape kl_head(const std::string& where, const Tensor& losses, const Tensor& dstudent, const Tensor& student,
                         const Tensor& teacher, const Tensor& weight) {
  const auto [N, V] = rows(where, "student", student);
  matrix(where, "teacher", teacher, N, V);
  numel(where, "losses", losses, N);
  numel(where, "weight", weight, N);
  dtype(where, "weight", weight, DType::F64);
  if (!dstudent.empty()) matrix(where, "dstudent", dstudent, N, V);
  return {N, V};
}

// Ops::cross_entropy: logits (N, V) with V > 0, losses (N), targets I32 (N), dlogits (N, V) or empty.
inline RowsShape cross_entropy(const std::string& where, const Tensor& losses, const Tensor& dlogits,
                               const Tensor& logits, const Tensor& targets) {
  const auto [N, V] = rows(where, "logits", logits);
  numel(where, "losses", losses, N);
  numel(where, "targets", targets, N);
  dtype(where, "targets", targets, DType::I32);
  if (!dlogits.empty()) matrix(where, "dlogits", dlogits, N, V);
  return {N, V};
}

// Ops::adamw: four flat buffers of the same size; steps count from 1 (bias correction).
inline void adamw(const std::string& where, const Tensor& params, const Tensor& grads, const Tensor& m,
                  const Tensor& v, int64_t step) {
  const int64_t n = params.numel();
  numel(where, "params", params, n);
  numel(where, "grads", grads, n);
  numel(where, "m", m, n);
  numel(where, "v", v, n);
  DUO_CHECK(step >= 1, where, str("step is ", step, ", expected >= 1"), "steps count from 1");
}

}  // namespace duo::checks
