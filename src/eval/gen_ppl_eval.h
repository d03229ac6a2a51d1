// The evaluator of generative perplexity for duo-sample (--eval.gen_ppl_eval_model_name_or_path PATH):
// a causal LM behind NextTokenScorer plus the tokenizer that re-tokenises the decoded samples.
//   PATH = a Hugging Face GPT-2 folder (config.json with model_type "gpt2")  -> load_gpt2_evaluator
//   PATH = one of our AR checkpoints (causal DiT)                            -> the DiT scorer (sample/dit_denoiser.h)
// The pipeline of the reference (duo_system.md §6.4): decode with the model's tokenizer keeping special
// tokens -> re-tokenise with the evaluator's (the EOS text becomes the EOS id) -> truncate to the sample
// length -> right-pad with EOS, one padding per sampling batch -> eval/gen_metrics.h generative_perplexity.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "backend/ops.h"
#include "data/tokenizer.h"
#include "eval/gen_metrics.h"

namespace duo {

class GenPplEvaluator {
 public:
  virtual ~GenPplEvaluator() = default;
  virtual NextTokenScorer& scorer() = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual std::string description() const = 0;  // for the log and the JSON output
};

struct EvaluatorOptions {
  int64_t batch_size = 8;      // eval.perplexity_batch_size: rows per scorer call
  // Tokenizer folders already known to the caller (the sampled model's), used when the evaluator's own
  // metadata names the same tokenizer without a folder.
  std::string known_tokenizer, known_vocab_dir;
};

// Chooses by what PATH is (see above); clear errors for anything else (a hub name that is not a local
// folder, a bidirectional checkpoint, ...).
std::unique_ptr<GenPplEvaluator> load_gen_ppl_evaluator(const std::string& path, Ops& ops, const EvaluatorOptions& opt);

// THE PLUG POINT OF THE GPT-2 SCORER (eval/gpt2.h, branch gpt2-scorer): a Hugging Face GPT-2 folder
// (config.json + model.safetensors; gpt2-large for the paper's numbers) with the GPT-2 BPE tokenizer files in
// the same folder or in the shared data folder. Until that scorer is merged this throws a duo::Error saying so.
std::unique_ptr<GenPplEvaluator> load_gpt2_evaluator(const std::string& folder, Ops& ops, const EvaluatorOptions& opt);

// Re-tokenises texts for the evaluator: invalid UTF-8 -> U+FFFD (as decode(errors="replace")), the text of
// the evaluator's EOS becomes the EOS id, every other piece goes through its encoder; then truncation to
// max_length tokens. Returns one id row per text.
std::vector<std::vector<int32_t>> retokenize_for(const GenPplEvaluator& ev, const std::vector<std::string>& texts,
                                                 int64_t max_length);

// The Gen-PPL sums of one sampling batch of decoded texts (right-padded together with EOS, as the reference).
GenPplResult score_texts(GenPplEvaluator& ev, const std::vector<std::string>& texts, int64_t max_length,
                         const GenPplOptions& opt);

// Pools the sums of several calls (the reference pools every sampling batch): gen_ppl = exp(nll / weight).
void pool_gen_ppl(GenPplResult& total, const GenPplResult& part);

}  // namespace duo
