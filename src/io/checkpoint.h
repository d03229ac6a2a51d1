// duo.cu checkpoints (docs/training.md §9): one safetensors file holding
//   backbone.*           live parameters            (float32, ParamTable names and shapes)
//   ema.backbone.*       EMA shadow weights         (optional)
//   optim.m.backbone.*   AdamW first moments        (optional)
//   optim.v.backbone.*   AdamW second moments       (optional)
//   <other names>        small state tensors of the caller (RNG state, loader position, ...)
// and __metadata__: "format" = "duo.cu checkpoint", "config" = the ModelConfig JSON (io/config_json.h), and
// every key of the caller's metadata object (algorithm, step, data position, ...) with its value stored as
// JSON text, so it reads back as the same JSON value. The file is written atomically (io/atomic_file.h).
#pragma once
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "io/safetensors.h"
#include "model/params.h"

namespace duo {

enum class Group { Params, Ema, AdamM, AdamV };
// "", "ema.", "optim.m.", "optim.v." (prepended to the backbone.* names).
const char* group_prefix(Group g);
// "parameters", "EMA weights", "Adam first moments", "Adam second moments" (for messages).
const char* group_label(Group g);

inline constexpr const char* kCheckpointFormat = "duo.cu checkpoint";

struct CheckpointContents {
  // float32 buffers laid out by the ParamTable; a null buffer is not written.
  const float* params = nullptr;
  const float* ema = nullptr;
  const float* adam_m = nullptr;
  const float* adam_v = nullptr;
  // Further tensors, written as they are. Their names must not be inside a group (`backbone.`, `ema.`, `optim.`).
  std::vector<NamedTensor> extra;
  // An object: each key is stored in __metadata__ as the JSON text of its value. "format" and "config" are
  // reserved (written from kCheckpointFormat and the table's config).
  nlohmann::json metadata = nlohmann::json::object();
};

void save_checkpoint(const std::string& path, const ParamTable& table, const CheckpointContents& contents);

class Checkpoint {
 public:
  // Reads and validates the file (io/safetensors.h), checks "format", parses "config" and the metadata.
  static Checkpoint open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const ModelConfig& config() const { return config_; }
  // The caller's metadata object, as saved (without "format" and "config").
  const nlohmann::json& metadata() const { return metadata_; }
  // The file, for the caller's extra tensors.
  const SafeTensorsFile& file() const { return file_; }

  bool has(Group g) const;
  // Fills `buffer` (table.total() floats) from the group; error naming the file and the group when the
  // checkpoint does not hold it, and load_params' errors for missing or mis-shaped tensors.
  void load(Group g, const ParamTable& table, float* buffer) const;
  // Same, but returns false and leaves `buffer` alone when the group is absent.
  bool load_if_present(Group g, const ParamTable& table, float* buffer) const;

 private:
  SafeTensorsFile file_;
  ModelConfig config_;
  nlohmann::json metadata_;
};

}  // namespace duo
