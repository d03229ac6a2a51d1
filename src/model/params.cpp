#include "model/params.h"
#include <cstdio>

namespace duo {

void ParamTable::add(const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in) {
  ParamInfo p;
  p.name = name;
  p.numel = 1;
  for (int64_t d : shape) p.numel *= d;
  p.shape = std::move(shape);
  p.offset = total_;
  p.init = init;
  p.fan_in = fan_in;
  index_[p.name] = params_.size();
  total_ += p.numel;
  params_.push_back(std::move(p));
}

ParamTable::ParamTable(const ModelConfig& c) : cfg_(c) {
  c.validate();
  const int64_t K = c.vocab_size, d = c.hidden, cd = c.cond_dim, F = c.freq_dim, m = c.mlp_hidden();
  const std::string B = "backbone.";
  // Registration order of models/dit.py (docs/model.md §2).
  add(B + "vocab_embed.embedding", {K, d}, Init::Uniform, d);
  if (!c.causal) {
    add(B + "sigma_map.mlp.0.weight", {cd, F}, Init::Uniform, F);
    add(B + "sigma_map.mlp.0.bias", {cd}, Init::Uniform, F);
    add(B + "sigma_map.mlp.2.weight", {cd, cd}, Init::Uniform, cd);
    add(B + "sigma_map.mlp.2.bias", {cd}, Init::Uniform, cd);
  }
  for (int64_t i = 0; i < c.n_blocks; ++i) {
    const std::string p = B + "blocks." + std::to_string(i) + ".";
    add(p + "norm1.weight", {d}, Init::Ones, 1);
    add(p + "attn_qkv.weight", {3 * d, d}, Init::Uniform, d);
    add(p + "attn_out.weight", {d, d}, Init::Uniform, d);
    add(p + "norm2.weight", {d}, Init::Ones, 1);
    add(p + "mlp.0.weight", {m, d}, Init::Uniform, d);
    add(p + "mlp.0.bias", {m}, Init::Uniform, d);
    add(p + "mlp.2.weight", {d, m}, Init::Uniform, m);
    add(p + "mlp.2.bias", {d}, Init::Uniform, m);
    if (!c.causal) {
      add(p + "adaLN_modulation.weight", {6 * d, cd}, Init::Zeros, cd);
      add(p + "adaLN_modulation.bias", {6 * d}, Init::Zeros, cd);
    }
  }
  add(B + "output_layer.norm_final.weight", {d}, Init::Ones, 1);
  add(B + "output_layer.linear.weight", {K, d}, Init::Zeros, d);
  add(B + "output_layer.linear.bias", {K}, Init::Zeros, d);
  if (!c.causal) {
    add(B + "output_layer.adaLN_modulation.weight", {2 * d, cd}, Init::Zeros, cd);
    add(B + "output_layer.adaLN_modulation.bias", {2 * d}, Init::Zeros, cd);
  }
}

const ParamInfo& ParamTable::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    fail(name, "no such parameter in this model (" + cfg_.describe() + ")",
         "check the tensor name; `duo-inspect --model ...` lists every parameter");
  return params_[it->second];
}

Tensor ParamTable::view(void* buffer, DType dtype, const std::string& name) const {
  const ParamInfo& p = info(name);
  Tensor t;
  t.data = static_cast<char*>(buffer) + (size_t)p.offset * dtype_size(dtype);
  t.dtype = dtype;
  t.ndim = (int)p.shape.size();
  for (int i = 0; i < t.ndim; ++i) t.shape[i] = p.shape[i];
  t.set_contiguous_strides();
  return t;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n), out;
  int k = 0;
  for (int i = (int)s.size() - 1; i >= 0; --i) {
    out.insert(out.begin(), s[i]);
    if (++k % 3 == 0 && i > 0) out.insert(out.begin(), ',');
  }
  return n < 0 ? "-" + out : out;
}

std::string ParamTable::describe() const {
  std::string s;
  char line[512];
  for (const ParamInfo& p : params_) {
    std::string shape = "[";
    for (size_t i = 0; i < p.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(p.shape[i]);
    shape += "]";
    std::snprintf(line, sizeof line, "%-52s %-14s %14s\n", p.name.c_str(), shape.c_str(), with_commas(p.numel).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line, "%-52s %-14s %14s\n", "total", "", with_commas(total_).c_str());
  return s + line;
}

}  // namespace duo
