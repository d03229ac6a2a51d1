// Model paths for inference: see model_loader.h.
#include "io/model_loader.h"

#include <algorithm>
#include <filesystem>
#include <vector>
#include "io/checkpoint.h"

namespace duo {

namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return s;
}

// Typed access to an optional metadata key; a present key of the wrong type is an error naming the file.
const nlohmann::json* meta_key(const nlohmann::json& meta, const char* key, bool (nlohmann::json::*is)() const noexcept,
                               const char* type, const std::string& path) {
  if (!meta.is_object() || !meta.contains(key) || meta[key].is_null()) return nullptr;
  const nlohmann::json& v = meta[key];
  DUO_CHECK((v.*is)(), path, str("metadata key '", key, "' must be ", type, ", got ", v.dump()),
            "the checkpoint was written by another tool; pass the value on the command line instead");
  return &v;
}

ModelInfo from_checkpoint(const std::string& path) {
  ModelInfo info;
  info.path = path;
  info.source = ModelSource::Checkpoint;
  Checkpoint ck = Checkpoint::open(path);
  info.config = ck.config();
  info.has_ema = ck.has(Group::Ema);
  const nlohmann::json& m = ck.metadata();
  if (auto v = meta_key(m, "algo", &nlohmann::json::is_string, "a string", path)) info.algo = v->get<std::string>();
  if (auto v = meta_key(m, "step", &nlohmann::json::is_number_integer, "an integer", path)) info.step = v->get<int64_t>();
  if (auto v = meta_key(m, "tokenizer", &nlohmann::json::is_string, "a string", path))
    info.tokenizer = v->get<std::string>();
  if (auto v = meta_key(m, "vocab_dir", &nlohmann::json::is_string, "a string", path))
    info.vocab_dir = v->get<std::string>();
  if (auto v = meta_key(m, "mask_id", &nlohmann::json::is_number_integer, "an integer", path))
    info.mask_id = v->get<int32_t>();
  if (auto v = meta_key(m, "noise", &nlohmann::json::is_string, "a string", path)) info.noise = v->get<std::string>();
  if (auto v = meta_key(m, "noise_eps", &nlohmann::json::is_number, "a number", path))
    info.noise_eps = v->get<double>();
  if (auto v = meta_key(m, "T", &nlohmann::json::is_number_integer, "an integer", path)) info.T = v->get<int64_t>();
  if (auto s = meta_key(m, "sampling", &nlohmann::json::is_object, "an object", path)) {
    if (auto v = meta_key(*s, "steps", &nlohmann::json::is_number_integer, "an integer", path))
      info.sampling_steps = v->get<int64_t>();
    if (auto v = meta_key(*s, "noise_removal", &nlohmann::json::is_string, "a string", path))
      info.sampling_noise_removal = v->get<std::string>();
    if (auto v = meta_key(*s, "predictor", &nlohmann::json::is_string, "a string", path))
      info.sampling_predictor = v->get<std::string>();
  }
  // A relative vocab_dir that does not exist from here may be relative to the checkpoint's own folder.
  if (!info.vocab_dir.empty() && fs::path(info.vocab_dir).is_relative() && !fs::exists(info.vocab_dir)) {
    const fs::path near = fs::path(path).parent_path() / info.vocab_dir;
    if (fs::exists(near)) info.vocab_dir = near.string();
  }
  return info;
}

ModelInfo from_hf_folder(const std::string& path) {
  ModelInfo info;
  info.path = path;
  info.source = ModelSource::HfFolder;
  HfConfig h = read_hf_config(path);
  info.config = h.model;
  const std::string type = lower(h.model_type);
  if (type == "ar" || h.model.causal) info.algo = "ar";
  else if (type == "duo") info.algo = "duo_base";
  else if (type == "mdlm" || !h.time_conditioning) info.algo = "mdlm";
  info.tokenizer = "gpt2";  // the released DUO / MDLM models are GPT-2 models (docs/training.md §10.1)
  return info;
}

}  // namespace

ModelInfo inspect_model(const std::string& path) {
  DUO_CHECK(!path.empty(), "--eval.checkpoint_path", "no model given",
            "pass a duo.cu checkpoint (.safetensors) or a Hugging Face model folder");
  return detect_model_source(path) == ModelSource::HfFolder ? from_hf_folder(path) : from_checkpoint(path);
}

LoadedModel load_model(const ModelInfo& info, Ops& ops, int64_t max_batch, int64_t max_length, bool use_ema) {
  LoadedModel m;
  m.info = info;
  m.table = std::make_unique<ParamTable>(info.config);
  const ParamTable& table = *m.table;
  m.params = DeviceBuffer(ops, (size_t)table.total() * sizeof(float));
  std::vector<float> host((size_t)table.total());
  if (info.source == ModelSource::HfFolder) {
    load_hf_weights(info.path, table, host.data());
    m.weights = "Hugging Face weights";
  } else {
    Checkpoint ck = Checkpoint::open(info.path);
    const bool ema = use_ema && ck.has(Group::Ema);
    ck.load(ema ? Group::Ema : Group::Params, table, host.data());
    m.weights = ema ? "EMA weights" : "parameters";
  }
  Tensor p = m.flat_params();
  ops.from_host(p, host.data());
  DiTOptions o;
  o.max_batch = max_batch;
  o.max_length = max_length;
  o.training = false;
  m.dit = std::make_unique<DiT>(info.config, ops, o);
  m.dit->bind(m.params.ptr, nullptr);
  return m;
}

}  // namespace duo
