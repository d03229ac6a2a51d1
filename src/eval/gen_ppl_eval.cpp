// Gen-PPL evaluators for duo-sample: see gen_ppl_eval.h.
#include "eval/gen_ppl_eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include "data/unicode.h"
#include "sample/dit_denoiser.h"
#include "sample/model_files.h"

namespace duo {

namespace {

namespace fs = std::filesystem;
const char* kOption = "--eval.gen_ppl_eval_model_name_or_path";

// One of our AR checkpoints (a causal DiT) as the evaluator.
class ArEvaluator final : public GenPplEvaluator {
 public:
  ArEvaluator(const ModelInfo& info, Ops& ops, const EvaluatorOptions& opt) {
    DUO_CHECK(info.config.causal, info.path,
              str("is a bidirectional model (algo '", info.algo.empty() ? "?" : info.algo,
                  "'), not a causal language model"),
              str("give ", kOption, " an AR checkpoint or a Hugging Face GPT-2 folder"));
    std::string name = info.tokenizer;
    DUO_CHECK(!name.empty(), info.path, "the evaluator checkpoint does not name its tokenizer (metadata 'tokenizer')",
              "retrain or re-save it with duo-train, which records the tokenizer");
    std::string dir = info.vocab_dir;
    if (dir.empty() && name == opt.known_tokenizer) dir = opt.known_vocab_dir;
    dir = find_vocab_dir(name, dir);
    DUO_CHECK(!dir.empty(), info.path, str("no files found for its tokenizer '", name, "'"),
              "record vocab_dir in the checkpoint or put the files in shared/data/" + name);
    tokenizer_ = load_tokenizer(name, dir);
    DUO_CHECK(tokenizer_->vocab_size() == info.config.vocab_size, info.path,
              str("the evaluator's tokenizer has ", tokenizer_->vocab_size(), " ids, its model ",
                  info.config.vocab_size),
              "check the checkpoint's tokenizer metadata");
    const SpecialIds s = tokenizer_->specials();
    eos_ = (int32_t)s.eos;
    DUO_CHECK(eos_ >= 0, info.path, str("tokenizer '", name, "' has no EOS id"), "use a GPT-2 or char AR model");
    const int32_t mask = info.mask_id >= 0 ? info.mask_id : (int32_t)(s.mask >= 0 ? s.mask : s.pad);
    model_ = load_model(info, ops, opt.batch_size, 0, /*use_ema=*/true);
    scorer_ = std::make_unique<DiTScorer>(*model_.dit, ops, mask);
    description_ = str(info.path, " (AR DiT, ", model_.weights, ", tokenizer ", name, ")");
  }
  NextTokenScorer& scorer() override { return *scorer_; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  int32_t eos_id() const override { return eos_; }
  std::string description() const override { return description_; }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  LoadedModel model_;
  std::unique_ptr<DiTScorer> scorer_;
  int32_t eos_ = -1;
  std::string description_;
};

// config.json of a folder says model_type "gpt2".
bool is_gpt2_folder(const std::string& path) {
  const fs::path cfg = fs::path(path) / "config.json";
  if (!fs::is_directory(path) || !fs::exists(cfg)) return false;
  std::ifstream in(cfg);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("model_type") && j["model_type"] == "gpt2";
}

}  // namespace

std::unique_ptr<GenPplEvaluator> load_gpt2_evaluator(const std::string& folder, Ops& /*ops*/,
                                                     const EvaluatorOptions& /*opt*/) {
  fail(folder, "is a GPT-2 model, and the GPT-2 scorer is not part of this build yet",
       str("merge the gpt2-scorer branch (eval/gpt2.h), or give ", kOption, " one of our AR checkpoints"));
}

std::unique_ptr<GenPplEvaluator> load_gen_ppl_evaluator(const std::string& path, Ops& ops, const EvaluatorOptions& opt) {
  DUO_CHECK(opt.batch_size >= 1, "--eval.perplexity_batch_size", str("got ", opt.batch_size), "use a positive batch");
  if (!fs::exists(path))
    fail(path, "no such file or folder",
         str(kOption, " takes a local path: a Hugging Face GPT-2 folder (e.g. gpt2-large downloaded with its "
                      "config.json and model.safetensors) or one of our AR checkpoints"));
  if (is_gpt2_folder(path)) return load_gpt2_evaluator(path, ops, opt);
  return std::make_unique<ArEvaluator>(inspect_model(path), ops, opt);
}

std::vector<std::vector<int32_t>> retokenize_for(const GenPplEvaluator& ev, const std::vector<std::string>& texts,
                                                 int64_t max_length) {
  const Tokenizer& tok = ev.tokenizer();
  const int32_t eos = ev.eos_id();
  const std::string eos_text = tok.decode(std::vector<uint32_t>{(uint32_t)eos});
  std::vector<std::vector<int32_t>> rows;
  std::vector<uint32_t> piece;
  for (const std::string& raw : texts) {
    const std::string text = replace_invalid_utf8(raw);
    std::vector<int32_t> ids;
    size_t at = 0;
    while (at <= text.size() && (int64_t)ids.size() < max_length) {
      const size_t next = eos_text.empty() ? std::string::npos : text.find(eos_text, at);
      const size_t end = next == std::string::npos ? text.size() : next;
      piece.clear();
      tok.encode(std::string_view(text).substr(at, end - at), piece, nullptr);
      ids.insert(ids.end(), piece.begin(), piece.end());
      if (next == std::string::npos) break;
      ids.push_back(eos);
      at = next + eos_text.size();
    }
    if ((int64_t)ids.size() > max_length) ids.resize((size_t)max_length);
    rows.push_back(std::move(ids));
  }
  return rows;
}

GenPplResult score_texts(GenPplEvaluator& ev, const std::vector<std::string>& texts, int64_t max_length,
                         const GenPplOptions& opt) {
  const std::vector<std::vector<int32_t>> rows = retokenize_for(ev, texts, max_length);
  size_t N = 2;
  for (const auto& r : rows) N = std::max(N, r.size());
  const int64_t n = (int64_t)rows.size();
  std::vector<int32_t> ids((size_t)n * N, ev.eos_id());  // right padding with EOS (pad := eos)
  std::vector<uint8_t> attn((size_t)n * N, 0);
  for (int64_t b = 0; b < n; ++b) {
    std::copy(rows[b].begin(), rows[b].end(), ids.begin() + b * N);
    std::fill(attn.begin() + b * N, attn.begin() + b * N + rows[b].size(), 1);
  }
  GenPplOptions o = opt;
  o.eos_id = ev.eos_id();
  return generative_perplexity(ev.scorer(), ids.data(), attn.data(), n, (int64_t)N, o);
}

void pool_gen_ppl(GenPplResult& total, const GenPplResult& part) {
  total.nll_sum += part.nll_sum;
  total.weight_sum += part.weight_sum;
  total.samples_scored += part.samples_scored;
  total.gen_ppl = total.weight_sum > 0 ? std::exp(total.nll_sum / total.weight_sum) : 0.0;
}

}  // namespace duo
