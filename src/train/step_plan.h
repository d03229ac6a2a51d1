// One training step of a configuration, on any backend, without data files: the model state, the DiT and the
// algorithm as duo-train builds them (Trainer), then one optimizer step on synthetic tokens, as Trainer::run
// runs it (zero the gradients, each micro-batch forward and backward, the gradient norm, clipped AdamW, EMA).
// On PlanOps (backend/plan_ops.h) it is the memory plan of duo-train --dry_run and the op sequence that
// build/duo-roofline turns into kernels; the numbers computed are meaningless there, only shapes and sizes count.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "algo/algorithm.h"
#include "model/dit.h"
#include "train/model_state.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace duo {

class TrainingStepPlan {
 public:
  // cfg.model.vocab_size is the model's vocabulary; mask_id the absorbing algorithms' [MASK] (-1: V - 1); hooks as
  // the Trainer takes them (duo-distill's algorithm and its extra validation algorithm).
  // ranks: the state of one rank of that many (with cfg.zero1: its shard of the moments and the EMA).
  TrainingStepPlan(const TrainConfig& cfg, Ops& ops, int32_t mask_id = -1, const TrainerHooks& hooks = {},
                   int ranks = 1);
  // One optimizer step at optimizer step `step` (DUO's curriculum is active while step <= its end).
  void run_step(int64_t step);
  // Device bytes held: parameters, gradients, Adam moments and EMA; the DiT's activations; the algorithm's own.
  size_t state_bytes() const { return state_->bytes(); }
  size_t activation_bytes() const { return model_->activation_bytes(); }
  std::string activation_plan() const { return model_->memory_plan(); }
  std::string algorithm_report() const { return algo_->memory_report(); }

 private:
  TrainConfig cfg_;
  Ops& ops_;
  std::unique_ptr<ModelState> state_;
  std::unique_ptr<DiT> model_;
  std::unique_ptr<Algorithm> algo_;
  std::vector<std::unique_ptr<Algorithm>> extra_;  // the extra validation algorithms (their buffers count)
};

// The device memory duo-train would hold for cfg on the CUDA backend, planned on PlanOps through one training step
// (nothing allocated, no GPU or data needed): the report of duo-train --dry_run, lines of text ending in the total.
struct MemoryPlan {
  size_t state = 0, activations = 0, other = 0, scratch = 0;  // other: the algorithm's and the loop's buffers
  size_t weight_copies = 0;  // the bf16 working copy of the weights (backend/weight_copies.h)
  size_t total() const { return state + weight_copies + activations + other + scratch; }
  std::string report;
};
// ranks > 1 with cfg.zero1: one rank's share of ZeRO-1's sharded state, plus the full-size buffer that the gathered
// EMA (or a moment, while saving) takes at validation and checkpoint time.
MemoryPlan plan_training_memory(const TrainConfig& cfg, int32_t mask_id = -1, const TrainerHooks& hooks = {},
                                int ranks = 1);

}  // namespace duo
