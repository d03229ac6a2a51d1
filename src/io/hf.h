// Hugging Face model folders (s-sahoo/duo, s-sahoo/duo-distilled, kuleshov-group/mdlm-owt; docs/README.md
// docs/model.md §13, docs/training.md §10.1): `config.json` with the HF field names and `model.safetensors` with `backbone.*` float32
// tensors (plus `backbone.rotary_emb.inv_freq`, which is ignored). And telling such a folder apart from one
// of our checkpoint files, so every tool accepts either.
#pragma once
#include <string>
#include "model/config.h"
#include "model/params.h"

namespace duo {

struct HfConfig {
  ModelConfig model;
  std::string model_type;          // "DUO", "mdlm", "AR", ... as written in config.json
  bool time_conditioning = true;   // false for MDLM: the algorithm feeds sigma = 0 (the model is the same)
};

// Reads `<folder>/config.json`: hidden_dim, cond_dim, n_blocks, n_heads, vocab_size, model_length are
// required integers; dropout (0.1), causal (false), time_conditioning (true) optional. The timestep
// frequency size (256) and the MLP ratio (4) are fixed by the architecture and not in the file.
// model_type, when present, must be DUO, MDLM or AR (any case); AR means causal (default true, false is an
// error), and a DUO or MDLM model must not be causal. Errors name the file and the field.
HfConfig read_hf_config(const std::string& folder);

// Fills `buffer` (table.total() floats) from `<folder>/model.safetensors` (see load_params).
void load_hf_weights(const std::string& folder, const ParamTable& table, float* buffer);

enum class ModelSource { HfFolder, Checkpoint };

// A directory -> HfFolder (it must hold config.json and model.safetensors); a file that starts like a
// safetensors file -> Checkpoint. Anything else (missing path, other file) -> duo::Error with a HINT.
ModelSource detect_model_source(const std::string& path);

}  // namespace duo
