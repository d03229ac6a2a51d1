#include "model/params.h"
#include <cstdio>
#include "core/error.h"
#include "model/param_list.h"

namespace duo {

void ParamTable::add(const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in) {
  ParamInfo p;
  p.name = name;
  p.numel = 1;
  // Checked: sizes below validate()'s bound can still multiply past int64 (hidden x mlp_ratio*hidden x n_blocks).
  for (int64_t d : shape)
    DUO_CHECK(!__builtin_mul_overflow(p.numel, d, &p.numel), "model config",
              str("parameter ", name, " would have more than 2^63 elements"), "fix the model sizes");
  p.shape = std::move(shape);
  p.offset = total_;
  p.init = init;
  p.fan_in = fan_in;
  index_[p.name] = params_.size();
  DUO_CHECK(!__builtin_add_overflow(total_, p.numel, &total_), "model config",
            "the model would have more than 2^63 parameters", "fix the model sizes");
  params_.push_back(std::move(p));
}

ParamTable::ParamTable(const ModelConfig& c) : cfg_(c) {
  c.validate();
  for_each_param(c, [this](const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in,
                           const ParamSlot&) { add(name, std::move(shape), init, fan_in); });
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
