// One of our causal (AR) DiT checkpoints as the evaluator of generative perplexity (eval/scorer.h).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>
#include "eval/scorer.h"
#include "model/dit_runner.h"

namespace duo {

// Our AR model as a Gen-PPL evaluator: log-probs of the actual next tokens, with the [MASK] logit at -1e6 as
// in the AR algorithm's output (docs/model.md §9). Padding is on the right and attention is causal, so the
// attention mask is not needed: a padded position never influences an earlier one.
class DiTScorer final : public Scorer {
 public:
  // mask_id: the id whose logit is forced to -1e6 (-1: none).
  DiTScorer(DiT& model, Ops& ops, int32_t mask_id);
  std::string name() const override { return "AR DiT"; }
  int64_t vocab_size() const override { return runner_.config().vocab_size; }
  int64_t context() const override { return runner_.max_length(); }
  // Any batch: target_nll splits it into passes of the model's planned batch.
  int64_t max_batch() const override { return std::numeric_limits<int64_t>::max(); }
  void target_nll(std::span<const int32_t> ids, std::span<const int64_t> lengths, int64_t B, int64_t N,
                  std::vector<float>& nll) override;

 private:
  DiTRunner runner_;
  int32_t mask_id_;
  std::vector<float> logits_;
};

}  // namespace duo
