// The public side of every op (backend/ops.h): the shared argument checks, the backend's implementation, the
// observer. Written once here, so no backend can skip a check or hide an op from the observer.
#include "backend/ops.h"
#include <algorithm>
#include "backend/shape_checks.h"
#include "backend/weight_copies.h"
#include "core/error.h"

namespace duo {

namespace {

OpCall with_weights(OpCall c, WeightCopy w) {
  c.weights = w;
  return c;
}

}  // namespace

WeightCopy Ops::prepare_weights(const Tensor& W) {
  WeightCopies* copies = weight_copies();
  if (!copies) return WeightCopy::None;
  const WeightCopies::Slot slot = copies->find(W);
  if (!slot.copy) return WeightCopy::None;
  if (slot.current) return WeightCopy::Ready;
  round_weights(slot.copy, W);
  copies->made(W);
  return WeightCopy::Made;
}

void Ops::weights_written(const Tensor& t) {
  if (WeightCopies* copies = weight_copies(); copies && !t.empty()) copies->written(t.data, t.nbytes());
}

void Ops::fill(Tensor& t, double value) {
  const char* w = "fill";
  checks::present(w, "t", t);
  do_fill(t, value);
  weights_written(t);
  if (observer_) notify(make_call(OpKind::Fill, {&t}, {}));
}

void Ops::copy(Tensor& dst, const Tensor& src) {
  const char* w = "copy";
  DUO_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(), w,
            str("cannot copy ", dtype_name(src.dtype), src.shape_str(), " into ", dtype_name(dst.dtype),
                dst.shape_str()),
            "source and destination need the same dtype and element count");
  DUO_CHECK(dst.is_contiguous() && src.is_contiguous(), w, "tensors must be contiguous", "");
  do_copy(dst, src);
  weights_written(dst);
  if (observer_) notify(make_call(OpKind::Copy, {&dst}, {&src}));
}

void Ops::embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) {
  const char* w = "embed_ids";
  checks::embed_ids(w, out, "out", ids, table, "table");
  do_embed_ids(out, ids, table);
  if (observer_) notify(make_call(OpKind::EmbedIds, {&out}, {&ids, &table}));
}

void Ops::embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const char* w = "embed_ids_backward";
  checks::embed_ids(w, dout, "dout", ids, dtable, "dtable");
  do_embed_ids_backward(dtable, ids, dout);
  if (observer_) notify(make_call(OpKind::EmbedIdsBackward, {&dtable}, {&ids, &dout}));
}

void Ops::embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) {
  const char* w = "embed_soft";
  const checks::EmbedShape s = checks::embed_soft(w, out, "out", logits, "logits", table, "table");
  checks::matrix(w, "probs", probs, s.N, s.V);
  const WeightCopy wc = prepare_weights(table);
  do_embed_soft(out, probs, logits, table);
  if (observer_) notify(with_weights(make_call(OpKind::EmbedSoft, {&out, &probs}, {&logits, &table}), wc));
}

void Ops::embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) {
  const char* w = "embed_soft_backward";
  checks::embed_soft(w, dout, "dout", probs, "probs", dtable, "dtable");
  do_embed_soft_backward(dtable, probs, dout);
  if (observer_) notify(make_call(OpKind::EmbedSoftBackward, {&dtable}, {&probs, &dout}));
}

void Ops::embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                        double inverse_tau, const Philox& noise, const Tensor& table) {
  const char* w = "embed_relaxed";
  checks::embed_relaxed(w, out, probs, z, x, scales, inverse_tau, table);
  const WeightCopy wc = prepare_weights(table);
  do_embed_relaxed(out, probs, z, x, scales, inverse_tau, noise, table);
  if (observer_)
    notify(with_weights(make_call(OpKind::EmbedRelaxed, {&out, &probs, &z}, {&x, &scales, &table}), wc));
}

void Ops::embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) {
  const char* w = "embed_bag";
  checks::embed_bag(w, out, "out", ids, weights, table, "table");
  do_embed_bag(out, ids, weights, table);
  if (observer_) notify(make_call(OpKind::EmbedBag, {&out}, {&ids, &weights, &table}));
}

void Ops::embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) {
  const char* w = "embed_bag_backward";
  checks::embed_bag(w, dout, "dout", ids, weights, dtable, "dtable");
  do_embed_bag_backward(dtable, ids, weights, dout);
  if (observer_) notify(make_call(OpKind::EmbedBagBackward, {&dtable}, {&ids, &weights, &dout}));
}

void Ops::timestep_embedding(Tensor& out, const Tensor& sigma) {
  const char* w = "timestep_embedding";
  checks::present(w, "out", out);
  DUO_CHECK(out.ndim == 2 && out.is_contiguous() && out.shape[1] % 2 == 0, w,
            str("out has shape ", out.shape_str(), ", expected a contiguous (B, F) with F even"), "");
  checks::numel(w, "sigma", sigma, out.shape[0]);
  do_timestep_embedding(out, sigma);
  if (observer_) notify(make_call(OpKind::TimestepEmbedding, {&out}, {&sigma}));
}

void Ops::linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* w = "linear";
  checks::linear(w, out, in, W, bias);
  const WeightCopy wc = prepare_weights(W);
  do_linear(out, in, W, bias);
  if (observer_) notify(with_weights(make_call(OpKind::Linear, {&out}, {&in, &W, &bias}), wc));
}

void Ops::linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                          const Tensor& W, bool accumulate_din) {
  const char* w = "linear_backward";
  checks::linear_backward(w, din, dW, dbias, dout, in, W);
  const WeightCopy wc = din.empty() ? WeightCopy::None : prepare_weights(W);  // only din's GEMM reads W
  do_linear_backward(din, dW, dbias, dout, in, W, accumulate_din);
  if (observer_)  // an accumulating din is read too
    notify(with_weights(accumulate_din
                            ? make_call(OpKind::LinearBackward, {&din, &dW, &dbias}, {&dout, &in, &W, &din})
                            : make_call(OpKind::LinearBackward, {&din, &dW, &dbias}, {&dout, &in, &W}),
                        wc));
}

void Ops::silu(Tensor& out, const Tensor& in) {
  const char* w = "silu";
  checks::elementwise(w, out, "out", in, "in");
  do_silu(out, in);
  if (observer_) notify(make_call(OpKind::Silu, {&out}, {&in}));
}

void Ops::silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* w = "silu_backward";
  checks::elementwise(w, din, "din", dout, "dout");
  checks::elementwise(w, din, "din", in, "in");
  do_silu_backward(din, dout, in);
  if (observer_) notify(make_call(OpKind::SiluBackward, {&din}, {&dout, &in}));
}

void Ops::gelu(Tensor& out, const Tensor& in) {
  const char* w = "gelu";
  checks::elementwise(w, out, "out", in, "in");
  do_gelu(out, in);
  if (observer_) notify(make_call(OpKind::Gelu, {&out}, {&in}));
}

void Ops::gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* w = "gelu_backward";
  checks::elementwise(w, din, "din", dout, "dout");
  checks::elementwise(w, din, "din", in, "in");
  do_gelu_backward(din, dout, in);
  if (observer_) notify(make_call(OpKind::GeluBackward, {&din}, {&dout, &in}));
}

void Ops::gelu_linear_backward(Tensor& dpre, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                               const Tensor& W, const Tensor& pre) {
  const char* w = "gelu_linear_backward";
  DUO_CHECK(!dpre.empty(), w, "dpre is absent", "the op exists to write the GELU input's gradient; give dpre");
  checks::linear_backward(w, dpre, dW, dbias, dout, in, W);
  checks::elementwise(w, dpre, "dpre", pre, "pre");
  checks::elementwise(w, in, "in", pre, "pre");
  const WeightCopy wc = prepare_weights(W);
  do_gelu_linear_backward(dpre, dW, dbias, dout, in, W, pre);
  if (observer_)
    notify(with_weights(make_call(OpKind::GeluLinearBackward, {&dpre, &dW, &dbias}, {&dout, &in, &W, &pre}), wc));
}

void Ops::linear_gelu(Tensor& out, Tensor& pre, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* w = "linear_gelu";
  checks::linear(w, pre, in, W, bias);
  checks::elementwise(w, out, "out", pre, "pre");
  const WeightCopy wc = prepare_weights(W);
  do_linear_gelu(out, pre, in, W, bias);
  if (observer_) notify(with_weights(make_call(OpKind::LinearGelu, {&out, &pre}, {&in, &W, &bias}), wc));
}

void Ops::layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                             const Tensor& shift, const Tensor& scale) {
  const char* w = "layernorm_modulate";
  const checks::LnShape s = checks::layernorm(w, x, weight, shift, scale);
  checks::matrix(w, "out", out, s.B * s.L, s.D);
  checks::numel(w, "mean", mean, s.B * s.L);
  checks::numel(w, "rstd", rstd, s.B * s.L);
  do_layernorm_modulate(out, mean, rstd, x, weight, shift, scale);
  if (observer_) notify(make_call(OpKind::LayernormModulate, {&out, &mean, &rstd}, {&x, &weight, &shift, &scale}));
}

void Ops::layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const Tensor& dout,
                                      const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                      const Tensor& shift, const Tensor& scale) {
  const char* w = "layernorm_modulate_backward";
  const checks::LnShape s = checks::layernorm(w, x, weight, shift, scale);
  checks::layernorm_backward(w, s, dx, dweight, dshift, dscale, dout, mean, rstd, shift);
  do_layernorm_modulate_backward(dx, dweight, dshift, dscale, dout, x, mean, rstd, weight, shift, scale);
  if (observer_)
    notify(make_call(OpKind::LayernormModulateBackward, {&dx, &dweight, &dshift, &dscale},
                     {&dout, &x, &mean, &rstd, &weight, &shift, &scale}));
}

void Ops::rotary(Tensor& out, const Tensor& in, int n_heads) {
  const char* w = "rotary";
  checks::rotary(w, out, in, n_heads);
  do_rotary(out, in, n_heads);
  if (observer_) {
    OpCall c = make_call(OpKind::Rotary, {&out}, {&in});
    c.n_heads = n_heads;
    notify(c);
  }
}

void Ops::rotary_backward(Tensor& din, const Tensor& dout, int n_heads) {
  const char* w = "rotary_backward";
  checks::rotary(w, din, dout, n_heads);
  do_rotary_backward(din, dout, n_heads);
  if (observer_) {
    OpCall c = make_call(OpKind::RotaryBackward, {&din}, {&dout});
    c.n_heads = n_heads;
    notify(c);
  }
}

void Ops::attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) {
  const char* w = "attention";
  checks::attention(w, qkv, out, lse, n_heads);
  do_attention(out, lse, qkv, n_heads, causal);
  if (observer_) {
    OpCall c = make_call(OpKind::Attention, {&out, &lse}, {&qkv});
    c.n_heads = n_heads;
    c.causal = causal;
    notify(c);
  }
}

void Ops::attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                             const Tensor& lse, int n_heads, bool causal) {
  const char* w = "attention_backward";
  const checks::AttnShape s = checks::attention(w, qkv, out, lse, n_heads);
  checks::matrix(w, "dout", dout, s.B * s.L, s.D);
  checks::matrix(w, "dqkv", dqkv, s.B * s.L, 3 * s.D);
  do_attention_backward(dqkv, dout, qkv, out, lse, n_heads, causal);
  if (observer_) {
    OpCall c = make_call(OpKind::AttentionBackward, {&dqkv}, {&dout, &qkv, &out, &lse});
    c.n_heads = n_heads;
    c.causal = causal;
    notify(c);
  }
}

bool Ops::rotary_attention_uses_scratch(const Tensor&, int) const { return true; }

// The scratch of rotary_attention(_backward): given, or empty where this backend says the call does not use it.
void Ops::check_rotary_scratch(const char* where, const Tensor& qkv, int n_heads, const Tensor& rotated) const {
  if (!rotated.empty()) return;
  DUO_CHECK(!rotary_attention_uses_scratch(qkv, n_heads), where,
            str("no scratch for rotary(qkv) given, and the ", name(), " backend needs it for this call"),
            "plan scratch of qkv's shape when Ops::rotary_attention_uses_scratch says so");
}

void Ops::rotary_attention(Tensor& out, Tensor& lse, Tensor& rotated, const Tensor& qkv, int n_heads, bool causal) {
  const char* w = "rotary_attention";
  check_rotary_scratch(w, qkv, n_heads, rotated);
  checks::rotary_attention(w, qkv, rotated, out, lse, n_heads);
  do_rotary_attention(out, lse, rotated, qkv, n_heads, causal);
  if (observer_) {
    OpCall c = make_call(OpKind::RotaryAttention, {&out, &lse}, {&qkv});
    c.n_heads = n_heads;
    c.causal = causal;
    notify(c);
  }
}

void Ops::rotary_attention_backward(Tensor& dqkv, Tensor& drotated, Tensor& rotated, const Tensor& dout,
                                    const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads, bool causal) {
  const char* w = "rotary_attention_backward";
  check_rotary_scratch(w, qkv, n_heads, rotated);
  check_rotary_scratch(w, qkv, n_heads, drotated);
  const checks::AttnShape s = checks::rotary_attention(w, qkv, rotated, out, lse, n_heads);
  if (!drotated.empty()) checks::rotary(w, dqkv, drotated, n_heads);
  checks::matrix(w, "dout", dout, s.B * s.L, s.D);
  checks::matrix(w, "dqkv", dqkv, s.B * s.L, 3 * s.D);
  do_rotary_attention_backward(dqkv, drotated, rotated, dout, qkv, out, lse, n_heads, causal);
  if (observer_) {
    OpCall c = make_call(OpKind::RotaryAttentionBackward, {&dqkv}, {&dout, &qkv, &out, &lse});
    c.n_heads = n_heads;
    c.causal = causal;
    notify(c);
  }
}

void Ops::gated_residual(Tensor& h, const Tensor& branch, const Tensor& gate, float p, const Philox& rng) {
  const char* w = "gated_residual";
  const checks::ResidualShape s = checks::gated_residual(w, h, gate, p);
  checks::matrix(w, "branch", branch, s.B * s.L, s.D);
  do_gated_residual(h, h, branch, gate, p, rng);
  if (observer_) notify(make_call(OpKind::GatedResidual, {&h}, {&branch, &gate}));
}

namespace {
// The out-of-place gated residual's checks (gated_residual, gated_residual_layernorm).
void check_gated_residual_out(const char* w, const Tensor& out, const Tensor& h, const Tensor& branch,
                              const Tensor& gate, float p) {
  DUO_CHECK(out.dtype == h.dtype && out.numel() == h.numel() && out.is_contiguous() && h.is_contiguous(), w,
            str("out ", dtype_name(out.dtype), out.shape_str(), " and h ", dtype_name(h.dtype), h.shape_str(),
                " must be contiguous with the same dtype and element count"), "");
  DUO_CHECK(out.data != h.data && out.data != branch.data && out.data != gate.data, w,
            "out aliases an input", "use the in-place gated_residual(h, branch, gate, ...)");
  const checks::ResidualShape s = checks::gated_residual(w, out, gate, p);
  checks::matrix(w, "branch", branch, s.B * s.L, s.D);
}
}  // namespace

void Ops::gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                         const Philox& rng) {
  check_gated_residual_out("gated_residual", out, h, branch, gate, p);
  do_gated_residual(out, h, branch, gate, p, rng);
  if (observer_) notify(make_call(OpKind::GatedResidual, {&out}, {&h, &branch, &gate}));
}

void Ops::gated_residual_layernorm(Tensor& out, Tensor& ln, Tensor& mean, Tensor& rstd, const Tensor& h,
                                   const Tensor& branch, const Tensor& gate, float p, const Philox& rng,
                                   const Tensor& weight, const Tensor& shift, const Tensor& scale) {
  const char* w = "gated_residual_layernorm";
  check_gated_residual_out(w, out, h, branch, gate, p);
  const checks::LnShape s = checks::layernorm(w, out, weight, shift, scale);
  checks::matrix(w, "ln", ln, s.B * s.L, s.D);
  checks::numel(w, "mean", mean, s.B * s.L);
  checks::numel(w, "rstd", rstd, s.B * s.L);
  DUO_CHECK(ln.data != out.data && ln.data != h.data && ln.data != branch.data, w, "ln aliases the residual",
            "give the LayerNorm its own output");
  do_gated_residual_layernorm(out, ln, mean, rstd, h, branch, gate, p, rng, weight, shift, scale);
  if (observer_)
    notify(make_call(OpKind::GatedResidualLayernorm, {&out, &ln, &mean, &rstd},
                     {&h, &branch, &gate, &weight, &shift, &scale}));
}

void Ops::gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                                  const Tensor& gate, float p, const Philox& rng) {
  const char* w = "gated_residual_backward";
  const checks::ResidualShape s = checks::gated_residual(w, dh, gate, p);
  checks::gated_residual_grads(w, s, dbranch, dgate, branch, gate);
  do_gated_residual_backward(dbranch, dgate, dh, branch, gate, p, rng);
  if (observer_) notify(make_call(OpKind::GatedResidualBackward, {&dbranch, &dgate}, {&dh, &branch, &gate}));
}

void Ops::log_softmax(Tensor& out, const Tensor& logits) {
  const char* w = "log_softmax";
  checks::log_softmax(w, out, logits);
  do_log_softmax(out, logits);
  if (observer_) notify(make_call(OpKind::LogSoftmax, {&out}, {&logits}));
}

void Ops::log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) {
  const char* w = "log_softmax_backward";
  checks::log_softmax_backward(w, dlogits, dout, out);
  do_log_softmax_backward(dlogits, dout, out);
  if (observer_) notify(make_call(OpKind::LogSoftmaxBackward, {&dlogits}, {&dout, &out}));
}

void Ops::cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                        double grad_scale) {
  const char* w = "cross_entropy";
  checks::cross_entropy(w, losses, dlogits, logits, targets);
  do_cross_entropy(losses, dlogits, logits, targets, grad_scale);
  if (observer_) notify(make_call(OpKind::CrossEntropy, {&losses, &dlogits}, {&logits, &targets}));
}

void Ops::loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits,
                    const Tensor& x, const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const char* w = "loss_head";
  checks::loss_head(w, losses, dlogits, logits, x, z, alpha, dalpha, weight);
  do_loss_head(a, losses, dlogits, logits, x, z, alpha, dalpha, weight);
  if (observer_) notify(make_call(OpKind::LossHead, {&losses, &dlogits}, {&logits, &x, &z, &alpha, &dalpha, &weight}));
}

void Ops::linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                           const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x, const Tensor& z,
                           const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const char* w = "linear_loss_head";
  const auto [N, D, V] = checks::linear_loss_head(w, losses, dy, dW, dbias, y, W, bias, x, z, alpha, dalpha, weight);
  const WeightCopy wc = prepare_weights(W);
  do_linear_loss_head(a, losses, dy, dW, dbias, y, W, bias, x, z, alpha, dalpha, weight);
  if (observer_) {
    // dW and dbias accumulate: read and written.
    OpCall c = dy.empty() ? make_call(OpKind::LinearLossHead, {&losses, &dy, &dW, &dbias},
                                      {&y, &W, &bias, &x, &z, &alpha, &dalpha, &weight})
                          : make_call(OpKind::LinearLossHead, {&losses, &dy, &dW, &dbias},
                                      {&y, &W, &bias, &x, &z, &alpha, &dalpha, &weight, &dW, &dbias});
    c.chunk_rows = std::min<int64_t>(N, vocab_chunk_rows(V, y.dtype));
    c.weights = wc;
    notify(c);
  }
}

// Logits of at most 512 MiB a chunk on a host backend (at least 64 rows). Every chunk reads W and adds into dW once,
// so small chunks cost more weight traffic than the logits they save: at V = 50258, chunks of 333 rows made a batch
// of 1,024 rows 5-15% slower than the unfused head (bench-dit_step --head fused, tiny model, 2 threads).
int64_t Ops::default_vocab_chunk_rows(int64_t V, DType dt) const {
  const int64_t budget = int64_t(512) << 20;
  return std::max<int64_t>(64, budget / (std::max<int64_t>(V, 1) * int64_t(dtype_size(dt))));
}

void Ops::do_linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                              const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x, const Tensor& z,
                              const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const int64_t N = y.numel() / y.dim(-1), D = y.dim(-1), V = W.dim(0);
  if (N == 0) return;
  // Chunks of equal size (no short last chunk): as few as vocab_chunk_rows allows.
  const int64_t max_rows = std::min<int64_t>(N, vocab_chunk_rows(V, y.dtype)), chunks = (N + max_rows - 1) / max_rows;
  const int64_t C = (N + chunks - 1) / chunks;
  const size_t es = dtype_size(y.dtype), words = (size_t(2 * C * V) * es + 7) / 8;
  if (head_scratch_.size() < words) head_scratch_.resize(words);
  char* base = reinterpret_cast<char*>(head_scratch_.data());
  const bool backward = !dy.empty();
  const Tensor y2 = y.view({N, D});
  for (int64_t r0 = 0; r0 < N; r0 += C) {
    const int64_t n = std::min(C, N - r0);
    Tensor logits(base, y.dtype, {n, V}, device());
    Tensor dlogits = backward ? Tensor(base + size_t(C * V) * es, y.dtype, {n, V}, device()) : Tensor();
    Tensor yc = y2.rows(r0, n), lc = losses.view({N}).rows(r0, n);
    do_linear(logits, yc, W, bias);
    do_loss_head(a, lc, dlogits, logits, x.view({N}).rows(r0, n), z.view({N}).rows(r0, n),
                 alpha.view({N}).rows(r0, n), dalpha.view({N}).rows(r0, n), weight.view({N}).rows(r0, n));
    if (backward) {
      Tensor dyc = dy.view({N, D}).rows(r0, n);
      do_linear_backward(dyc, dW, dbias, dlogits, yc, W, false);
    }
  }
}

void Ops::kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student,
                  const Tensor& teacher, const Tensor& weight) {
  const char* w = "kl_head";
  checks::kl_head(w, losses, dstudent, student, teacher, weight);
  do_kl_head(dir, losses, dstudent, student, teacher, weight);
  if (observer_) notify(make_call(OpKind::KlHead, {&losses, &dstudent}, {&student, &teacher, &weight}));
}

void Ops::gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales,
                              double inverse_tau, const Philox& noise) {
  const char* w = "gaussian_relaxation";
  checks::gaussian_relaxation(w, soft_logits, z, x, scales, inverse_tau);
  do_gaussian_relaxation(soft_logits, z, x, scales, inverse_tau, noise);
  if (observer_) notify(make_call(OpKind::GaussianRelaxation, {&soft_logits, &z}, {&x, &scales}));
}

void Ops::diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep, const Tensor& sigma,
                         const DiffusionStepArgs& a) {
  const char* w = "diffusion_step";
  checks::diffusion_step(w, z, status, logits, keep, sigma, a);
  do_diffusion_step(z, status, logits, keep, sigma, a);
  if (observer_) notify(make_call(OpKind::DiffusionStep, {&z, &status}, {&logits, &keep, &sigma}));
}

double Ops::sum_squares(const Tensor& x) {
  const char* w = "sum_squares";
  checks::numel(w, "x", x, x.numel());
  const double result = do_sum_squares(x);
  if (observer_) notify(make_call(OpKind::SumSquares, {}, {&x}));
  return result;
}

std::vector<double> Ops::sum_squares_chunks(const Tensor& x) {
  const char* w = "sum_squares_chunks";
  checks::numel(w, "x", x, x.numel());
  std::vector<double> result = do_sum_squares_chunks(x);
  DUO_ASSERT((int64_t)result.size() == (x.numel() + sum_squares_chunk() - 1) / sum_squares_chunk());
  if (observer_) notify(make_call(OpKind::SumSquaresChunks, {}, {&x}));
  return result;
}

void Ops::scale(Tensor& x, double s) {
  const char* w = "scale";
  checks::numel(w, "x", x, x.numel());
  do_scale(x, s);
  weights_written(x);
  if (observer_) notify(make_call(OpKind::Scale, {&x}, {}));
}

void Ops::adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) {
  const char* w = "adamw";
  checks::adamw(w, params, grads, m, v, a.step);
  // The working copy of the params goes along (the backend's do_adamw asks WeightCopies::follows the same).
  WeightCopies* copies = weight_copies();
  const bool copy = copies && copies->follows(params) != nullptr;
  do_adamw(params, grads, m, v, a);
  if (copies) copies->updated(params, copy);
  if (observer_)
    notify(with_weights(make_call(OpKind::Adamw, {&params, &m, &v}, {&grads}),
                        copy ? WeightCopy::Made : WeightCopy::None));
}

void Ops::ema_update(Tensor& shadow, const Tensor& params, double decay) {
  const char* w = "ema_update";
  checks::numel(w, "shadow", shadow, shadow.numel());
  checks::numel(w, "params", params, shadow.numel());
  do_ema_update(shadow, params, decay);
  weights_written(shadow);
  if (observer_) notify(make_call(OpKind::EmaUpdate, {&shadow}, {&params}));
}

}  // namespace duo
