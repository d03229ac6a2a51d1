// ModelConfig <-> JSON, with ModelConfig's own field names. This is the "config" entry of our checkpoints'
// __metadata__ and of the DiT fixtures (tools/reference/make_fixtures.py writes the same keys):
//   {"vocab_size": 67, "hidden": 64, "n_blocks": 2, "n_heads": 4, "cond_dim": 32, "freq_dim": 256,
//    "mlp_ratio": 4, "length": 32, "dropout": 0.0, "causal": false}
#pragma once
#include <string>
#include <nlohmann/json.hpp>
#include "model/config.h"

namespace duo {

nlohmann::json config_to_json(const ModelConfig& cfg);

// Every key above is required except freq_dim (256), mlp_ratio (4), dropout (0.1) and causal (false);
// unknown keys and wrong types are errors naming `where` (the file) and the key. The result is validated.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);
// Same, from JSON text (e.g. a __metadata__ value); bad JSON is an error naming `where`.
ModelConfig config_from_json_text(const std::string& text, const std::string& where);

}  // namespace duo
