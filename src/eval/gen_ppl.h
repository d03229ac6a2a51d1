// Generative perplexity (docs/evaluation.md §3): how likely a scorer LM (GPT-2 Large in
// the paper) finds the decoded samples of a diffusion model.
//
//   texts --retokenise--> ids (no BOS) --truncate to max_length--> right-pad with EOS
//   batches of batch_size; chunks of the scorer's context along the sequence, each scored on its own
//   per chunk: nll of targets 1..n-1 given the tokens before them (attention mask = real tokens)
//   weight of target j: 1 if it is not EOS, or if it is the chunk's first EOS (running EOS count from
//   position 0 of the chunk, inclusive, equals 1); else 0. Padding is EOS, so it counts only as the first
//   EOS of a sample that has none; position 0 is never a target.
//   gen_ppl = exp(Σ nll·w / Σ w) over all samples (token-weighted, not a mean of per-sample perplexities)
//
// Padding and batching as the reference (Metrics.record_generative_perplexity), which is called once per
// sampling batch: all samples of ONE call are right-padded together to the longest of them, then scored in
// batches of perplexity_batch_size, dropping the samples that do not fill a last batch. The common padding
// matters: a sample shorter than the longest gets an EOS after its text, and that EOS counts when the text
// has none, while the longest sample's end is not scored. So pass the samples of one sampling batch per
// call and pool the calls with GenPplResult::add. drop_last defaults to false here (score every sample);
// set it for the reference's numbers when a call has more samples than one batch.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include "data/tokenizer.h"
#include "eval/scorer.h"

namespace duo {

struct GenPplOptions {
  int64_t max_length = 1024;  // truncation of the re-tokenised samples (the diffusion model's length)
  int64_t batch_size = 8;     // eval.perplexity_batch_size
  bool drop_last = false;     // true: skip the samples that do not fill a last batch, as the reference does
  int32_t eos = 50256;        // GPT-2's <|endoftext|>; also the padding id
};

// Sums over the scored samples of one call; add() pools calls (the reference pools every sampling batch).
struct GenPplResult {
  double nll_sum = 0;  // Σ nll·w
  double weight = 0;   // Σ w (number of scored targets)
  int64_t samples_scored = 0;
  int64_t samples_dropped = 0;  // by drop_last

  void add(const GenPplResult& other);
  // exp(nll_sum / weight); duo::Error when no target was scored.
  double gen_ppl() const;
};

// The reference's target weights of one chunk row (n tokens, padding included): (n - 1) values for targets
// 1..n-1, 1 where the target counts and 0 where it does not.
std::vector<uint8_t> gen_ppl_target_weights(std::span<const int32_t> chunk, int32_t eos);

// Scores the re-tokenised samples of one call (token ids of the scorer's vocabulary). Throws duo::Error when a
// batch does not fit the scorer.
GenPplResult generative_perplexity(Scorer& scorer, const std::vector<std::vector<int32_t>>& samples,
                                   const GenPplOptions& opt);

// text -> token ids of the scorer's tokenizer as plain text (e.g. the GPT-2 tokenizer's encode: no BOS added,
// special-token text not recognised).
using EncodeFn = std::function<std::vector<uint32_t>(std::string_view)>;

// A special token's text and id: the text is matched as a whole, before ordinary tokenisation.
struct SpecialText {
  std::string text;
  int32_t id;
};

// Re-tokenises decoded samples as the reference's Hugging Face tokenizer does: the text of each special token
// the scorer knows (always "<|endoftext|>" = `eos`, what a sampled BOS/EOS decodes to) becomes its id as a
// whole; the text between occurrences goes through `encode`. Ids must fit the scorer's vocabulary (error
// naming the sample).
std::vector<std::vector<int32_t>> retokenize(const std::vector<std::string>& texts, const EncodeFn& encode,
                                             int32_t eos, int64_t vocab_size,
                                             const std::vector<SpecialText>& more_specials = {});

// The same with one of our tokenizers (data/tokenizer.h; GPT-2 BPE for the GPT-2 scorers). Its other special
// tokens whose ids the scorer has (e.g. the char tokenizer's [PAD] for one of our AR models; not GPT-2's added
// [PAD] = 50257 for GPT-2 itself, which the reference's evaluator tokenises as plain text) are matched too.
// Bytes that are not valid UTF-8 (a decode that cut a multi-byte character) become U+FFFD first, as the
// reference's decode(errors="replace") produces them.
std::vector<std::vector<int32_t>> retokenize(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                                             int32_t eos, int64_t vocab_size);

}  // namespace duo
