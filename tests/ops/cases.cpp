// The cases of the op-test harness (op_harness.h): one function per op family, each a sweep over shapes — a
// round one, a prime one, and one on each side of a tile (the CUDA kernels' 32-lane warps and 256-thread blocks,
// the flash-attention kernel's 64-row tiles).
#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include "op_harness.h"

namespace duo::test::ops {

namespace {

template <class... A>
std::string fmt(const A&... a) {
  std::ostringstream s;
  ((s << a), ...);
  return s.str();
}

const Tensor kNone;  // an absent optional tensor

using Tensors = std::vector<Tensor>;
using Scalars = std::vector<double>;

void memory_cases(std::vector<OpCase>& out, int64_t m) {
  for (int64_t n0 : {1, 31, 64, 257}) {
    const int64_t n = n0 * m;
    out.push_back({OpKind::Fill, fmt("fill n=", n), {{"t", {n}, Role::Out}}, 1, false, 1,
                   [](Ops& o, Tensors& t) { o.fill(t[0], 0.375); return Scalars{}; }});
    out.push_back({OpKind::Copy, fmt("copy n=", n), {{"src", {n}}, {"dst", {n}, Role::Out}}, 1, false, 1,
                   [](Ops& o, Tensors& t) { o.copy(t[1], t[0]); return Scalars{}; }});
  }
}

void embedding_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [N, V, D] : {std::array<int64_t, 3>{16, 13, 8}, {31, 67, 33}, {64, 50, 64}}) {
    N *= m;
    out.push_back({OpKind::EmbedIds, fmt("embed_ids N=", N, " V=", V, " D=", D),
                   {{"ids", {N}, Role::In, Kind::I32, ids(V)}, {"table", {V, D}}, {"out", {N, D}, Role::Out}}, 1,
                   false, 1, [](Ops& o, Tensors& t) { o.embed_ids(t[2], t[0], t[1]); return Scalars{}; }});
    // Repeated ids sum into the same row: K = the most rows one table row can receive (N).
    out.push_back({OpKind::EmbedIdsBackward, fmt("embed_ids_backward N=", N, " V=", V, " D=", D),
                   {{"ids", {N}, Role::In, Kind::I32, ids(V)}, {"dout", {N, D}}, {"dtable", {V, D}, Role::InOut}},
                   (double)N, false, 1,
                   [](Ops& o, Tensors& t) { o.embed_ids_backward(t[2], t[0], t[1]); return Scalars{}; }});
    // The saved probabilities are the backend's (CUDA keeps their bf16 rounding): the backward case makes them with
    // the forward first.
    out.push_back({OpKind::EmbedSoft, fmt("embed_soft N=", N, " V=", V, " D=", D),
                   {{"logits", {N, V}, Role::In, Kind::Float, uniform(-3, 3)}, {"table", {V, D}},
                    {"out", {N, D}, Role::Out}, {"probs", {N, V}, Role::Scratch}},
                   (double)V, true, 1,
                   [](Ops& o, Tensors& t) { o.embed_soft(t[2], t[3], t[0], t[1]); return Scalars{}; }});
    out.push_back({OpKind::EmbedSoftBackward, fmt("embed_soft_backward N=", N, " V=", V, " D=", D),
                   {{"logits", {N, V}, Role::In, Kind::Float, uniform(-3, 3)}, {"table", {V, D}},
                    {"out", {N, D}, Role::Scratch}, {"probs", {N, V}, Role::Scratch}, {"dout", {N, D}},
                    {"dtable", {V, D}, Role::InOut}},
                   (double)std::max(N, V), true, 1, [](Ops& o, Tensors& t) {
                     o.embed_soft(t[2], t[3], t[0], t[1]);
                     o.embed_soft_backward(t[5], t[3], t[4]);
                     return Scalars{};
                   }});
    for (int64_t k : {2, 5}) {
      out.push_back({OpKind::EmbedBag, fmt("embed_bag N=", N, " k=", k, " V=", V, " D=", D),
                     {{"ids", {N, k}, Role::In, Kind::I32, ids(V)}, {"weights", {N, k}, Role::In, Kind::Float,
                                                                     positive(0, 1)},
                      {"table", {V, D}}, {"out", {N, D}, Role::Out}},
                     (double)k, false, 1,
                     [](Ops& o, Tensors& t) { o.embed_bag(t[3], t[0], t[1], t[2]); return Scalars{}; }});
      out.push_back({OpKind::EmbedBagBackward, fmt("embed_bag_backward N=", N, " k=", k, " V=", V, " D=", D),
                     {{"ids", {N, k}, Role::In, Kind::I32, ids(V)}, {"weights", {N, k}, Role::In, Kind::Float,
                                                                     positive(0, 1)},
                      {"dout", {N, D}}, {"dtable", {V, D}, Role::InOut}},
                     (double)(N * k), false, 1,
                     [](Ops& o, Tensors& t) { o.embed_bag_backward(t[3], t[0], t[1], t[2]); return Scalars{}; }});
    }
  }
  for (auto [B, F] : {std::array<int64_t, 2>{1, 8}, {3, 62}, {4, 256}}) {
    B *= m;
    // sin/cos of σ·f with |σ·f| ≤ 10 in float: the float rounding of the angle (10·u) dominates.
    out.push_back({OpKind::TimestepEmbedding, fmt("timestep_embedding B=", B, " F=", F),
                   {{"sigma", {B}, Role::In, Kind::Float, uniform(0, 10)}, {"out", {B, F}, Role::Out}}, 10, false,
                   1, [](Ops& o, Tensors& t) { o.timestep_embedding(t[1], t[0]); return Scalars{}; }});
  }
}

void dense_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [N, I, O] : {std::array<int64_t, 3>{16, 16, 16}, {17, 31, 37}, {63, 64, 65}}) {
    N *= m;
    for (bool bias : {true, false}) {
      const std::string b = bias ? " bias" : "";
      std::vector<Buf> fwd = {{"in", {N, I}}, {"W", {O, I}}, {"bias", {bias ? O : 0}}, {"out", {N, O}, Role::Out}};
      if (!bias) fwd[2].shape = {1};
      out.push_back({OpKind::Linear, fmt("linear N=", N, " I=", I, " O=", O, b), fwd, (double)I, true, 1,
                     [bias](Ops& o, Tensors& t) { o.linear(t[3], t[0], t[1], bias ? t[2] : kNone); return Scalars{}; }});
      std::vector<Buf> lg = {{"in", {N, I}}, {"W", {O, I}}, {"bias", {bias ? O : 1}}, {"out", {N, O}, Role::Out},
                             {"pre", {N, O}, Role::Out}};
      out.push_back({OpKind::LinearGelu, fmt("linear_gelu N=", N, " I=", I, " O=", O, b), lg, (double)I, true, 1,
                     [bias](Ops& o, Tensors& t) {
                       o.linear_gelu(t[3], t[4], t[0], t[1], bias ? t[2] : kNone);
                       return Scalars{};
                     }});
      for (bool acc : {false, true}) {
        std::vector<Buf> bwd = {{"dout", {N, O}}, {"in", {N, I}}, {"W", {O, I}}, {"din", {N, I}, Role::InOut},
                                {"dW", {O, I}, Role::InOut}, {"dbias", {bias ? O : 1}, Role::InOut}};
        out.push_back({OpKind::LinearBackward,
                       fmt("linear_backward N=", N, " I=", I, " O=", O, b, acc ? " accumulate_din" : ""), bwd,
                       (double)std::max(N, O), true, 1, [bias, acc](Ops& o, Tensors& t) {
                         Tensor none;
                         o.linear_backward(t[3], t[4], bias ? t[5] : none, t[0], t[1], t[2], acc);
                         return Scalars{};
                       }});
      }
    }
  }
  // The same layers with their activations in the backend's activation dtype (Kind::Act, bf16 on CUDA): in and
  // out of linear, in, out and pre of linear_gelu (O = 16: cuBLASLt's GELU epilogue; 37, 65: the GEMM into pre, then
  // the GELU kernel), in of linear_backward (the forward's saved operand).
  for (auto [N, I, O] : {std::array<int64_t, 3>{16, 16, 16}, {17, 31, 37}, {63, 64, 65}}) {
    N *= m;
    const std::string s = fmt(" N=", N, " I=", I, " O=", O, " bias, act");
    const Buf in{"in", {N, I}, Role::In, Kind::Act};
    for (Kind out_kind : {Kind::Act, Kind::Float})
      out.push_back({OpKind::Linear, "linear" + s + (out_kind == Kind::Act ? " in and out" : " in"),
                     {in, {"W", {O, I}}, {"bias", {O}}, {"out", {N, O}, Role::Out, out_kind}}, (double)I, true, 1,
                     [](Ops& o, Tensors& t) { o.linear(t[3], t[0], t[1], t[2]); return Scalars{}; }});
    out.push_back({OpKind::LinearGelu, "linear_gelu" + s,
                   {in, {"W", {O, I}}, {"bias", {O}}, {"out", {N, O}, Role::Out, Kind::Act},
                    {"pre", {N, O}, Role::Out, Kind::Act}},
                   (double)I, true, 1, [](Ops& o, Tensors& t) {
                     o.linear_gelu(t[3], t[4], t[0], t[1], t[2]);
                     return Scalars{};
                   }});
    // dout as given, or as the op before wrote it, and din as the op after reads it (act; din then written)
    for (Kind dout_kind : {Kind::Float, Kind::Act})
      out.push_back({OpKind::LinearBackward,
                     "linear_backward" + s + (dout_kind == Kind::Act ? " in, dout and din" : " in"),
                     {{"dout", {N, O}, Role::In, dout_kind}, in, {"W", {O, I}}, {"din", {N, I}, Role::InOut, dout_kind},
                      {"dW", {O, I}, Role::InOut}, {"dbias", {O}, Role::InOut}},
                     (double)std::max(N, O), true, 1, [](Ops& o, Tensors& t) {
                       o.linear_backward(t[3], t[4], t[5], t[0], t[1], t[2], false);
                       return Scalars{};
                     }});
  }
  // The MLP's second layer backward through its GELU (in = gelu(pre) in the model; any values do here): I = 16 and 64
  // take cuBLASLt's DGELU epilogue on CUDA, I = 31 the GEMM and the GELU kernel; fp32, then the activation dtype.
  for (auto [N, I, O] : {std::array<int64_t, 3>{16, 16, 16}, {17, 31, 37}, {63, 64, 65}}) {
    N *= m;
    for (Kind a : {Kind::Float, Kind::Act})
      out.push_back({OpKind::GeluLinearBackward,
                     fmt("gelu_linear_backward N=", N, " I=", I, " O=", O, " bias", a == Kind::Act ? " act" : ""),
                     {{"dout", {N, O}, Role::In, a}, {"in", {N, I}, Role::In, a}, {"W", {O, I}},
                      {"pre", {N, I}, Role::In, a, uniform(-3, 3)}, {"dpre", {N, I}, Role::Out, a},
                      {"dW", {O, I}, Role::InOut}, {"dbias", {O}, Role::InOut}},
                     (double)std::max(N, O), true, 1, [](Ops& o, Tensors& t) {
                       o.gelu_linear_backward(t[4], t[5], t[6], t[0], t[1], t[2], t[3]);
                       return Scalars{};
                     }});
  }
  for (int64_t n0 : {1, 31, 256, 257}) {
    const int64_t n = n0 * m;
    if (n0 == 31 || n0 == 257) {  // GELU on activations in the activation dtype (the MLP's)
      out.push_back({OpKind::Gelu, fmt("gelu n=", n, " act"),
                     {{"in", {n}, Role::In, Kind::Act, uniform(-4, 4)}, {"out", {n}, Role::Out, Kind::Act}}, 4, false,
                     1, [](Ops& o, Tensors& t) { o.gelu(t[1], t[0]); return Scalars{}; }});
      out.push_back({OpKind::GeluBackward, fmt("gelu_backward n=", n, " act"),
                     {{"in", {n}, Role::In, Kind::Act, uniform(-4, 4)}, {"dout", {n}, Role::In, Kind::Act},
                      {"din", {n}, Role::Out, Kind::Act}}, 4,
                     false, 1, [](Ops& o, Tensors& t) { o.gelu_backward(t[2], t[1], t[0]); return Scalars{}; }});
    }
    const std::vector<Buf> two = {{"in", {n}, Role::In, Kind::Float, uniform(-4, 4)}, {"out", {n}, Role::Out}};
    const std::vector<Buf> three = {{"in", {n}, Role::In, Kind::Float, uniform(-4, 4)}, {"dout", {n}},
                                    {"din", {n}, Role::Out}};
    // exp, tanh: the CPU's vectorisable fast_exp / fast_tanh are within a few ulps (fast_math.h): K = 4.
    out.push_back({OpKind::Silu, fmt("silu n=", n), two, 4, false, 1,
                   [](Ops& o, Tensors& t) { o.silu(t[1], t[0]); return Scalars{}; }});
    out.push_back({OpKind::Gelu, fmt("gelu n=", n), two, 4, false, 1,
                   [](Ops& o, Tensors& t) { o.gelu(t[1], t[0]); return Scalars{}; }});
    out.push_back({OpKind::SiluBackward, fmt("silu_backward n=", n), three, 4, false, 1,
                   [](Ops& o, Tensors& t) { o.silu_backward(t[2], t[1], t[0]); return Scalars{}; }});
    out.push_back({OpKind::GeluBackward, fmt("gelu_backward n=", n), three, 4, false, 1,
                   [](Ops& o, Tensors& t) { o.gelu_backward(t[2], t[1], t[0]); return Scalars{}; }});
  }
}

void layernorm_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [B, L, D] : {std::array<int64_t, 3>{1, 4, 16}, {2, 7, 31}, {2, 5, 257}}) {
    L *= m;
    for (bool mod : {true, false}) {
      const std::string m = mod ? " modulated" : "";
      // shift and scale are column views of one (B, 2D) tensor, as the adaLN output is.
      std::vector<Buf> f = {{"x", {B, L, D}, Role::In, Kind::Float, uniform(-2, 2)},
                            {"weight", {D}, Role::In, Kind::Float, uniform(0.5, 1.5)},
                            {"mod", {B, 2 * D}},
                            {"out", {B, L, D}, Role::Out},
                            {"mean", {B * L}, Role::Out},
                            {"rstd", {B * L}, Role::Out}};
      auto forward = [mod, D](Ops& o, Tensors& t) {
        Tensor shift = mod ? t[2].cols(0, D) : kNone, scale = mod ? t[2].cols(D, D) : kNone;
        o.layernorm_modulate(t[3], t[4], t[5], t[0], t[1], shift, scale);
        return Scalars{};
      };
      out.push_back({OpKind::LayernormModulate, fmt("layernorm_modulate B=", B, " L=", L, " D=", D, m), f,
                     (double)D, false, 1, forward});
      if (D > 16) {  // out in the activation dtype (the next GEMM's operand)
        std::vector<Buf> fa = f;
        fa[3].kind = Kind::Act;
        out.push_back({OpKind::LayernormModulate, fmt("layernorm_modulate B=", B, " L=", L, " D=", D, m, " act"), fa,
                       (double)D, false, 1, forward});
      }
      // The backward takes the statistics of its own backend's forward (computed first in the call); dout as given,
      // or in the activation dtype (as the layer's linear_backward writes it).
      for (Kind dout_kind : {Kind::Float, Kind::Act}) {
        if (dout_kind == Kind::Act && D == 16) continue;
        std::vector<Buf> b = f;
        b[3].role = Role::In;
        b.push_back({"dout", {B, L, D}, Role::In, dout_kind});
        b.push_back({"dx", {B, L, D}, Role::InOut});
        b.push_back({"dweight", {D}, Role::InOut});
        b.push_back({"dmod", {B, 2 * D}, Role::Out});
        out.push_back({OpKind::LayernormModulateBackward,
                       fmt("layernorm_modulate_backward B=", B, " L=", L, " D=", D, m,
                           dout_kind == Kind::Act ? " act" : ""),
                       b, (double)(L * D), false, 1,
                       [mod, D](Ops& o, Tensors& t) {
                         Tensor shift = mod ? t[2].cols(0, D) : kNone, scale = mod ? t[2].cols(D, D) : kNone;
                         Tensor dshift = mod ? t[9].cols(0, D) : kNone, dscale = mod ? t[9].cols(D, D) : kNone;
                         o.layernorm_modulate(t[3], t[4], t[5], t[0], t[1], shift, scale);
                         o.layernorm_modulate_backward(t[7], t[8], dshift, dscale, t[6], t[0], t[4], t[5], t[1], shift,
                                                       scale);
                         return Scalars{};
                       }});
      }
    }
  }
}

void attention_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [B, L, H, hd] : {std::array<int64_t, 4>{1, 8, 2, 8}, {2, 13, 2, 16}, {1, 63, 2, 32}, {1, 65, 1, 64}}) {
    L *= m;
    const int64_t D = H * hd;
    const int h = (int)H;
    const std::string shape = fmt(" B=", B, " L=", L, " H=", H, " hd=", hd);
    out.push_back({OpKind::Rotary, "rotary" + shape, {{"in", {B, L, 3 * D}}, {"out", {B, L, 3 * D}, Role::Out}},
                   4, false, 1, [h](Ops& o, Tensors& t) { o.rotary(t[1], t[0], h); return Scalars{}; }});
    out.push_back({OpKind::RotaryBackward, "rotary_backward" + shape,
                   {{"dout", {B, L, 3 * D}}, {"din", {B, L, 3 * D}, Role::Out}}, 4, false, 1,
                   [h](Ops& o, Tensors& t) { o.rotary_backward(t[1], t[0], h); return Scalars{}; }});
    // in the activation dtype: the forward's qkv in and out, the backward's din (the qkv layer's GEMM operand)
    out.push_back({OpKind::Rotary, "rotary" + shape + " act",
                   {{"in", {B, L, 3 * D}, Role::In, Kind::Act}, {"out", {B, L, 3 * D}, Role::Out, Kind::Act}}, 4,
                   false, 1, [h](Ops& o, Tensors& t) { o.rotary(t[1], t[0], h); return Scalars{}; }});
    out.push_back({OpKind::RotaryBackward, "rotary_backward" + shape + " act",
                   {{"dout", {B, L, 3 * D}}, {"din", {B, L, 3 * D}, Role::Out, Kind::Act}}, 4, false, 1,
                   [h](Ops& o, Tensors& t) { o.rotary_backward(t[1], t[0], h); return Scalars{}; }});
    for (bool causal : {false, true})
      for (Kind q : {Kind::Float, Kind::Act}) {  // qkv and out as given, or in the activation dtype (as the DiT's)
        const std::string c = std::string(causal ? " causal" : "") + (q == Kind::Act ? " act" : "");
        // Q·Kᵀ and P·V through bf16 tensor-core tiles on the GPU (the flash kernel), fp32 on the CPU.
        out.push_back({OpKind::Attention, "attention" + shape + c,
                       {{"qkv", {B, L, 3 * D}, Role::In, q, uniform(-2, 2)}, {"out", {B, L, D}, Role::Out, q},
                        {"lse", {B, H, L}, Role::Out}},
                       (double)std::max(L, hd), true, 1, [h, causal](Ops& o, Tensors& t) {
                         o.attention(t[1], t[2], t[0], h, causal);
                         return Scalars{};
                       }});
        out.push_back({OpKind::AttentionBackward, "attention_backward" + shape + c,
                       {{"qkv", {B, L, 3 * D}, Role::In, q, uniform(-2, 2)}, {"out", {B, L, D}, Role::Out, q},
                        {"lse", {B, H, L}, Role::Out}, {"dout", {B, L, D}}, {"dqkv", {B, L, 3 * D}, Role::Out}},
                       (double)std::max(L, hd), true, 1, [h, causal](Ops& o, Tensors& t) {
                         o.attention(t[1], t[2], t[0], h, causal);
                         o.attention_backward(t[4], t[3], t[0], t[1], t[2], h, causal);
                         return Scalars{};
                       }});
        // rotary and attention as one op (the DiT's; the CUDA backend's flash kernels rotate q and k themselves on a
        // bf16 qkv): the rotated qkv and its gradient are the default's scratch
        out.push_back({OpKind::RotaryAttention, "rotary_attention" + shape + c,
                       {{"qkv", {B, L, 3 * D}, Role::In, q, uniform(-2, 2)}, {"out", {B, L, D}, Role::Out, q},
                        {"lse", {B, H, L}, Role::Out}, {"rotated", {B, L, 3 * D}, Role::Scratch, q}},
                       (double)std::max(L, hd), true, 1, [h, causal](Ops& o, Tensors& t) {
                         o.rotary_attention(t[1], t[2], t[3], t[0], h, causal);
                         return Scalars{};
                       }});
        out.push_back({OpKind::RotaryAttentionBackward, "rotary_attention_backward" + shape + c,
                       {{"qkv", {B, L, 3 * D}, Role::In, q, uniform(-2, 2)}, {"out", {B, L, D}, Role::Out, q},
                        {"lse", {B, H, L}, Role::Out}, {"rotated", {B, L, 3 * D}, Role::Scratch, q},
                        {"dout", {B, L, D}, Role::In, q}, {"dqkv", {B, L, 3 * D}, Role::Out, q},
                        {"drotated", {B, L, 3 * D}, Role::Scratch}},
                       (double)std::max(L, hd), true, 1, [h, causal](Ops& o, Tensors& t) {
                         o.rotary_attention(t[1], t[2], t[3], t[0], h, causal);
                         o.rotary_attention_backward(t[5], t[6], t[3], t[4], t[0], t[1], t[2], h, causal);
                         return Scalars{};
                       }});
      }
  }
}

void residual_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [B, L, D] : {std::array<int64_t, 3>{1, 4, 8}, {2, 7, 31}, {2, 3, 257}}) {
    L *= m;
    for (float p : {0.0f, 0.25f}) {
      const std::string s = fmt(" B=", B, " L=", L, " D=", D, " p=", p);
      // gate: a column view of a (B, 3D) modulation; the dropout mask comes from the same Philox stream.
      out.push_back({OpKind::GatedResidual, "gated_residual" + s,
                     {{"branch", {B, L, D}}, {"mod", {B, 3 * D}}, {"h", {B, L, D}, Role::InOut}}, 2, false, 1,
                     [p, D](Ops& o, Tensors& t) {
                       o.gated_residual(t[2], t[0], t[1].cols(D, D), p, Philox{11, 3});
                       return Scalars{};
                     }});
      out.push_back({OpKind::GatedResidualBackward, "gated_residual_backward" + s,
                     {{"branch", {B, L, D}}, {"mod", {B, 3 * D}}, {"dh", {B, L, D}},
                      {"dbranch", {B, L, D}, Role::Out}, {"dmod", {B, 3 * D}, Role::Out}},
                     (double)L, false, 1, [p, D](Ops& o, Tensors& t) {
                       Tensor dgate = t[4].cols(D, D);
                       o.gated_residual_backward(t[3], dgate, t[2], t[0], t[1].cols(D, D), p, Philox{11, 3});
                       return Scalars{};
                     }});
      if (D == 8) continue;
      // branch (as its linear layer wrote it) and dbranch (the branch's linear_backward reads it) in the activation
      // dtype
      out.push_back({OpKind::GatedResidual, "gated_residual" + s + " act",
                     {{"branch", {B, L, D}, Role::In, Kind::Act}, {"mod", {B, 3 * D}}, {"h", {B, L, D}, Role::InOut}},
                     2, false, 1, [p, D](Ops& o, Tensors& t) {
                       o.gated_residual(t[2], t[0], t[1].cols(D, D), p, Philox{11, 3});
                       return Scalars{};
                     }});
      out.push_back({OpKind::GatedResidual, "gated_residual out of place" + s + " act",
                     {{"branch", {B, L, D}, Role::In, Kind::Act}, {"mod", {B, 3 * D}}, {"h", {B, L, D}},
                      {"out", {B, L, D}, Role::Out}},
                     2, false, 1, [p, D](Ops& o, Tensors& t) {
                       o.gated_residual(t[3], t[2], t[0], t[1].cols(D, D), p, Philox{11, 3});
                       return Scalars{};
                     }});
      out.push_back({OpKind::GatedResidualBackward, "gated_residual_backward" + s + " act",
                     {{"branch", {B, L, D}, Role::In, Kind::Act}, {"mod", {B, 3 * D}}, {"dh", {B, L, D}},
                      {"dbranch", {B, L, D}, Role::Out, Kind::Act}, {"dmod", {B, 3 * D}, Role::Out}},
                     (double)L, false, 1, [p, D](Ops& o, Tensors& t) {
                       Tensor dgate = t[4].cols(D, D);
                       o.gated_residual_backward(t[3], dgate, t[2], t[0], t[1].cols(D, D), p, Philox{11, 3});
                       return Scalars{};
                     }});
    }
  }
}

// The gated residual fused with the next LayerNorm (modulated, and plain), fp32 and in the activation dtype: D = 31
// and 257 rows of the fused kernel (1 and 9 values per lane), 1100 one wider than its registers (the two kernels).
void residual_layernorm_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [B, L, D] : {std::array<int64_t, 3>{2, 7, 31}, {2, 3, 257}, {1, 3, 1100}}) {
    L *= m;
    for (Kind a : {Kind::Float, Kind::Act})
      for (bool mod : {true, false}) {
        const float p = mod ? 0.25f : 0.0f;
        out.push_back({OpKind::GatedResidualLayernorm,
                       fmt("gated_residual_layernorm B=", B, " L=", L, " D=", D, " p=", p, mod ? " modulated" : "",
                           a == Kind::Act ? " act" : ""),
                       {{"branch", {B, L, D}, Role::In, a}, {"mod", {B, 3 * D}}, {"h", {B, L, D}},
                        {"weight", {D}, Role::In, Kind::Float, uniform(0.5, 1.5)}, {"out", {B, L, D}, Role::Out},
                        {"ln", {B, L, D}, Role::Out, a}, {"mean", {B * L}, Role::Out}, {"rstd", {B * L}, Role::Out}},
                       (double)D, false, 1, [p, D, mod](Ops& o, Tensors& t) {
                         // mod's columns: gate, shift, scale
                         Tensor gate = mod ? t[1].cols(0, D) : kNone, shift = mod ? t[1].cols(D, D) : kNone,
                                scale = mod ? t[1].cols(2 * D, D) : kNone;
                         o.gated_residual_layernorm(t[4], t[5], t[6], t[7], t[2], t[0], gate, p, Philox{11, 3}, t[3],
                                                    shift, scale);
                         return Scalars{};
                       }});
      }
  }
}

void output_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [N, V] : {std::array<int64_t, 2>{4, 13}, {9, 257}, {3, 700}}) {
    N *= m;
    const std::string s = fmt(" N=", N, " V=", V);
    out.push_back({OpKind::LogSoftmax, "log_softmax" + s,
                   {{"logits", {N, V}, Role::In, Kind::Float, uniform(-5, 5)}, {"out", {N, V}, Role::Out}},
                   (double)V, false, 1, [](Ops& o, Tensors& t) { o.log_softmax(t[1], t[0]); return Scalars{}; }});
    out.push_back({OpKind::LogSoftmaxBackward, "log_softmax_backward" + s,
                   {{"out", {N, V}, Role::In, Kind::Float, uniform(-8, -1)}, {"dout", {N, V}},
                    {"dlogits", {N, V}, Role::Out}},
                   (double)V, false, 1,
                   [](Ops& o, Tensors& t) { o.log_softmax_backward(t[2], t[1], t[0]); return Scalars{}; }});
    out.push_back({OpKind::CrossEntropy, "cross_entropy" + s,
                   {{"logits", {N, V}, Role::In, Kind::Float, uniform(-5, 5)},
                    {"targets", {N}, Role::In, Kind::I32, ids(V)}, {"losses", {N}, Role::Out},
                    {"dlogits", {N, V}, Role::Out}},
                   (double)V, false, 1, [N](Ops& o, Tensors& t) {
                     o.cross_entropy(t[2], t[3], t[0], t[1], 1.0 / (double)N);
                     return Scalars{};
                   }});
    for (LossKind kind : {LossKind::AR, LossKind::MDLM, LossKind::SEDD, LossKind::D3PM, LossKind::CE,
                          LossKind::DUO}) {
      LossHeadArgs a;
      a.kind = kind;
      a.mask_id = kind == LossKind::DUO || kind == LossKind::CE ? -1 : (int)V - 1;
      a.T = 10;
      // Absorbing kinds see z = [MASK] (every loss term is live); the others random ids. α in (0.05, 0.95).
      const bool absorbing = a.mask_id >= 0 && kind != LossKind::AR;
      out.push_back({OpKind::LossHead, fmt("loss_head kind=", (int)kind) + s,
                     {{"logits", {N, V}, Role::In, Kind::Float, uniform(-3, 3)},
                      {"x", {N}, Role::In, Kind::I32, ids(V - 1)},
                      {"z", {N}, Role::In, Kind::I32, absorbing ? Gen{Gen::Ids, 0, 0, 1} : ids(V)},
                      {"alpha", {N}, Role::In, Kind::F64, uniform(0.05, 0.95)},
                      {"dalpha", {N}, Role::In, Kind::F64, uniform(-2, -0.5)},
                      {"weight", {N}, Role::In, Kind::F64, positive(0.1, 1)},
                      {"losses", {N}, Role::Out}, {"dlogits", {N, V}, Role::Out}},
                     (double)V, false, 1, [a, absorbing, V](Ops& o, Tensors& t) {
                       if (absorbing) o.fill(t[2], (double)(V - 1));  // z = [MASK] everywhere
                       o.loss_head(a, t[6], t[7], t[0], t[1], t[2], t[3], t[4], t[5]);
                       return Scalars{};
                     }});
    }
    // The output layer fused with the loss head: rows in chunks of 4 (several chunks, a short last one) or the
    // backend's default (one chunk at these sizes). K: the longest sum, over D for a logit, V for dy, N for dW.
    const int64_t D = 24;
    for (LossKind kind : {LossKind::DUO, LossKind::MDLM, LossKind::AR}) {
      for (bool backward : {false, true}) {
        for (int64_t chunk : {int64_t(4), int64_t(0)}) {
          LossHeadArgs a;
          a.kind = kind;
          a.mask_id = kind == LossKind::DUO ? -1 : (int)V - 1;
          const bool absorbing = kind == LossKind::MDLM;
          std::vector<Buf> bufs = {{"y", {N, D}}, {"W", {V, D}}, {"bias", {V}},
                                   {"x", {N}, Role::In, Kind::I32, ids(V - 1)},
                                   {"z", {N}, Role::In, Kind::I32, absorbing ? Gen{Gen::Ids, 0, 0, 1} : ids(V)},
                                   {"alpha", {N}, Role::In, Kind::F64, uniform(0.05, 0.95)},
                                   {"dalpha", {N}, Role::In, Kind::F64, uniform(-2, -0.5)},
                                   {"weight", {N}, Role::In, Kind::F64, positive(0.1, 1)},
                                   {"losses", {N}, Role::Out}};
          if (backward) {
            bufs.push_back({"dy", {N, D}, Role::Out});
            bufs.push_back({"dW", {V, D}, Role::InOut});
            bufs.push_back({"dbias", {V}, Role::InOut});
          }
          out.push_back({OpKind::LinearLossHead,
                         fmt("linear_loss_head kind=", (int)kind, backward ? " backward" : "", " chunk=", chunk,
                             " D=", D) + s,
                         bufs, (double)std::max({N, V, D}), true, 1,
                         [a, absorbing, V, backward, chunk](Ops& o, Tensors& t) {
                           if (absorbing) o.fill(t[4], (double)(V - 1));  // z = [MASK] everywhere
                           o.set_vocab_chunk_rows(chunk);
                           Tensor none, dy = backward ? t[9] : none, dW = backward ? t[10] : none;
                           Tensor db = backward ? t[11] : none;
                           o.linear_loss_head(a, t[8], dy, dW, db, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
                           o.set_vocab_chunk_rows(0);
                           return Scalars{};
                         }});
        }
      }
    }
    for (KlDirection dir : {KlDirection::Backward, KlDirection::Forward}) {
      out.push_back({OpKind::KlHead, fmt("kl_head ", dir == KlDirection::Forward ? "forward" : "backward") + s,
                     {{"student", {N, V}, Role::In, Kind::Float, uniform(-3, 3)},
                      {"teacher", {N, V}, Role::In, Kind::Float, uniform(-3, 3)},
                      {"weight", {N}, Role::In, Kind::F64, positive(0.1, 1)},
                      {"losses", {N}, Role::Out}, {"dstudent", {N, V}, Role::Out}},
                     (double)V, false, 1, [dir](Ops& o, Tensors& t) {
                       o.kl_head(dir, t[3], t[4], t[0], t[1], t[2]);
                       return Scalars{};
                     }});
    }
  }
}

void curriculum_and_optim_cases(std::vector<OpCase>& out, int64_t m) {
  for (auto [B, L, V] : {std::array<int64_t, 3>{1, 4, 13}, {2, 3, 67}, {2, 2, 257}}) {
    L *= m;
    // The relaxation and the soft embedding in one op: z the same ids everywhere (the relaxation's float32 w); out
    // through the bf16 GEMM on CUDA (K = V), from probabilities the CUDA kernel forms in another summation order.
    const int64_t D = 24;
    out.push_back({OpKind::EmbedRelaxed, fmt("embed_relaxed B=", B, " L=", L, " V=", V, " D=", D),
                   {{"x", {B, L}, Role::In, Kind::I32, ids(V)},
                    {"scales", {B, 2}, Role::In, Kind::F64, positive(0.2, 0.9)}, {"table", {V, D}},
                    {"out", {B * L, D}, Role::Out}, {"probs", {B * L, V}, Role::Scratch},
                    {"z", {B * L}, Role::Out, Kind::I32}},
                   (double)V, true, 1, [](Ops& o, Tensors& t) {
                     o.embed_relaxed(t[3], t[4], t[5], t[0], t[1], 3.0, Philox{5, 9}, t[2]);
                     return Scalars{};
                   }});
    // w = α̃·e_x + σ̃·ε in float32 on every backend (math/relaxation.h), so z is the same id everywhere.
    out.push_back({OpKind::GaussianRelaxation, fmt("gaussian_relaxation B=", B, " L=", L, " V=", V),
                   {{"x", {B * L}, Role::In, Kind::I32, ids(V)},
                    {"scales", {B, 2}, Role::In, Kind::F64, positive(0.2, 0.9)},
                    {"soft_logits", {B, L, V}, Role::Out}, {"z", {B * L}, Role::Out, Kind::I32}},
                   2, false, 1, [](Ops& o, Tensors& t) {
                     o.gaussian_relaxation(t[2], t[3], t[0], t[1], 4.0, Philox{5, 9});
                     return Scalars{};
                   }});
    // Without soft logits (distillation's z_t and z_s): only the argmax, from the same ε.
    out.push_back({OpKind::GaussianRelaxation, fmt("gaussian_relaxation z only B=", B, " L=", L, " V=", V),
                   {{"x", {B * L}, Role::In, Kind::I32, ids(V)},
                    {"scales", {B, 2}, Role::In, Kind::F64, positive(0.2, 0.9)},
                    {"z", {B * L}, Role::Out, Kind::I32}},
                   2, false, 1, [B, L, V](Ops& o, Tensors& t) {
                     Tensor no_soft(nullptr, DType::F32, {B, L, V}, t[2].device);
                     o.gaussian_relaxation(no_soft, t[2], t[0], t[1], 4.0, Philox{5, 9});
                     return Scalars{};
                   }});
  }
  // The samplers' step: the ids drawn from the same rows by the same draws (the CPU reads an F64 reference's logits
  // as float, so both CPU backends draw the same ids; the CUDA kernel's log-normaliser differs by rounding only).
  for (auto [B, L, V] : {std::array<int64_t, 3>{1, 4, 13}, {2, 3, 67}, {2, 2, 257}}) {
    L *= m;
    struct Variant { const char* name; DiffusionFamily family; bool psi, greedy; };
    for (Variant var : {Variant{"DUO", DiffusionFamily::uniform, false, false},
                        Variant{"MDLM psi", DiffusionFamily::mdlm, true, false},
                        Variant{"SEDD", DiffusionFamily::sedd, false, false},
                        Variant{"D3PM greedy", DiffusionFamily::d3pm, false, true}}) {
      DiffusionStepArgs a;
      a.family = var.family;
      a.mask_id = var.family == DiffusionFamily::uniform ? -1 : int32_t(V) - 1;
      a.psi = var.psi;
      a.greedy = var.greedy;
      a.kappa = 0.5;
      a.alpha_t = 0.25;
      a.alpha_s = 0.7;
      a.seed = 17;
      out.push_back({OpKind::DiffusionStep, fmt("diffusion_step ", var.name, " B=", B, " L=", L, " V=", V),
                     {{"logits", {B, L, V}, Role::In, Kind::Float, uniform(-4, 4)},
                      {"sigma", {B}, Role::In, Kind::F64, positive(0.2, 3)},
                      {"z", {B * L}, Role::InOut, Kind::I32, ids(V)}, {"status", {2}, Role::Out, Kind::I32}},
                     (double)V, false, 1, [a](Ops& o, Tensors& t) {
                       o.diffusion_step(t[2], t[3], t[0], Tensor(), t[1], a);
                       return Scalars{};
                     }});
    }
  }
  for (int64_t n0 : {1, 31, 4097}) {
    const int64_t n = n0 * m;
    out.push_back({OpKind::SumSquares, fmt("sum_squares n=", n), {{"x", {n}}}, (double)n, false, 1,
                   [](Ops& o, Tensors& t) { return Scalars{o.sum_squares(t[0])}; }});
    // The backends' chunks differ (4096 on the CPU, 8192 on CUDA): judged by their sum in chunk order.
    out.push_back({OpKind::SumSquaresChunks, fmt("sum_squares_chunks n=", n), {{"x", {n}}}, (double)n, false, 1,
                   [](Ops& o, Tensors& t) {
                     double sum = 0;
                     for (double c : o.sum_squares_chunks(t[0])) sum += c;
                     return Scalars{sum};
                   }});
    out.push_back({OpKind::Scale, fmt("scale n=", n), {{"x", {n}, Role::InOut}}, 1, false, 1,
                   [](Ops& o, Tensors& t) { o.scale(t[0], 0.3); return Scalars{}; }});
    out.push_back({OpKind::Adamw, fmt("adamw n=", n),
                   {{"grads", {n}}, {"params", {n}, Role::InOut}, {"m", {n}, Role::InOut, Kind::Float, uniform(-0.1, 0.1)},
                    {"v", {n}, Role::InOut, Kind::Float, positive(0.01, 0.1)}},
                   8, false, 1, [](Ops& o, Tensors& t) {
                     AdamWArgs a;
                     a.lr = 1e-2;
                     a.weight_decay = 0.1;
                     a.step = 3;
                     o.adamw(t[1], t[0], t[2], t[3], a);
                     return Scalars{};
                   }});
    out.push_back({OpKind::EmaUpdate, fmt("ema_update n=", n), {{"params", {n}}, {"shadow", {n}, Role::InOut}}, 2,
                   false, 1, [](Ops& o, Tensors& t) { o.ema_update(t[1], t[0], 0.99); return Scalars{}; }});
  }
}

}  // namespace

std::vector<OpCase> all_cases(int64_t scale) {
  std::vector<OpCase> c;
  memory_cases(c, scale);
  embedding_cases(c, scale);
  dense_cases(c, scale);
  layernorm_cases(c, scale);
  attention_cases(c, scale);
  residual_cases(c, scale);
  residual_layernorm_cases(c, scale);
  output_cases(c, scale);
  curriculum_and_optim_cases(c, scale);
  return c;
}

}  // namespace duo::test::ops
