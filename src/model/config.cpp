#include "model/config.h"
#include <utility>
#include "core/error.h"

namespace duo {

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") { c.hidden = 256; c.n_blocks = 8; c.n_heads = 8; }
  else if (name == "small") { c.hidden = 768; c.n_blocks = 12; c.n_heads = 12; }
  else if (name == "medium") { c.hidden = 1024; c.n_blocks = 24; c.n_heads = 16; }
  else fail("--model", str("unknown model preset '", name, "'"),
            "use tiny, small or medium, and override sizes with --model.hidden_size, --model.n_blocks, ...");
  return c;
}

void ModelConfig::validate(const std::string& where) const {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) fail(where, what, "fix the model sizes (see --help for the model.* options)");
  };
  need(vocab_size >= 2, str("vocab_size must be >= 2, got ", vocab_size));
  need(hidden >= 1 && n_heads >= 1, "hidden_size and n_heads must be positive");
  need(hidden % n_heads == 0, str("hidden_size ", hidden, " is not divisible by n_heads ", n_heads));
  need(head_dim() % 2 == 0, str("head dim ", head_dim(), " must be even for rotary embeddings"));
  need(n_blocks >= 1, "n_blocks must be >= 1");
  need(cond_dim >= 1, "cond_dim must be >= 1");
  need(freq_dim >= 2 && freq_dim % 2 == 0, "frequency_embedding_size must be even");
  need(length >= 2, str("length must be >= 2, got ", length));
  need(mlp_ratio >= 1, str("mlp_ratio must be >= 1, got ", mlp_ratio));
  // An upper bound on every size keeps the products of two sizes (mlp_ratio * hidden, batch * length, ...) far
  // from int64 overflow; a file can claim any number (found by fuzzing config.json and checkpoint configs).
  constexpr int64_t kMaxSize = int64_t(1) << 24;
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"vocab_size", vocab_size}, {"hidden_size", hidden},
                                {"n_blocks", n_blocks}, {"n_heads", n_heads}, {"cond_dim", cond_dim},
                                {"frequency_embedding_size", freq_dim}, {"mlp_ratio", mlp_ratio}, {"length", length}})
    need(v <= kMaxSize, str(name, " must be at most ", kMaxSize, ", got ", v));
  need(dropout >= 0.0f && dropout < 1.0f, str("dropout must be in [0, 1), got ", dropout));
}

std::string ModelConfig::describe() const {
  return str(causal ? "causal " : "", "DiT d=", hidden, " blocks=", n_blocks, " heads=", n_heads, "x", head_dim(),
             " cond=", cond_dim, " vocab=", vocab_size, " length=", length, " dropout=", dropout);
}

}  // namespace duo
