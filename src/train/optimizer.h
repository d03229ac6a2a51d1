// Optimisation settings and the host-side rules around the AdamW op (docs/training.md §2–§5):
// learning-rate schedules, global-norm clipping and the EMA decay warm-up.
#pragma once
#include <cstdint>
#include <string>

namespace duo {

struct OptimConfig {
  double lr = 3e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  std::string schedule = "constant_warmup";  // or "cosine_decay_warmup"
  int64_t warmup_steps = 2500;               // constant_warmup: lr·k/warmup for update k < warmup
  int64_t max_steps = 1000000;               // cosine: period; its warm-up is 10% of max_steps
  double cosine_init_lr = 1e-6, cosine_min_lr = 1e-6;
  double grad_clip = 1.0;                    // global L2 norm; <= 0 disables
  double ema = 0.9999;                       // <= 0 disables the EMA
  void validate() const;
};

// Learning rate used by optimizer update number k (0-based). Reproduces the reference's LambdaLR stepping:
// constant_warmup (HF get_constant_schedule_with_warmup) gives 0 at k = 0, base·k/warmup, then base.
// cosine_decay_warmup (timm CosineLRScheduler): linear warm-up from init_lr over 10% of max_steps, then
// min_lr + ½(base − min_lr)(1 + cos(π k / max_steps)).
double learning_rate(const OptimConfig& c, int64_t k);

// Multiplier PyTorch's clip_grad_norm_ applies: max_norm / (norm + 1e-6) when that is < 1, else 1.
double clip_coefficient(double grad_norm, double max_norm);

// EMA decay of update number n (1-based, counted after incrementing): min(decay, (1 + n) / (10 + n)).
double ema_decay(double decay, int64_t n);

}  // namespace duo
