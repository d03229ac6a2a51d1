// Generative metrics of samples (spec §8.3, §8.4; duo_system.md §6.4): unigram entropy, and generative
// perplexity under an evaluator language model (GPT-2 Large in the paper) behind a scorer interface.
//
// Gen PPL pipeline: the samples are decoded with the model's tokenizer and re-tokenised with the evaluator's
// (outside this module); here: batches of evaluator ids (n, N) + attention mask -> chunks of the evaluator's
// context -> per-target NLLs -> token weights -> exp(sum nll w / sum w), pooled over all samples.
#pragma once
#include <cstdint>

namespace duo {

// Unigram entropy in nats of one id sequence: -sum_v (c_v / L) ln(c_v / L) over the id counts c_v.
double unigram_entropy(const int32_t* ids, int64_t L);
// The reported entropy: the mean of unigram_entropy over the B sequences of ids (B, L).
double mean_unigram_entropy(const int32_t* ids, int64_t B, int64_t L);

// The evaluator LM of generative perplexity (a causal LM; fp32 in the reference).
class NextTokenScorer {
 public:
  virtual ~NextTokenScorer() = default;
  // The evaluator's context length: longer rows are scored in independent chunks of this size.
  virtual int64_t context_size() const = 0;
  // ids, attn: (B, N) token ids and attention mask (1 = real token, 0 = padding). out: (B, N - 1) with
  // out[b, j] = log p(ids[b, j + 1] | ids[b, 0..j]) (the log-prob of the actual next token).
  virtual void next_token_log_probs(const int32_t* ids, const uint8_t* attn, int64_t B, int64_t N, double* out) = 0;
};

// The token weights of §8.3 for one row (one chunk) of N ids: w[j] for the target at position j >= 1, and
// w[0] = 0 (position 0 is context only). A target counts (w = 1) if it is not EOS, or if it is the first EOS
// of the row (EOS count over positions 0..j equal to 1). So with a leading EOS every later EOS is excluded,
// and text after an EOS is counted (as the reference does; its comment about truncation is wrong).
// Padding: a position with attn = 0 never counts. The reference has no such guard -- it relies on pad = EOS --
// so it differs only for a row with no EOS before its padding, where the reference counts the first pad.
// attn may be null (all ones).
void gen_ppl_weights(const int32_t* ids, const uint8_t* attn, int64_t N, int32_t eos_id, double* w);

struct GenPplOptions {
  int32_t eos_id = 50256;  // GPT-2's <|endoftext|>
  int64_t batch_size = 8;  // rows per scorer call (eval.perplexity_batch_size)
  // false (default): every sample is scored, the last batch may be partial. true: the reference's behaviour,
  // n / batch_size full batches of min(batch_size, n) rows, the remainder of the samples is dropped.
  bool drop_last_partial_batch = false;
};

struct GenPplResult {
  double gen_ppl = 0;         // exp(nll_sum / weight_sum)
  double nll_sum = 0;         // sum over counted targets of -log p
  double weight_sum = 0;      // number of counted targets
  int64_t samples_scored = 0;
};

// Generative perplexity of n rows of evaluator ids (n, N) with attention mask attn (n, N; may be null).
GenPplResult generative_perplexity(NextTokenScorer& scorer, const int32_t* ids, const uint8_t* attn, int64_t n,
                                   int64_t N, const GenPplOptions& opt);

}  // namespace duo
