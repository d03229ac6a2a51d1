#include "io/config_json.h"
#include "core/error.h"

namespace duo {

using json = nlohmann::json;

json config_to_json(const ModelConfig& c) {
  // dropout goes through double so 0.1f prints as 0.10000000149011612; reading it back gives 0.1f again.
  return json{{"vocab_size", c.vocab_size}, {"hidden", c.hidden},       {"n_blocks", c.n_blocks},
              {"n_heads", c.n_heads},       {"cond_dim", c.cond_dim},   {"freq_dim", c.freq_dim},
              {"mlp_ratio", c.mlp_ratio},   {"length", c.length},       {"dropout", (double)c.dropout},
              {"causal", c.causal}};
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  const char* hint = "the model configuration stored with the file is damaged; re-create the file";
  if (!j.is_object()) fail(where, "the model config is not a JSON object", hint);
  ModelConfig c;
  int64_t* ints[] = {&c.vocab_size, &c.hidden, &c.n_blocks, &c.n_heads, &c.cond_dim, &c.freq_dim, &c.mlp_ratio, &c.length};
  const char* int_keys[] = {"vocab_size", "hidden", "n_blocks", "n_heads", "cond_dim", "freq_dim", "mlp_ratio", "length"};
  const bool required[] = {true, true, true, true, true, false, false, true};
  for (int i = 0; i < 8; ++i) {
    if (!j.contains(int_keys[i])) {
      if (required[i]) fail(where, str("the model config has no '", int_keys[i], "'"), hint);
      continue;
    }
    if (!j[int_keys[i]].is_number_integer())
      fail(where, str("model config '", int_keys[i], "' must be an integer, got ", j[int_keys[i]].dump()), hint);
    *ints[i] = j[int_keys[i]].get<int64_t>();
  }
  if (j.contains("dropout")) {
    if (!j["dropout"].is_number()) fail(where, "model config 'dropout' must be a number, got " + j["dropout"].dump(), hint);
    c.dropout = j["dropout"].get<float>();
  }
  if (j.contains("causal")) {
    if (!j["causal"].is_boolean()) fail(where, "model config 'causal' must be true or false, got " + j["causal"].dump(), hint);
    c.causal = j["causal"].get<bool>();
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = it.key() == "dropout" || it.key() == "causal";
    for (const char* k : int_keys) known = known || it.key() == k;
    if (!known) fail(where, "unknown model config key '" + it.key() + "'", hint);
  }
  c.validate(where);
  return c;
}

ModelConfig config_from_json_text(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double
    fail(where, str("the model config is not valid JSON (", e.what(), ")"),
         "the model configuration stored with the file is damaged; re-create the file");
  }
  return config_from_json(j, where);
}

}  // namespace duo
