// Gen-PPL evaluators for duo-sample: see gen_ppl_eval.h.
#include "jobs/gen_ppl_eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include "eval/gpt2.h"
#include "io/repo_files.h"
#include "eval/dit_scorer.h"
#include "io/model_loader.h"

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
              "record vocab_dir in the checkpoint (duo-train does), or pass the tokenizer folder with --vocab");
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
  Scorer& scorer() override { return *scorer_; }
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

std::unique_ptr<GenPplEvaluator> load_gpt2_evaluator(const std::string& folder, Ops& ops, const EvaluatorOptions& opt) {
  class Gpt2Evaluator final : public GenPplEvaluator {
   public:
    Gpt2Evaluator(const std::string& folder, Ops& ops, const EvaluatorOptions& opt)
        : model_(load_gpt2(ops, folder, opt.batch_size)) {
      std::string dir = folder;
      if (!fs::exists(fs::path(folder) / "vocab.json") && !fs::exists(fs::path(folder) / "encoder.json"))
        dir = find_vocab_dir("gpt2", "");
      DUO_CHECK(!dir.empty(), folder, "no GPT-2 tokenizer files (vocab.json + merges.txt) in the folder",
                "download them with the model; the repository's own copy is data/vendor/gpt2 (run from the repository)");
      tokenizer_ = load_tokenizer("gpt2", dir);
      description_ = str(folder, " (GPT-2 ", model_->name(), ")");
    }
    Scorer& scorer() override { return *model_; }
    const Tokenizer& tokenizer() const override { return *tokenizer_; }
    int32_t eos_id() const override { return 50256; }
    std::string description() const override { return description_; }

   private:
    std::unique_ptr<GPT2> model_;
    std::unique_ptr<Tokenizer> tokenizer_;
    std::string description_;
  };
  return std::make_unique<Gpt2Evaluator>(folder, ops, opt);
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

GenPplResult score_texts(GenPplEvaluator& ev, const std::vector<std::string>& texts, int64_t max_length,
                         const GenPplOptions& opt) {
  GenPplOptions o = opt;
  o.eos = ev.eos_id();
  o.max_length = max_length;
  return generative_perplexity(ev.scorer(), retokenize(texts, ev.tokenizer(), o.eos, ev.scorer().vocab_size()), o);
}

}  // namespace duo
