#include "io/checkpoint.h"
#include <map>
#include "core/error.h"
#include "io/config_json.h"
#include "io/weights.h"

namespace duo {

using json = nlohmann::json;

const char* group_prefix(Group g) {
  switch (g) {
    case Group::Params: return "";
    case Group::Ema: return "ema.";
    case Group::AdamM: return "optim.m.";
    case Group::AdamV: return "optim.v.";
  }
  return "";
}

const char* group_label(Group g) {
  switch (g) {
    case Group::Params: return "parameters";
    case Group::Ema: return "EMA weights";
    case Group::AdamM: return "Adam first moments";
    case Group::AdamV: return "Adam second moments";
  }
  return "";
}

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

void save_checkpoint(const std::string& path, const ParamTable& table, const CheckpointContents& c) {
  const char* bug = "this is a bug in the caller of save_checkpoint";
  if (!c.metadata.is_object()) fail(path, "checkpoint metadata must be a JSON object", bug);
  std::map<std::string, std::string> meta;
  for (auto it = c.metadata.begin(); it != c.metadata.end(); ++it) {
    if (it.key() == "format" || it.key() == "config")
      fail(path, "checkpoint metadata key '" + it.key() + "' is reserved", bug);
    meta[it.key()] = it.value().dump();
  }
  meta["format"] = kCheckpointFormat;
  meta["config"] = config_to_json(table.config()).dump();

  std::vector<NamedTensor> tensors;
  const std::pair<Group, const float*> groups[] = {
      {Group::Params, c.params}, {Group::Ema, c.ema}, {Group::AdamM, c.adam_m}, {Group::AdamV, c.adam_v}};
  for (const auto& [g, buffer] : groups) {
    if (!buffer) continue;
    std::vector<NamedTensor> t = param_tensors(table, buffer, group_prefix(g));
    tensors.insert(tensors.end(), t.begin(), t.end());
  }
  for (const NamedTensor& t : c.extra) {
    if (starts_with(t.name, "backbone.") || starts_with(t.name, "ema.") || starts_with(t.name, "optim."))
      fail(path, "extra checkpoint tensor '" + t.name + "' uses a name reserved for the weight groups", bug);
    tensors.push_back(t);
  }
  write_safetensors(path, tensors, meta);
}

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint ck;
  ck.file_ = SafeTensorsFile::open(path);
  const auto& meta = ck.file_.metadata();
  auto format = meta.find("format");
  if (format == meta.end() || format->second != kCheckpointFormat)
    fail(path, "is a safetensors file but not a duo.cu checkpoint (no __metadata__ format = \"duo.cu checkpoint\")",
         "for a Hugging Face model pass its folder (config.json + model.safetensors) instead of the file");
  ck.config_ = config_from_json_text(ck.file_.meta("config"), path);
  // The config must fit the file: any weight group holds every parameter in at least 2 bytes (bf16/f16), so a
  // small file cannot make its reader allocate the buffers of a huge claimed model (seen while writing the
  // safetensors fuzz target, which loads what the config describes).
  uint64_t stored = 0;
  for (const StTensor& t : ck.file_.tensors()) stored += t.nbytes;
  const int64_t n_params = ParamTable(ck.config_).total();
  DUO_CHECK((uint64_t)n_params <= stored / 2, path,
            str("its config describes a model of ", n_params, " parameters, but the file holds only ", stored,
                " bytes of tensors"),
            "the checkpoint was edited or damaged; re-create it");
  ck.metadata_ = json::object();
  for (const auto& [key, text] : meta) {
    if (key == "format" || key == "config") continue;
    try {
      ck.metadata_[key] = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double
      fail(path, str("__metadata__ '", key, "' is not valid JSON (", e.what(), ")"),
           "the checkpoint was edited or damaged; re-create it");
    }
  }
  return ck;
}

bool Checkpoint::has(Group g) const {
  // Every model has the vocabulary embedding, so its presence marks the group.
  return file_.has(std::string(group_prefix(g)) + "backbone.vocab_embed.embedding");
}

void Checkpoint::load(Group g, const ParamTable& table, float* buffer) const {
  if (!has(g))
    fail(path(), str("the checkpoint holds no ", group_label(g), " (", group_prefix(g), "backbone.*)"),
         g == Group::Params ? "the file is not a complete checkpoint; re-create it"
                            : "it was saved without them (e.g. an export of the weights only); start the "
                              "optimizer/EMA afresh, or use a checkpoint written during training");
  load_params(file_, table, buffer, group_prefix(g));
}

bool Checkpoint::load_if_present(Group g, const ParamTable& table, float* buffer) const {
  if (!has(g)) return false;
  load_params(file_, table, buffer, group_prefix(g));
  return true;
}

}  // namespace duo
