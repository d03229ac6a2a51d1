// The parameter table: every tensor of the DiT with the reference's state_dict name and shape
// (docs/model.md §2), laid out back to back in one contiguous buffer. Gradients and optimizer state use the
// same layout (same offsets), so "zero the grads", "global norm" and "AdamW" are single passes, and a
// checkpoint is one header plus one buffer. Tensors are addressed by name, never by index.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>
#include "core/tensor.h"
#include "model/config.h"

namespace duo {

// How a parameter is initialised when training from scratch (docs/model.md §10).
enum class Init : uint8_t {
  Uniform,  // U(-bound, bound) with bound = 1/sqrt(fan_in): nn.Linear weight/bias, and the embedding (fan_in = d)
  Zeros,    // adaLN modulation and the output head
  Ones,     // LayerNorm weights
};

// Elements [begin, end) of the flat parameter vector.
struct ParamRange {
  int64_t begin = 0, end = 0;
};

struct ParamInfo {
  std::string name;             // e.g. "backbone.blocks.3.attn_qkv.weight"
  std::vector<int64_t> shape;   // PyTorch layout, Linear weights are [out, in]
  int64_t offset = 0;           // in elements, from the start of the buffer
  int64_t numel = 0;
  Init init = Init::Uniform;
  int64_t fan_in = 1;           // for Init::Uniform
};

class ParamTable {
 public:
  explicit ParamTable(const ModelConfig& cfg);

  const ModelConfig& config() const { return cfg_; }
  // In registration order (the order of PyTorch's parameters(), which the reference's EMA list uses).
  const std::vector<ParamInfo>& params() const { return params_; }
  int64_t total() const { return total_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  // Throws duo::Error naming the tensor when it does not exist in this model.
  const ParamInfo& info(const std::string& name) const;
  // View of one tensor inside a buffer laid out by this table (params, grads, Adam m or v).
  Tensor view(void* buffer, DType dtype, const std::string& name) const;
  // Printable table: name, shape, count; and the total.
  std::string describe() const;

 private:
  void add(const std::string& name, std::vector<int64_t> shape, Init init, int64_t fan_in);
  ModelConfig cfg_;
  std::vector<ParamInfo> params_;
  std::unordered_map<std::string, size_t> index_;
  int64_t total_ = 0;
};

// Formats 169627218 as "169,627,218".
std::string with_commas(int64_t n);

}  // namespace duo
