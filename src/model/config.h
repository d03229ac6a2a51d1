// DiT configuration (docs/model.md §12): presets tiny / small / medium plus free sizes.
#pragma once
#include <cstdint>
#include <string>

namespace duo {

struct ModelConfig {
  int64_t vocab_size = 50258;  // K: model input/output width (GPT-2 50257 + [PAD]/[MASK])
  int64_t hidden = 768;        // d
  int64_t n_blocks = 12;
  int64_t n_heads = 12;
  int64_t cond_dim = 128;      // width of the time conditioning c
  int64_t freq_dim = 256;      // sinusoidal timestep features (cos ‖ sin), fixed by the reference
  int64_t mlp_ratio = 4;
  int64_t length = 1024;       // L, sequence length
  float dropout = 0.1f;        // on the two residual branches, training only
  bool causal = false;         // AR variant: causal attention, no sigma_map, no adaLN (docs/model.md §11)

  int64_t head_dim() const { return hidden / n_heads; }
  int64_t mlp_hidden() const { return mlp_ratio * hidden; }
  // Throws duo::Error naming the offending field when the sizes do not fit together.
  void validate(const std::string& where = "model config") const;
  std::string describe() const;
};

// "tiny" | "small" | "medium"; throws with the list of presets when the name is unknown.
ModelConfig model_preset(const std::string& name);

}  // namespace duo
