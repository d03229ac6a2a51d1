#include "io/hf.h"
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include "core/error.h"
#include "core/regular_file.h"
#include "io/weights.h"

namespace duo {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
  return s;
}

}  // namespace

HfConfig read_hf_config(const std::string& folder) {
  const std::string path = (fs::path(folder) / "config.json").string();
  std::ifstream in(path);
  if (!in) fail(path, "cannot open", "a Hugging Face model folder holds config.json and model.safetensors");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double
    fail(path, str("not valid JSON (", e.what(), ")"), "re-download the model folder");
  }
  if (!j.is_object()) fail(path, "not a JSON object", "re-download the model folder");
  const char* hint = "this is not a DUO/MDLM/AR config.json (see docs/model.md §13); re-download the model folder";

  auto integer = [&](const char* key) -> int64_t {
    if (!j.contains(key)) fail(path, str("has no '", key, "'"), hint);
    if (!j[key].is_number_integer()) fail(path, str("'", key, "' must be an integer, got ", j[key].dump()), hint);
    return j[key].get<int64_t>();
  };
  auto boolean = [&](const char* key, bool fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_boolean()) fail(path, str("'", key, "' must be true or false, got ", j[key].dump()), hint);
    return j[key].get<bool>();
  };

  HfConfig h;
  if (j.contains("model_type")) {
    if (!j["model_type"].is_string()) fail(path, "'model_type' must be a string", hint);
    h.model_type = j["model_type"].get<std::string>();
    const std::string t = lower(h.model_type);
    if (t != "duo" && t != "mdlm" && t != "ar")
      fail(path, "model_type '" + h.model_type + "' is not a DUO, MDLM or AR model", hint);
  }
  const bool ar = lower(h.model_type) == "ar";
  ModelConfig& c = h.model;
  c.hidden = integer("hidden_dim");
  c.cond_dim = integer("cond_dim");
  c.n_blocks = integer("n_blocks");
  c.n_heads = integer("n_heads");
  c.vocab_size = integer("vocab_size");
  c.length = integer("model_length");
  c.freq_dim = 256;
  c.mlp_ratio = 4;
  if (j.contains("dropout")) {
    if (!j["dropout"].is_number()) fail(path, "'dropout' must be a number, got " + j["dropout"].dump(), hint);
    c.dropout = j["dropout"].get<float>();
  }
  c.causal = boolean("causal", ar);  // the reference writes "causal": true for its AR baseline
  if (ar && !c.causal) fail(path, "model_type 'AR' with \"causal\": false", "an AR model is causal; fix config.json");
  if (!ar && c.causal && !h.model_type.empty())
    fail(path, str("model_type '", h.model_type, "' with \"causal\": true"),
         "a diffusion denoiser is bidirectional; a causal model has model_type AR");
  h.time_conditioning = boolean("time_conditioning", true);
  c.validate(path);
  return h;
}

void load_hf_weights(const std::string& folder, const ParamTable& table, float* buffer) {
  load_params((fs::path(folder) / "model.safetensors").string(), table, buffer);
}

ModelSource detect_model_source(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    fail(path, "no such file or directory",
         "pass a duo.cu checkpoint (.safetensors) or a Hugging Face model folder (config.json + model.safetensors)");
  if (fs::is_directory(st)) {
    for (const char* need : {"config.json", "model.safetensors"})
      if (!fs::exists(fs::path(path) / need))
        fail(path, str("is a directory without ", need, ", so not a Hugging Face model folder"),
             "download the whole model folder (config.json and model.safetensors), or pass a checkpoint file");
    return ModelSource::HfFolder;
  }
  // A safetensors file: an 8-byte little-endian length, then a JSON object starting with '{'. Not a FIFO or a
  // device: reading one would block or never end.
  check_regular_file(path, "the model file", "pass a duo.cu checkpoint (.safetensors) or a Hugging Face model folder");
  std::ifstream in(path, std::ios::binary);
  char head[9] = {};
  if (!in.read(head, 9) || head[8] != '{')
    fail(path, "is neither a safetensors checkpoint nor a model folder",
         "pass a duo.cu checkpoint (.safetensors) or a Hugging Face model folder (config.json + model.safetensors)");
  return ModelSource::Checkpoint;
}

}  // namespace duo
