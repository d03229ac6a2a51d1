#include "train/optimizer.h"
#include <algorithm>
#include <cmath>
#include "core/error.h"

namespace duo {

void OptimConfig::validate() const {
  auto bad = [](const std::string& opt, const std::string& what) {
    fail("--" + opt, what, "see duo-train --help for the valid range");
  };
  if (!(lr >= 0)) bad("optim.lr", "must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) bad("optim.beta1", "must be in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) bad("optim.beta2", "must be in [0, 1)");
  if (!(eps > 0)) bad("optim.eps", "must be > 0");
  if (!(weight_decay >= 0)) bad("optim.weight_decay", "must be >= 0");
  if (warmup_steps < 0) bad("lr_scheduler.num_warmup_steps", "must be >= 0");
  if (schedule != "constant_warmup" && schedule != "cosine_decay_warmup")
    bad("lr_scheduler", "unknown schedule '" + schedule + "' (constant_warmup, cosine_decay_warmup)");
  if (schedule == "cosine_decay_warmup" && max_steps < 1) bad("trainer.max_steps", "must be >= 1 for cosine");
  if (!(ema >= 0 && ema < 1)) bad("training.ema", "must be in [0, 1) (0 disables)");
  if (!(grad_clip >= 0)) bad("trainer.gradient_clip_val", "must be >= 0 (0 disables clipping)");
}

double learning_rate(const OptimConfig& c, int64_t k) {
  if (c.schedule == "cosine_decay_warmup") {
    const int64_t warm = c.max_steps / 10;
    if (k < warm) return c.cosine_init_lr + (double)k * (c.lr - c.cosine_init_lr) / (double)warm;
    const double kk = (double)std::min(k, c.max_steps);
    return c.cosine_min_lr + 0.5 * (c.lr - c.cosine_min_lr) * (1.0 + std::cos(M_PI * kk / (double)c.max_steps));
  }
  if (k < c.warmup_steps) return c.lr * (double)k / (double)std::max<int64_t>(1, c.warmup_steps);
  return c.lr;
}

double clip_coefficient(double grad_norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  const double coef = max_norm / (grad_norm + 1e-6);
  return coef < 1.0 ? coef : 1.0;
}

double ema_decay(double decay, int64_t n) { return std::min(decay, (1.0 + (double)n) / (10.0 + (double)n)); }

}  // namespace duo
