#include "model/dit_tensors.h"

namespace duo {

DiTTensors bind_dit_tensors(const ParamTable& table, void* buffer, DType dtype, Device device) {
  auto get = [&](const std::string& name) {
    Tensor t = table.view(buffer, dtype, name);
    t.device = device;
    return t;
  };
  const ModelConfig& c = table.config();
  const std::string B = "backbone.";
  DiTTensors p;
  p.embedding = get(B + "vocab_embed.embedding");
  if (!c.causal) {
    p.sigma0_w = get(B + "sigma_map.mlp.0.weight");
    p.sigma0_b = get(B + "sigma_map.mlp.0.bias");
    p.sigma2_w = get(B + "sigma_map.mlp.2.weight");
    p.sigma2_b = get(B + "sigma_map.mlp.2.bias");
  }
  for (int64_t i = 0; i < c.n_blocks; ++i) {
    const std::string n = B + "blocks." + std::to_string(i) + ".";
    DiTBlockTensors b;
    b.norm1 = get(n + "norm1.weight");
    b.attn_qkv = get(n + "attn_qkv.weight");
    b.attn_out = get(n + "attn_out.weight");
    b.norm2 = get(n + "norm2.weight");
    b.mlp0_w = get(n + "mlp.0.weight");
    b.mlp0_b = get(n + "mlp.0.bias");
    b.mlp2_w = get(n + "mlp.2.weight");
    b.mlp2_b = get(n + "mlp.2.bias");
    if (!c.causal) {
      b.ada_w = get(n + "adaLN_modulation.weight");
      b.ada_b = get(n + "adaLN_modulation.bias");
    }
    p.blocks.push_back(b);
  }
  p.final_norm = get(B + "output_layer.norm_final.weight");
  p.out_w = get(B + "output_layer.linear.weight");
  p.out_b = get(B + "output_layer.linear.bias");
  if (!c.causal) {
    p.final_ada_w = get(B + "output_layer.adaLN_modulation.weight");
    p.final_ada_b = get(B + "output_layer.adaLN_modulation.bias");
  }
  return p;
}

}  // namespace duo
