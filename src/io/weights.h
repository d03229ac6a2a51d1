// Model weights in safetensors files: filling a ParamTable-laid-out float32 buffer from a file (our
// checkpoints, the DiT fixtures, Hugging Face model.safetensors), and listing a buffer as named tensors for
// the writer. Names are the reference's (`backbone.blocks.3.attn_qkv.weight`); a prefix selects a copy of
// the model inside one file (`ema.` -> `ema.backbone.*`, `optim.m.` -> `optim.m.backbone.*`).
#pragma once
#include <string>
#include <vector>
#include "io/safetensors.h"
#include "model/params.h"

namespace duo {

// Copies every tensor of `table` from `<prefix><name>` in `file` into `buffer` (table.total() floats).
//  * a missing tensor -> error naming it and the file; a wrong shape -> error showing both shapes;
//  * a NaN or inf anywhere -> error naming the tensor (a poisoned model never runs);
//  * F32 is copied, BF16 / F16 / F64 are converted to float32; any other dtype -> error;
//  * `<prefix>backbone.rotary_emb.inv_freq` (a buffer HF files carry) is ignored: it is recomputed;
//  * any other `<prefix>backbone.*` tensor the table does not have -> error (a model of another kind, e.g.
//    a causal file loaded as non-causal);
//  * tensors outside `<prefix>backbone.` (`ema.*`, `optim.*`, state tensors) are left for the caller.
void load_params(const SafeTensorsFile& file, const ParamTable& table, float* buffer, const std::string& prefix = "");

// Convenience: open `path` and load_params from it.
void load_params(const std::string& path, const ParamTable& table, float* buffer, const std::string& prefix = "");

// The tensors of a float32 `buffer` laid out by `table`, named `<prefix><name>`, in registration order,
// ready for write_safetensors (they point into `buffer`).
std::vector<NamedTensor> param_tensors(const ParamTable& table, const float* buffer, const std::string& prefix = "");

// Throws duo::Error naming `name` in `path` (how many, the first and where) when v[0..n) holds a NaN or an inf:
// load_params runs it on every tensor, other loaders (the GPT-2 scorer) on theirs.
void check_finite(const float* v, int64_t n, const std::string& name, const std::string& path);

// Element conversions used by load_params (exposed for tests): bfloat16 / IEEE half bits -> float.
float bf16_to_float(uint16_t bits);
float f16_to_float(uint16_t bits);

}  // namespace duo
