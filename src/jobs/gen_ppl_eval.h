// The evaluator of generative perplexity for duo-sample (--eval.gen_ppl_eval_model_name_or_path PATH):
// a causal LM behind the Scorer interface (eval/scorer.h) plus the tokenizer that re-tokenises the samples.
//   PATH = a Hugging Face GPT-2 folder (config.json with model_type "gpt2")  -> load_gpt2_evaluator
//   PATH = one of our AR checkpoints (causal DiT)                            -> the DiT scorer (sample/dit_denoiser.h)
// The pipeline of the reference (docs/evaluation.md §3–§4): decode with the model's tokenizer keeping special
// tokens -> re-tokenise with the evaluator's (the EOS text becomes the EOS id) -> truncate to the sample
// length -> right-pad with EOS, one padding per sampling batch -> eval/gen_ppl.h generative_perplexity.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "backend/ops.h"
#include "data/tokenizer.h"
#include "eval/gen_ppl.h"

namespace duo {

class GenPplEvaluator {
 public:
  virtual ~GenPplEvaluator() = default;
  virtual Scorer& scorer() = 0;
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

// A Hugging Face GPT-2 folder (config.json + model.safetensors; gpt2-large for the paper's numbers) scored by
// the in-engine GPT-2 (eval/gpt2.h), with the GPT-2 BPE files (vocab.json + merges.txt or encoder.json +
// vocab.bpe) in the same folder, else the repository's data/vendor/gpt2.
std::unique_ptr<GenPplEvaluator> load_gpt2_evaluator(const std::string& folder, Ops& ops, const EvaluatorOptions& opt);

// The Gen-PPL sums of one sampling batch of decoded texts: re-tokenised for the evaluator (the EOS text
// becomes its EOS id), truncated to max_length, right-padded together with EOS, as the reference does. Pool
// the batches with GenPplResult::add.
GenPplResult score_texts(GenPplEvaluator& ev, const std::vector<std::string>& texts, int64_t max_length,
                         const GenPplOptions& opt);

}  // namespace duo
