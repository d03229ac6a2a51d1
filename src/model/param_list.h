// The DiT's parameters, listed once: each tensor's name (the reference's state_dict name, docs/model.md §2), its
// shape, its initialisation and fan-in, and the named view it becomes in DiTTensors. ParamTable registers them in
// this order (the reference's registration order, docs/model.md §2.2) and bind_dit_tensors fills the views from
// the same list, so a parameter cannot be added to one and forgotten in the other.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "model/config.h"
#include "model/dit_tensors.h"
#include "model/params.h"

namespace duo {

// Where a parameter's view goes: a member of DiTTensors, or a member of block `block`'s DiTBlockTensors.
struct ParamSlot {
  Tensor DiTTensors::*model = nullptr;
  Tensor DiTBlockTensors::*in_block = nullptr;
  int64_t block = -1;
};

// Calls f(name, shape, init, fan_in, slot) for every parameter of a model of configuration c, in registration
// order. The causal (AR) model has no time embedding and no adaLN.
template <class F>
void for_each_param(const ModelConfig& c, F&& f) {
  const int64_t V = c.vocab_size, d = c.hidden, cd = c.cond_dim, Fq = c.freq_dim, m = c.mlp_hidden();
  const std::string B = "backbone.";
  using T = DiTTensors;
  using Bk = DiTBlockTensors;
  auto top = [&](const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in, Tensor T::*slot) {
    f(B + name, std::move(shape), init, fan_in, ParamSlot{slot, nullptr, -1});
  };
  top("vocab_embed.embedding", {V, d}, Init::Uniform, d, &T::embedding);
  if (!c.causal) {
    top("sigma_map.mlp.0.weight", {cd, Fq}, Init::Uniform, Fq, &T::sigma0_w);
    top("sigma_map.mlp.0.bias", {cd}, Init::Uniform, Fq, &T::sigma0_b);
    top("sigma_map.mlp.2.weight", {cd, cd}, Init::Uniform, cd, &T::sigma2_w);
    top("sigma_map.mlp.2.bias", {cd}, Init::Uniform, cd, &T::sigma2_b);
  }
  for (int64_t i = 0; i < c.n_blocks; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    auto blk = [&](const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in, Tensor Bk::*slot) {
      f(B + p + name, std::move(shape), init, fan_in, ParamSlot{nullptr, slot, i});
    };
    blk("norm1.weight", {d}, Init::Ones, 1, &Bk::norm1);
    blk("attn_qkv.weight", {3 * d, d}, Init::Uniform, d, &Bk::attn_qkv);
    blk("attn_out.weight", {d, d}, Init::Uniform, d, &Bk::attn_out);
    blk("norm2.weight", {d}, Init::Ones, 1, &Bk::norm2);
    blk("mlp.0.weight", {m, d}, Init::Uniform, d, &Bk::mlp0_w);
    blk("mlp.0.bias", {m}, Init::Uniform, d, &Bk::mlp0_b);
    blk("mlp.2.weight", {d, m}, Init::Uniform, m, &Bk::mlp2_w);
    blk("mlp.2.bias", {d}, Init::Uniform, m, &Bk::mlp2_b);
    if (!c.causal) {
      blk("adaLN_modulation.weight", {6 * d, cd}, Init::Zeros, cd, &Bk::ada_w);
      blk("adaLN_modulation.bias", {6 * d}, Init::Zeros, cd, &Bk::ada_b);
    }
  }
  top("output_layer.norm_final.weight", {d}, Init::Ones, 1, &T::final_norm);
  top("output_layer.linear.weight", {V, d}, Init::Zeros, d, &T::out_w);
  top("output_layer.linear.bias", {V}, Init::Zeros, d, &T::out_b);
  if (!c.causal) {
    top("output_layer.adaLN_modulation.weight", {2 * d, cd}, Init::Zeros, cd, &T::final_ada_w);
    top("output_layer.adaLN_modulation.bias", {2 * d}, Init::Zeros, cd, &T::final_ada_b);
  }
}

}  // namespace duo
