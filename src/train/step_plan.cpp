#include "train/step_plan.h"

#include <cmath>
#include <vector>

#include "backend/plan_ops.h"
#include "backend/roofline.h"
#include "core/rng_streams.h"
#include "train/trainer.h"

namespace duo {

TrainingStepPlan::TrainingStepPlan(const TrainConfig& cfg, Ops& ops, int32_t mask_id, const TrainerHooks& hooks,
                                   int ranks)
    : cfg_(cfg), ops_(ops) {
  cfg_.model.validate("model options");
  DataVocab vocab;
  vocab.vocab_size = cfg_.model.vocab_size;
  vocab.mask_id = mask_id >= 0 ? mask_id : int32_t(cfg_.model.vocab_size - 1);
  const bool zero1 = cfg_.zero1 && ranks > 1;
  state_ = std::make_unique<ModelState>(cfg_.model, ops_, true, DType::F32,
                                        zero1 ? zero1_shard(cfg_.model, 0, ranks) : RankRange{});
  model_ = std::make_unique<DiT>(cfg_.model, ops_, training_dit_options(cfg_, hooks.full_logits));
  model_->bind(state_->params(), state_->grads());
  algo_ = hooks.algorithm ? hooks.algorithm(*model_, *state_, vocab, single_process())
                          : make_algorithm(algo_settings(cfg_, vocab), *model_, ops_);
  for (const std::string& name : hooks.extra_validation) {
    AlgoSettings s = algo_settings(cfg_, vocab);
    s.name = name;
    extra_.push_back(make_algorithm(s, *model_, ops_));
  }
}

void TrainingStepPlan::run_step(int64_t step) {
  const int64_t B = cfg_.batch_size, L = cfg_.model.length, accum = cfg_.global_batch_size / B;
  std::vector<int32_t> ids(size_t(B * L));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % size_t(cfg_.model.vocab_size));
  const std::vector<float> mask(ids.size(), 1.0f);
  TimeSampler sampler;
  state_->step = step;
  state_->zero_grads();
  // As the trainer holds them: the weights frozen over the forwards and backwards (their bf16 working copies kept).
  ops_.begin_frozen_weights(state_->params(), model_->param_bytes());
  for (int64_t micro = 0; micro < accum; ++micro) {
    MicroBatch mb;
    mb.ids = ids.data();
    mb.mask = mask.data();
    mb.B = B;
    mb.L = L;
    mb.t = sampler.sample(Philox{cfg_.seed, stream_id(step, streams::kTrainTimes)}, cfg_.global_batch_size,
                          micro * B, B);
    mb.noise = Philox{cfg_.seed, stream_id(step, micro, streams::kTrainNoise)};
    mb.dropout = Philox{cfg_.seed, stream_id(step, micro, streams::kTrainDropout)};
    mb.step = step;
    const double w = algo_->counted_weight(mb);
    algo_->run(mb, /*train=*/true, /*backward=*/true, w > 0 ? 1.0 / (w * double(accum)) : 0.0);
  }
  ops_.end_frozen_weights(state_->params());
  state_->optimizer_step(cfg_.optim, state_->grad_norm(single_process()));
}

MemoryPlan plan_training_memory(const TrainConfig& cfg, int32_t mask_id, const TrainerHooks& hooks, int ranks) {
  PlanOps ops;
  KernelLog log;
  MemoryPlan p;
  {
    TrainingStepPlan plan(cfg, ops, mask_id, hooks, ranks);
    ops.set_observer(&log);
    plan.run_step(cfg.curriculum.start);  // DUO: a curriculum step, the input that needs the most memory
    ops.set_observer(nullptr);
    p.state = plan.state_bytes();
    const bool zero1 = cfg.zero1 && ranks > 1;
    // ZeRO-1's gathered EMA while validating (and each gathered group while saving): one full fp32 copy.
    const size_t gathered = zero1 ? (size_t)ParamTable(cfg.model).total() * sizeof(float) : 0;
    p.activations = plan.activation_bytes();
    p.weight_copies = ops.weight_copy_bytes();
    p.other = ops.peak_bytes() - p.state - p.weight_copies - p.activations + gathered;
    p.scratch = log.max_workspace();
    const ModelConfig& m = cfg.model;
    p.report = str("planned device memory of ", hooks.program, " (CUDA backend; nothing allocated): ", cfg.algo,
                   cfg.algo == "duo" ? " (" + cfg.curriculum.mode + " curriculum)" : std::string(), ", ",
                   m.describe(), ", batch ", cfg.batch_size, " x ", m.length, " (evaluation batch ",
                   cfg.eval_batch_size, ")\n");
    auto line = [&](const char* what, size_t b) { p.report += str("  ", what, ": ", human_bytes(double(b)), "\n"); };
    if (zero1)
      p.report += str("  rank 0 of ", ranks, " with ZeRO-1: the Adam moments and the EMA of ",
                      with_commas(ParamTable(cfg.model).total() / ranks), " parameters; the gathered EMA at validation ",
                      human_bytes(double(gathered)), " (in the algorithm's line)\n");
    line("parameters, gradients, Adam moments, EMA (fp32)", p.state);
    line("the weights' bf16 working copy (written by AdamW, read by the GEMMs)", p.weight_copies);
    line("DiT activations", p.activations);
    p.report += plan.activation_plan();
    line(hooks.algorithm ? "the algorithm's buffers (the teacher's weights and input, the KL head's gradient)"
                         : "the algorithm's buffers (its noisy input and per-token loss inputs)",
         p.other);
    p.report += plan.algorithm_report();
    line("CudaOps scratch (the largest op's; cuBLASLt's 32 MiB included)", p.scratch);
  }
  p.report += str("  total: ", human_bytes(double(p.total())), " (", p.total(), " bytes) + the CUDA context\n");
  return p;
}

}  // namespace duo
