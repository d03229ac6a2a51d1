#include "backend/op_kinds.h"

namespace duo {

const char* op_name(OpKind k) {
  switch (k) {
    case OpKind::Fill: return "fill";
    case OpKind::Copy: return "copy";
    case OpKind::EmbedIds: return "embed_ids";
    case OpKind::EmbedIdsBackward: return "embed_ids_backward";
    case OpKind::EmbedSoft: return "embed_soft";
    case OpKind::EmbedSoftBackward: return "embed_soft_backward";
    case OpKind::EmbedRelaxed: return "embed_relaxed";
    case OpKind::EmbedBag: return "embed_bag";
    case OpKind::EmbedBagBackward: return "embed_bag_backward";
    case OpKind::TimestepEmbedding: return "timestep_embedding";
    case OpKind::Linear: return "linear";
    case OpKind::LinearBackward: return "linear_backward";
    case OpKind::Silu: return "silu";
    case OpKind::SiluBackward: return "silu_backward";
    case OpKind::Gelu: return "gelu";
    case OpKind::GeluBackward: return "gelu_backward";
    case OpKind::LinearGelu: return "linear_gelu";
    case OpKind::GeluLinearBackward: return "gelu_linear_backward";
    case OpKind::LayernormModulate: return "layernorm_modulate";
    case OpKind::LayernormModulateBackward: return "layernorm_modulate_backward";
    case OpKind::Rotary: return "rotary";
    case OpKind::RotaryBackward: return "rotary_backward";
    case OpKind::Attention: return "attention";
    case OpKind::AttentionBackward: return "attention_backward";
    case OpKind::RotaryAttention: return "rotary_attention";
    case OpKind::RotaryAttentionBackward: return "rotary_attention_backward";
    case OpKind::GatedResidual: return "gated_residual";
    case OpKind::GatedResidualBackward: return "gated_residual_backward";
    case OpKind::GatedResidualLayernorm: return "gated_residual_layernorm";
    case OpKind::LogSoftmax: return "log_softmax";
    case OpKind::LogSoftmaxBackward: return "log_softmax_backward";
    case OpKind::CrossEntropy: return "cross_entropy";
    case OpKind::LossHead: return "loss_head";
    case OpKind::LinearLossHead: return "linear_loss_head";
    case OpKind::KlHead: return "kl_head";
    case OpKind::GaussianRelaxation: return "gaussian_relaxation";
    case OpKind::DiffusionStep: return "diffusion_step";
    case OpKind::SumSquares: return "sum_squares";
    case OpKind::SumSquaresChunks: return "sum_squares_chunks";
    case OpKind::Scale: return "scale";
    case OpKind::Adamw: return "adamw";
    case OpKind::EmaUpdate: return "ema_update";
    case OpKind::Count: break;
  }
  return "?";
}

namespace {

double numel(const Tensor* t) { return t && !t->empty() ? (double)t->numel() : 0.0; }
double rows(const Tensor* t) { return t && !t->empty() && t->ndim > 0 ? numel(t) / (double)t->dim(-1) : 0.0; }
double last(const Tensor* t) { return t && !t->empty() && t->ndim > 0 ? (double)t->dim(-1) : 0.0; }

}  // namespace

OpCost op_cost(const OpCall& c) {
  OpCost k;
  for (int i = 0; i < c.n_out; ++i)
    if (c.out[i] && !c.out[i]->empty()) k.bytes += (double)c.out[i]->nbytes();
  for (int i = 0; i < c.n_in; ++i)
    if (c.in[i] && !c.in[i]->empty()) k.bytes += (double)c.in[i]->nbytes();
  const Tensor* o0 = c.n_out > 0 ? c.out[0] : nullptr;
  const Tensor* i0 = c.n_in > 0 ? c.in[0] : nullptr;
  switch (c.kind) {
    case OpKind::Fill: case OpKind::Copy: case OpKind::EmbedIds: break;
    case OpKind::EmbedIdsBackward: k.flops = numel(c.in[1]); break;                         // dtable += dout rows
    case OpKind::EmbedSoft: k.flops = 2 * numel(c.out[1]) * last(o0) + 5 * numel(c.out[1]); break;  // P·E, softmax
    case OpKind::EmbedSoftBackward: k.flops = 2 * numel(c.in[0]) * last(c.in[1]); break;    // Pᵀ·dout
    case OpKind::EmbedRelaxed:  // out: out (N, D), probs (N, V), z; P·E, and per entry the relaxation's draw
      // (Philox, Box–Muller) and w, made three times by the CUDA kernel (max and argmax, sum, probabilities): ~90
      k.flops = 2 * numel(c.out[1]) * last(o0) + 90 * numel(c.out[1]);
      break;
    case OpKind::EmbedBag: k.flops = 2 * numel(c.in[1]) * last(o0); break;                  // N·k rows of D
    case OpKind::EmbedBagBackward: k.flops = 2 * numel(c.in[1]) * last(c.in[2]); break;
    case OpKind::TimestepEmbedding: k.flops = 10 * numel(o0); break;
    case OpKind::Linear:                                                  // out (N, O) = in (N, I) · Wᵀ + bias
      k.flops = 2 * rows(i0) * last(i0) * last(o0) + numel(o0);
      break;
    case OpKind::LinearBackward: {                                        // in: dout (N, O), in (N, I), W (O, I)
      const double N = rows(c.in[0]), O = last(c.in[0]), I = last(c.in[1]);
      k.flops = 2 * N * I * O * ((numel(c.out[0]) > 0 ? 1 : 0) + 1) + (numel(c.out[2]) > 0 ? N * O : 0);
      break;
    }
    case OpKind::LinearGelu: k.flops = 2 * rows(i0) * last(i0) * last(o0) + 9 * numel(o0); break;
    case OpKind::GeluLinearBackward: {  // linear_backward's GEMMs and bias sums, then GELU's derivative on dpre
      const double N = rows(c.in[0]), O = last(c.in[0]), I = last(c.in[1]);
      k.flops = 4 * N * I * O + (numel(c.out[2]) > 0 ? N * O : 0) + 16 * numel(o0);
      break;
    }
    case OpKind::Silu: k.flops = 4 * numel(o0); break;
    case OpKind::SiluBackward: k.flops = 7 * numel(o0); break;
    case OpKind::Gelu: k.flops = 8 * numel(o0); break;
    case OpKind::GeluBackward: k.flops = 16 * numel(o0); break;
    case OpKind::LayernormModulate: k.flops = 8 * numel(o0); break;
    case OpKind::LayernormModulateBackward: k.flops = 16 * numel(c.in[0]); break;
    case OpKind::Rotary: case OpKind::RotaryBackward: k.flops = 2 * numel(o0); break;
    case OpKind::Attention: case OpKind::AttentionBackward:
    case OpKind::RotaryAttention: case OpKind::RotaryAttentionBackward: {
      // qkv (B, L, 3D): QKᵀ and PV are 2·L²·D multiply-adds each per sequence (half of it when causal); the
      // backward recomputes the scores and forms dQ, dK, dV, dP: 2.5× the forward, as FlashAttention counts.
      // The rotary forms add the rotation of q and k (2 per feature of qkv), and the backward's of dq and dk.
      const bool forward = c.kind == OpKind::Attention || c.kind == OpKind::RotaryAttention;
      const bool rot = c.kind == OpKind::RotaryAttention || c.kind == OpKind::RotaryAttentionBackward;
      const Tensor* qkv = forward ? c.in[0] : c.in[1];
      const double L = qkv && qkv->ndim >= 2 ? (double)qkv->dim(-2) : 0.0;
      const double fwd = 4 * rows(qkv) * L * (last(qkv) / 3) * (c.causal ? 0.5 : 1.0);
      k.flops = (forward ? fwd : 2.5 * fwd) + (rot ? (forward ? 2 : 4) * rows(qkv) * last(qkv) : 0.0);
      break;
    }
    case OpKind::GatedResidual: k.flops = 3 * numel(o0); break;
    case OpKind::GatedResidualBackward: k.flops = 4 * numel(c.in[0]); break;
    case OpKind::GatedResidualLayernorm: k.flops = 11 * numel(o0); break;  // the residual 3, LayerNorm 8
    case OpKind::LogSoftmax: k.flops = 4 * numel(o0); break;
    case OpKind::LogSoftmaxBackward: k.flops = 3 * numel(o0); break;
    case OpKind::CrossEntropy: k.flops = 5 * numel(i0); break;
    case OpKind::LossHead: case OpKind::KlHead: k.flops = 10 * numel(i0); break;
    case OpKind::LinearLossHead: {  // out: losses, dy, dW, dbias; in: y (N, D), W (V, D), bias, ...
      // logits = y Wᵀ + bias, the loss head over them, and with dy: dy = dlogits W, dW += dlogitsᵀ y, dbias
      const double N = rows(i0), D = last(i0), V = rows(c.in[1]);
      const bool backward = numel(c.out[1]) > 0;
      k.flops = 2 * N * V * D + N * V + 10 * N * V + (backward ? 4 * N * V * D + N * V : 0);
      break;
    }
    case OpKind::GaussianRelaxation:  // Philox, Box–Muller, scale, argmax over V per row (soft logits or not)
      k.flops = 20 * numel(c.out[1]) * (o0 && o0->ndim == 3 ? (double)o0->dim(-1) : 0.0);
      break;
    case OpKind::DiffusionStep:  // in: logits (B, L, V), ...: the post-processing (max, sum of exponentials), then per
      // entry x̂ = exp, the posterior and the race key (a Philox draw and a logarithm), all in float64 by default
      k.flops = 40 * numel(i0);
      break;
    case OpKind::SumSquares:
    case OpKind::SumSquaresChunks: k.flops = 2 * numel(i0); break;
    case OpKind::Scale: k.flops = numel(o0); break;
    case OpKind::Adamw: k.flops = 12 * numel(o0); break;
    case OpKind::EmaUpdate: k.flops = 3 * numel(o0); break;
    case OpKind::Count: break;
  }
  return k;
}

}  // namespace duo
