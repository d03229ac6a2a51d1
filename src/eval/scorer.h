// Scorer: a causal language model that scores token sequences — the evaluator of generative perplexity
// (docs/evaluation.md §3). GPT-2 (eval/gpt2.h) is one; an AR checkpoint of ours can be another.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace duo {

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual std::string name() const = 0;
  virtual int64_t vocab_size() const = 0;
  // The longest sequence one call may take (the model's context, e.g. GPT-2's n_positions).
  virtual int64_t context() const = 0;
  // The largest batch one call may take (activations are planned for it).
  virtual int64_t max_batch() const = 0;

  // Next-token negative log-likelihoods of a right-padded batch.
  //   ids      (B, N) row-major token ids, 1 <= N <= context(), B <= max_batch()
  //   lengths  (B): row b has lengths[b] real tokens, then padding (the attention mask is 1 on [0, lengths[b]))
  //   nll      resized to (B, N-1): nll[b, j] = -log p(ids[b, j+1] | ids[b, 0..j]) for j < lengths[b]; 0 for
  //            j >= lengths[b], whose context would contain padding. The target ids[b, j+1] itself may be
  //            padding (j = lengths[b]-1): that prediction sees only real tokens, and the reference scores it
  //            when the padding token is the sequence's first EOS.
  // A causal model needs no explicit mask for this: with padding on the right, a real position never attends
  // to a padded one, so padding cannot change any kept entry.
  virtual void target_nll(std::span<const int32_t> ids, std::span<const int64_t> lengths, int64_t B, int64_t N,
                          std::vector<float>& nll) = 0;
};

}  // namespace duo
