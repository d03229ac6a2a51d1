// What the sampling and evaluation tools need to know about a model path, and loading it for inference.
// A path is either one of our checkpoints (io/checkpoint.h: config + metadata written by duo-train) or a
// Hugging Face folder (io/hf.h: config.json + model.safetensors; s-sahoo/duo, kuleshov-group/mdlm-owt).
//
// Checkpoint metadata keys read here (all optional; the command line overrides them): algo, step, tokenizer,
// vocab_dir, mask_id, noise, noise_eps. For an HF folder: algo from model_type (DUO -> duo_base,
// mdlm -> mdlm) and the GPT-2 tokenizer (the released models are GPT-2 / OpenWebText models).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include "backend/device_buffer.h"
#include "io/hf.h"
#include "model/dit.h"

namespace duo {

struct ModelInfo {
  std::string path;
  ModelSource source = ModelSource::Checkpoint;
  ModelConfig config;
  std::string algo;              // "" when the file does not say
  int64_t step = -1;             // -1 when the file does not say
  std::string tokenizer;         // tokenizer name, "" when unknown
  std::string vocab_dir;         // tokenizer files, "" when unknown
  int32_t mask_id = -1;          // -1 when unknown
  std::string noise = "log-linear";
  double noise_eps = 1e-3;
  bool has_ema = false;          // checkpoint with ema.backbone.* tensors
  int64_t T = 0;                 // discrete time steps of training (D3PM), 0 = continuous or unknown
  // The recommended sampler (metadata `sampling`): 0 / "" when the file does not say.
  int64_t sampling_steps = 0;
  std::string sampling_noise_removal, sampling_predictor;
};

// Reads the configuration and metadata (no weights). Errors name the path and the bad key, with a HINT.
ModelInfo inspect_model(const std::string& path);

// A DiT ready for inference: parameters on the ops' device, activations planned for (max_batch, max_length).
struct LoadedModel {
  ModelInfo info;
  std::unique_ptr<ParamTable> table;
  DeviceBuffer params;  // float32, table->total() elements, the layout of table
  std::unique_ptr<DiT> dit;
  std::string weights;  // which weights were loaded: "EMA weights", "parameters" or "Hugging Face weights"

  Tensor flat_params() const { return Tensor(params.ptr, DType::F32, {table->total()}, params.ops->device()); }
};

// use_ema: the EMA shadow when the checkpoint has one (the reference evaluates with EMA weights); otherwise
// the live parameters. max_length 0 = the config's length.
LoadedModel load_model(const ModelInfo& info, Ops& ops, int64_t max_batch, int64_t max_length, bool use_ema);

}  // namespace duo
