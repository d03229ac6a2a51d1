#include "model/dit.h"
#include <cmath>
#include "core/rng_streams.h"

namespace duo {

using streams::block_dropout;
using streams::DropoutSite;

namespace {

// A block's adaLN modulation split six ways (docs/model.md §5.1): column views of one (B, 6D) tensor, in the
// reference's chunk order. All empty for the causal model, which has no modulation (the ops then skip it).
struct Modulation {
  Tensor shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp;

  static Modulation split(const Tensor& mod, int64_t D) {
    return {mod.cols(0, D), mod.cols(D, D), mod.cols(2 * D, D), mod.cols(3 * D, D), mod.cols(4 * D, D),
            mod.cols(5 * D, D)};
  }
};

}  // namespace

DiT::DiT(const ModelConfig& cfg, Ops& ops, const DiTOptions& opt) : cfg_(cfg), table_(cfg), ops_(ops), opt_(opt) {
  if (opt_.max_length == 0) opt_.max_length = cfg_.length;
  DUO_CHECK(opt_.max_batch >= 1 && opt_.max_length >= 1, "DiT", "batch and length must be positive", "");
  DUO_CHECK(opt_.dtype == DType::F32 || opt_.dtype == DType::F64, "DiT", "parameters must be F32 or F64", "");
  plan_activations();
}

void DiT::plan_activations() {
  const int64_t B = opt_.max_batch, L = opt_.max_length, N = B * L, D = cfg_.hidden, V = cfg_.vocab_size;
  const int64_t H = cfg_.n_heads, cd = cfg_.cond_dim, M = cfg_.mlp_hidden();
  const size_t es = dtype_size(opt_.dtype), os = dtype_size(ops_.activation_dtype(opt_.dtype));
  auto r = [&](int64_t n, const std::string& what) { return arena_.reserve((size_t)n * es, what); };
  auto ro = [&](int64_t n, const std::string& what) { return arena_.reserve((size_t)n * os, what); };  // operand()

  const int64_t n_sets = opt_.training ? cfg_.n_blocks : 1;
  std::vector<BlockActs> sets(n_sets);
  for (int64_t i = 0; i < n_sets; ++i) {
    BlockActs& a = sets[i];
    const std::string n = opt_.training ? "block " + std::to_string(i) + " " : "block ";
    a.ln1 = ro(N * D, n + "ln1"); a.mean1 = r(N, n + "ln1 mean"); a.rstd1 = r(N, n + "ln1 rstd");
    a.qkv = ro(N * 3 * D, n + "qkv");
    a.att = ro(N * D, n + "attention"); a.lse = r(B * H * L, n + "attention lse");
    a.proj = ro(N * D, n + "attention proj");
    a.x_mid = r(N * D, n + "residual mid");
    a.ln2 = ro(N * D, n + "ln2"); a.mean2 = r(N, n + "ln2 mean"); a.rstd2 = r(N, n + "ln2 rstd");
    a.f1 = ro(N * M, n + "mlp fc1"); a.g = ro(N * M, n + "mlp gelu"); a.f2 = ro(N * D, n + "mlp fc2");
  }
  for (int64_t i = 0; i < cfg_.n_blocks; ++i) blocks_.push_back(sets[opt_.training ? i : 0]);
  // adaLN outputs: one per block in inference too (all are computed before the first block)
  for (int64_t i = 0; i < cfg_.n_blocks; ++i) mods_.push_back(r(B * 6 * D, "block " + std::to_string(i) + " adaLN"));
  // Residual stream entering each block: all kept for training; two alternating buffers for inference.
  if (opt_.training) {
    for (int64_t i = 0; i <= cfg_.n_blocks; ++i) xs_.push_back(r(N * D, "residual " + std::to_string(i)));
  } else {
    size_t a = r(N * D, "residual a"), b = r(N * D, "residual b");
    for (int64_t i = 0; i <= cfg_.n_blocks; ++i) xs_.push_back(i % 2 ? b : a);
  }
  tfreq_ = r(B * cfg_.freq_dim, "time sinusoid");
  c1_ = r(B * cd, "time mlp 0"); c1a_ = r(B * cd, "time mlp silu"); c2_ = r(B * cd, "time mlp 2"); c_ = r(B * cd, "c");
  if (opt_.soft_input) soft_probs_ = r(N * V, "soft input softmax");
  modf_ = r(B * 2 * D, "final adaLN");
  y_ = r(N * D, "final ln"); meanf_ = r(N, "final ln mean"); rstdf_ = r(N, "final ln rstd");
  if (opt_.full_logits) logits_ = r(N * V, "logits");
  // The rotary scratch, where the backend's rotary_attention uses it (not the CUDA flash kernels).
  rotary_scratch_ = ops_.rotary_attention_uses_scratch(
      Tensor(nullptr, ops_.activation_dtype(opt_.dtype), {B, L, 3 * D}, ops_.device()), int(H));
  if (rotary_scratch_) rotated_ = ro(N * 3 * D, "qkv after rotary (scratch)");
  if (opt_.training) {
    dh_ = r(N * D, "grad residual"); dy_ = r(N * D, "grad final ln"); dln_ = ro(N * D, "grad ln");
    if (rotary_scratch_) drotated_ = r(N * 3 * D, "grad qkv after rotary (scratch)");
    dqkv_ = ro(N * 3 * D, "grad qkv");
    datt_ = ro(N * D, "grad attention"); dproj_ = ro(N * D, "grad proj");
    df1_ = ro(N * M, "grad mlp fc1"); df2_ = ro(N * D, "grad mlp fc2");
    dmod_ = r(B * 6 * D, "grad adaLN"); dc_ = r(B * cd, "grad c"); dc2_ = r(B * cd, "grad time mlp 2");
    dc1a_ = r(B * cd, "grad time silu"); dc1_ = r(B * cd, "grad time mlp 0");
  }
  Ops* ops = &ops_;
  arena_.allocate([ops](size_t n) { return ops->alloc(n); }, [ops](void* p) { ops->release(p); });
}

Tensor DiT::act(size_t off, std::initializer_list<int64_t> dims) const {
  Tensor t = arena_.tensor(off, opt_.dtype, dims);
  t.device = ops_.device();
  return t;
}

Tensor DiT::operand(size_t off, std::initializer_list<int64_t> dims) const {
  Tensor t = arena_.tensor(off, ops_.activation_dtype(opt_.dtype), dims);
  t.device = ops_.device();
  return t;
}

Tensor DiT::rotary_scratch(int64_t B, int64_t L) const {
  const int64_t D3 = 3 * cfg_.hidden;
  if (rotary_scratch_) return operand(rotated_, {B, L, D3});
  return Tensor(nullptr, ops_.activation_dtype(opt_.dtype), {B, L, D3}, ops_.device());
}

void DiT::bind(void* params, void* grads) {
  params_ = params;
  P_ = bind_dit_tensors(table_, params, opt_.dtype, ops_.device());
  has_grads_ = grads != nullptr;
  if (has_grads_) G_ = bind_dit_tensors(table_, grads, opt_.dtype, ops_.device());
}

void DiT::init_parameters(uint64_t seed) {
  DUO_CHECK(params_ != nullptr, "DiT", "init_parameters() before bind()", "");
  std::vector<double> host;
  for (const ParamInfo& p : table_.params()) {
    host.assign((size_t)p.numel, 0.0);
    if (p.init == Init::Ones) host.assign((size_t)p.numel, 1.0);
    if (p.init == Init::Uniform) {
      // nn.Linear / kaiming_uniform(a=√5): U(-1/√fan_in, 1/√fan_in); one Philox stream per tensor name.
      const double bound = 1.0 / std::sqrt((double)p.fan_in);
      Philox rng{seed, streams::param_init(p.name)};
      for (int64_t i = 0; i < p.numel; ++i) host[i] = (2.0 * rng.uniform_double(i) - 1.0) * bound;
    }
    Tensor t = table_.view(params_, opt_.dtype, p.name);
    t.device = ops_.device();
    if (opt_.dtype == DType::F64) {
      ops_.from_host(t, host.data());
    } else {
      std::vector<float> f(host.begin(), host.end());
      ops_.from_host(t, f.data());
    }
  }
}

Tensor DiT::forward(const DiTInput& in, int64_t B, int64_t L, bool train, const Philox& dropout_rng) {
  DUO_CHECK(opt_.full_logits, "DiT forward", "the (B, L, V) logits were not planned",
            "construct the DiT with full_logits = true, or use forward_features() with a fused loss head");
  Tensor y = forward_features(in, B, L, train, dropout_rng);
  Tensor logits = act(logits_, {B * L, cfg_.vocab_size});
  ops_.linear(logits, y.view({B * L, cfg_.hidden}), P_.out_w, P_.out_b);
  return logits.view({B, L, cfg_.vocab_size});
}

Tensor DiT::forward_features(const DiTInput& in, int64_t B, int64_t L, bool train, const Philox& dropout_rng) {
  const int64_t N = B * L, D = cfg_.hidden, V = cfg_.vocab_size, cd = cfg_.cond_dim, M = cfg_.mlp_hidden();
  const int H = (int)cfg_.n_heads;
  DUO_CHECK(P_.embedding.data != nullptr, "DiT", "forward() before bind()", "");
  DUO_CHECK(B >= 1 && B <= opt_.max_batch && L >= 1 && L <= opt_.max_length, "DiT forward",
            str("batch ", B, " x length ", L, " exceeds the planned ", opt_.max_batch, " x ", opt_.max_length), "");
  Ops& o = ops_;
  in_ = in; B_ = B; L_ = L; train_ = train; rng_ = dropout_rng; forward_done_ = true;
  const float p = train ? cfg_.dropout : 0.0f;
  Tensor none;

  // Input embedding -> residual stream entering block 0.
  Tensor h0 = act(xs_[0], {N, D});
  if (!in.ids.empty()) {
    o.embed_ids(h0, in.ids.view({N}), P_.embedding);
  } else if (!in.soft_logits.empty()) {
    DUO_CHECK(opt_.soft_input, "DiT forward", "soft input not planned", "construct the DiT with soft_input = true");
    Tensor probs = act(soft_probs_, {N, V});
    o.embed_soft(h0, probs, in.soft_logits.view({N, V}), P_.embedding);
  } else if (!in.relaxed.x.empty()) {
    DUO_CHECK(opt_.soft_input, "DiT forward", "soft input not planned", "construct the DiT with soft_input = true");
    Tensor probs = act(soft_probs_, {N, V});
    const RelaxedInput& r = in.relaxed;
    Tensor z = r.z;
    o.embed_relaxed(h0, probs, z, r.x, r.scales, r.inverse_tau, r.noise, P_.embedding);
  } else {
    DUO_CHECK(opt_.bag_k > 0 && !in.bag_ids.empty(), "DiT forward", "no input given (ids, soft or bag)", "");
    const int64_t k = in.bag_ids.dim(-1);
    o.embed_bag(h0, in.bag_ids.view({N, k}), in.bag_weights.view({N, k}), P_.embedding);
  }

  // Time conditioning c = SiLU(MLP(sinusoid(σ))).
  Tensor c;
  if (!cfg_.causal) {
    Tensor tf = act(tfreq_, {B, cfg_.freq_dim}), c1 = act(c1_, {B, cd}), c1a = act(c1a_, {B, cd});
    Tensor c2 = act(c2_, {B, cd});
    c = act(c_, {B, cd});
    o.timestep_embedding(tf, in.sigma);
    o.linear(c1, tf, P_.sigma0_w, P_.sigma0_b);
    o.silu(c1a, c1);
    o.linear(c2, c1a, P_.sigma2_w, P_.sigma2_b);
    o.silu(c, c2);
  }

  // Every block's adaLN modulation first: a block's last residual is fused with the next block's first LayerNorm,
  // which needs that block's shift and scale.
  std::vector<Modulation> mods((size_t)cfg_.n_blocks);
  if (!cfg_.causal)
    for (int64_t i = 0; i < cfg_.n_blocks; ++i) {
      Tensor mod = act(mods_[i], {B, 6 * D});
      o.linear(mod, c, P_.blocks[i].ada_w, P_.blocks[i].ada_b);
      mods[i] = Modulation::split(mod, D);
    }
  if (cfg_.n_blocks > 0) {  // block 0's first LayerNorm (the later ones come with the residual before them)
    const BlockActs& a = blocks_[0];
    Tensor ln1 = operand(a.ln1, {B, L, D}), mean1 = act(a.mean1, {N}), rstd1 = act(a.rstd1, {N});
    o.layernorm_modulate(ln1, mean1, rstd1, act(xs_[0], {B, L, D}), P_.blocks[0].norm1, mods[0].shift_msa,
                         mods[0].scale_msa);
  }

  for (int64_t i = 0; i < cfg_.n_blocks; ++i) {
    const DiTBlockTensors& w = P_.blocks[i];
    const BlockActs& a = blocks_[i];
    const Modulation& m = mods[i];
    Tensor x_in = act(xs_[i], {B, L, D}), x_mid = act(a.x_mid, {B, L, D}), x_out = act(xs_[i + 1], {B, L, D});
    // attention branch (ln1 is the LayerNorm of x_in, computed with the residual that made x_in)
    Tensor ln1 = operand(a.ln1, {B, L, D});
    Tensor qkv = operand(a.qkv, {N, 3 * D}), rotated = rotary_scratch(B, L);
    Tensor att = operand(a.att, {B, L, D}), lse = act(a.lse, {B, H, L}), proj = operand(a.proj, {N, D});
    o.linear(qkv, ln1.view({N, D}), w.attn_qkv, none);
    o.rotary_attention(att, lse, rotated, qkv.view({B, L, 3 * D}), H, cfg_.causal);
    o.linear(proj, att.view({N, D}), w.attn_out, none);
    // x_mid = x_in + gate_msa · drop(attn), and ln2 = LayerNorm of x_mid
    Tensor ln2 = operand(a.ln2, {B, L, D}), mean2 = act(a.mean2, {N}), rstd2 = act(a.rstd2, {N});
    o.gated_residual_layernorm(x_mid, ln2, mean2, rstd2, x_in, proj.view({B, L, D}), m.gate_msa, p,
                               block_dropout(rng_, i, DropoutSite::Attention), w.norm2, m.shift_mlp, m.scale_mlp);
    // MLP branch: x_out = x_mid + gate_mlp · drop(mlp), with the next block's ln1 of x_out
    Tensor f1 = operand(a.f1, {N, M}), g = operand(a.g, {N, M}), f2 = operand(a.f2, {N, D});
    o.linear_gelu(g, f1, ln2.view({N, D}), w.mlp0_w, w.mlp0_b);
    o.linear(f2, g, w.mlp2_w, w.mlp2_b);
    const Philox drop_mlp = block_dropout(rng_, i, DropoutSite::Mlp);
    if (i + 1 < cfg_.n_blocks) {
      const BlockActs& next = blocks_[i + 1];
      const Modulation& mn = mods[i + 1];
      Tensor ln1n = operand(next.ln1, {B, L, D}), mean1n = act(next.mean1, {N}), rstd1n = act(next.rstd1, {N});
      o.gated_residual_layernorm(x_out, ln1n, mean1n, rstd1n, x_mid, f2.view({B, L, D}), m.gate_mlp, p, drop_mlp,
                                 P_.blocks[i + 1].norm1, mn.shift_msa, mn.scale_msa);
    } else {  // the final LayerNorm's output y stays fp32 (the vocabulary head's input): the two ops
      o.gated_residual(x_out, x_mid, f2.view({B, L, D}), m.gate_mlp, p, drop_mlp);
    }
  }

  // Final layer: LN, modulate with (shift, scale); the linear head is forward()'s (or the fused loss head's).
  Tensor shift, scale;
  if (!cfg_.causal) {
    Tensor modf = act(modf_, {B, 2 * D});
    o.linear(modf, c, P_.final_ada_w, P_.final_ada_b);
    shift = modf.cols(0, D); scale = modf.cols(D, D);
  }
  Tensor y = act(y_, {B, L, D}), meanf = act(meanf_, {N}), rstdf = act(rstdf_, {N});
  o.layernorm_modulate(y, meanf, rstdf, act(xs_[cfg_.n_blocks], {B, L, D}), P_.final_norm, shift, scale);
  return y;
}

void DiT::backward(const Tensor& dlogits_in) {
  DUO_CHECK(opt_.training && has_grads_, "DiT backward", "model built for inference or without gradients",
            "construct with DiTOptions::training = true and bind a gradient buffer");
  DUO_CHECK(forward_done_ && opt_.full_logits, "DiT backward", "backward() without a forward()",
            "backward(dlogits) follows forward(); after forward_features() use backward_features()");
  const int64_t N = B_ * L_, D = cfg_.hidden, V = cfg_.vocab_size;
  Tensor dy = act(dy_, {N, D});
  ops_.linear_backward(dy, G_.out_w, G_.out_b, dlogits_in.view({N, V}), act(y_, {N, D}), P_.out_w, false);
  backward_features(dy);
}

Tensor DiT::features_grad() const {
  DUO_CHECK(opt_.training, "DiT", "features_grad() of a model built for inference", "");
  return act(dy_, {B_ * L_, cfg_.hidden});
}

void DiT::backward_features(const Tensor& dy_in) {
  DUO_CHECK(opt_.training && has_grads_, "DiT backward", "model built for inference or without gradients",
            "construct with DiTOptions::training = true and bind a gradient buffer");
  DUO_CHECK(forward_done_, "DiT backward", "backward() without a forward()", "");
  const int64_t B = B_, L = L_, N = B * L, D = cfg_.hidden, V = cfg_.vocab_size, cd = cfg_.cond_dim;
  const int64_t M = cfg_.mlp_hidden();
  const int H = (int)cfg_.n_heads;
  const float p = train_ ? cfg_.dropout : 0.0f;
  Ops& o = ops_;
  Tensor none;
  const Tensor dy = dy_in.view({N, D});

  // Final layer (its linear head done by the caller: dy = dL/dy).
  Tensor dh = act(dh_, {B, L, D}), dc = act(dc_, {B, cd});
  o.fill(dh, 0.0);
  Tensor c, shift, scale, dshift, dscale;
  if (!cfg_.causal) {
    c = act(c_, {B, cd});
    Tensor modf = act(modf_, {B, 2 * D}), dmodf = act(dmod_, {B, 2 * D});
    shift = modf.cols(0, D); scale = modf.cols(D, D); dshift = dmodf.cols(0, D); dscale = dmodf.cols(D, D);
    o.fill(dc, 0.0);
  }
  o.layernorm_modulate_backward(dh, G_.final_norm, dshift, dscale, dy.view({B, L, D}),
                                act(xs_[cfg_.n_blocks], {B, L, D}), act(meanf_, {N}), act(rstdf_, {N}),
                                P_.final_norm, shift, scale);
  if (!cfg_.causal) o.linear_backward(dc, G_.final_ada_w, G_.final_ada_b, act(dmod_, {B, 2 * D}), c, P_.final_ada_w, true);
  group_done(0);  // the output layer (its linear by the caller, before this)

  Tensor dln = operand(dln_, {B, L, D}), dqkv = operand(dqkv_, {B, L, 3 * D});
  Tensor rotated = rotary_scratch(B, L), drotated;
  if (rotary_scratch_) drotated = act(drotated_, {B, L, 3 * D});
  else drotated = Tensor(nullptr, opt_.dtype, {B, L, 3 * D}, ops_.device());
  Tensor datt = operand(datt_, {B, L, D}), dproj = operand(dproj_, {B, L, D});
  Tensor df1 = operand(df1_, {N, M}), df2 = operand(df2_, {B, L, D});
  for (int64_t i = cfg_.n_blocks - 1; i >= 0; --i) {
    const DiTBlockTensors& w = P_.blocks[i];
    DiTBlockTensors& gw = G_.blocks[i];
    const BlockActs& a = blocks_[i];
    Tensor dmod = act(dmod_, {B, 6 * D});
    Modulation m, dm;  // the forward's modulation and its gradient
    if (!cfg_.causal) {
      m = Modulation::split(act(mods_[i], {B, 6 * D}), D);
      dm = Modulation::split(dmod, D);
    }
    // MLP branch: x_out = x_mid + gate_mlp · drop(f2); dh holds d x_out.
    o.gated_residual_backward(df2, dm.gate_mlp, dh, operand(a.f2, {B, L, D}), m.gate_mlp, p,
                              block_dropout(rng_, i, DropoutSite::Mlp));
    o.gelu_linear_backward(df1, gw.mlp2_w, gw.mlp2_b, df2.view({N, D}), operand(a.g, {N, M}), w.mlp2_w,
                           operand(a.f1, {N, M}));
    o.linear_backward(dln, gw.mlp0_w, gw.mlp0_b, df1, operand(a.ln2, {N, D}), w.mlp0_w, false);
    o.layernorm_modulate_backward(dh, gw.norm2, dm.shift_mlp, dm.scale_mlp, dln, act(a.x_mid, {B, L, D}),
                                  act(a.mean2, {N}), act(a.rstd2, {N}), w.norm2, m.shift_mlp, m.scale_mlp);
    // Attention branch: x_mid = x_in + gate_msa · drop(proj); dh now holds d x_mid.
    o.gated_residual_backward(dproj, dm.gate_msa, dh, operand(a.proj, {B, L, D}), m.gate_msa, p,
                              block_dropout(rng_, i, DropoutSite::Attention));
    o.linear_backward(datt, gw.attn_out, none, dproj.view({N, D}), operand(a.att, {N, D}), w.attn_out, false);
    o.rotary_attention_backward(dqkv, drotated, rotated, datt, operand(a.qkv, {B, L, 3 * D}),
                                operand(a.att, {B, L, D}), act(a.lse, {B, H, L}), H, cfg_.causal);
    o.linear_backward(dln, gw.attn_qkv, none, dqkv.view({N, 3 * D}), operand(a.ln1, {N, D}), w.attn_qkv, false);
    o.layernorm_modulate_backward(dh, gw.norm1, dm.shift_msa, dm.scale_msa, dln, act(xs_[i], {B, L, D}),
                                  act(a.mean1, {N}), act(a.rstd1, {N}), w.norm1, m.shift_msa, m.scale_msa);
    if (!cfg_.causal) o.linear_backward(dc, gw.ada_w, gw.ada_b, dmod, c, w.ada_w, true);
    group_done(size_t(cfg_.n_blocks - i));
  }

  // Input embedding; dh now holds d h0.
  Tensor dh0 = dh.view({N, D});
  if (!in_.ids.empty()) {
    o.embed_ids_backward(G_.embedding, in_.ids.view({N}), dh0);
  } else if (!in_.soft_logits.empty() || !in_.relaxed.x.empty()) {
    o.embed_soft_backward(G_.embedding, act(soft_probs_, {N, V}), dh0);
  } else {
    const int64_t k = in_.bag_ids.dim(-1);
    o.embed_bag_backward(G_.embedding, in_.bag_ids.view({N, k}), in_.bag_weights.view({N, k}), dh0);
  }

  // Time conditioning MLP (σ itself needs no gradient).
  if (!cfg_.causal) {
    Tensor dc2 = act(dc2_, {B, cd}), dc1a = act(dc1a_, {B, cd}), dc1 = act(dc1_, {B, cd});
    o.silu_backward(dc2, dc, act(c2_, {B, cd}));
    o.linear_backward(dc1a, G_.sigma2_w, G_.sigma2_b, dc2, act(c1a_, {B, cd}), P_.sigma2_w, false);
    o.silu_backward(dc1, dc1a, act(c1_, {B, cd}));
    o.linear_backward(none, G_.sigma0_w, G_.sigma0_b, dc1, act(tfreq_, {B, cfg_.freq_dim}), P_.sigma0_w, false);
  }
  group_done(size_t(cfg_.n_blocks + 1));  // the input: embedding and time conditioning
}

std::vector<ParamRange> DiT::gradient_groups() const {
  const int64_t n = cfg_.n_blocks, out = table_.info("backbone.output_layer.norm_final.weight").offset;
  auto block_start = [&](int64_t i) { return table_.info(str("backbone.blocks.", i, ".norm1.weight")).offset; };
  std::vector<ParamRange> g{{out, table_.total()}};
  for (int64_t i = n - 1; i >= 0; --i) g.push_back({block_start(i), i + 1 < n ? block_start(i + 1) : out});
  g.push_back({0, n > 0 ? block_start(0) : out});
  return g;
}

}  // namespace duo
