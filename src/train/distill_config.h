// What duo-distill reads besides duo-train's options: the algo.* keys of the reference's
// configs/algo/distillation.yaml (docs/distillation.md), and its distillation defaults for the shared ones.
#pragma once
#include "algo/distill.h"
#include "io/cli.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace duo {

// The reference's scripts/distil_owt.sh: lr 6e-5, warm-up 500, 50k steps, EMA 0.999, global batch 128,
// algo.T = 512, validation every 1000 steps on 8 batches; one checkpoint per round (update_teacher_every).
TrainDefaults distill_train_defaults();

// --algo.update_teacher_every, --algo.teacher_ema, --algo.linear_growth_dt/min/max, --algo.loss_type,
// --algo.gamma_min/max, --algo.integral_cache_path, --algo.nearest_lookup, --algo.teacher_dropout.
// (--algo.T and every duo-train option come from add_train_options.)
void add_distill_options(po::options_description& desc);

// The distillation settings of a parsed command line (T and max_steps from cfg). Validated.
DistillSettings distill_settings_from(const po::variables_map& vm, const TrainConfig& cfg);

// The Trainer hooks of a distillation run: the training algorithm is a Distillation on the run's weights
// (the integral table computed for the model's V when d.integral_path is empty), validated by its KL (val/nll, as
// the reference) and by the DUO NELBO of the same weights (val/duo_base/*). cfg.algo must be duo_base: that is
// what the student is, and what its checkpoints say to duo-eval and the samplers.
TrainerHooks distill_hooks(const TrainConfig& cfg, const DistillSettings& d);

}  // namespace duo
