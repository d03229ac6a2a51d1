// A progress bar on stderr for sampling: one tick per network evaluation (NFE), with the sampling step, the
// elapsed time and an ETA over all sampling batches. The model interfaces are wrapped (decorators), so the
// samplers stay unaware of it.
//
// On a terminal (std::cerr attached to a tty) the line is redrawn in place; into any other stream a line is
// written at most every few seconds, plus one at the start of each batch and one at the end.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include "core/timer.h"
#include "sample/denoiser.h"

namespace duo {

class Progress {
 public:
  // out: null = silent. batches: sampling batches of the run; nfe_per_batch: the expected network evaluations
  // per batch (an upper bound when ancestral_cache skips calls); steps: the sampling steps S shown next to it.
  Progress(std::ostream* out, int64_t batches, int64_t nfe_per_batch, int64_t steps);
  void start_batch(int64_t batch);  // 0-based
  void tick();                      // one network evaluation done
  void finish();                    // ends the line

 private:
  void draw(bool force);
  std::ostream* out_;
  bool tty_;
  int64_t batches_, per_batch_, steps_;
  int64_t batch_ = 0, nfe_batch_ = 0, nfe_total_ = 0;
  Timer timer_;
  double last_draw_ = -1e9;
};

// A Denoiser that ticks a Progress on every network evaluation. It is the inner one in every other respect, the
// in-place update included (the sampler's update on the backend: only ids travel).
class ProgressDenoiser final : public Denoiser {
 public:
  ProgressDenoiser(Denoiser& inner, Progress& progress) : inner_(inner), progress_(progress) {}
  int64_t vocab_size() const override { return inner_.vocab_size(); }
  bool time_conditioned() const override { return inner_.time_conditioned(); }
  void log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) override {
    inner_.log_probs(z, B, L, sigma, out);
    progress_.tick();
  }
  bool updates_in_place() const override { return inner_.updates_in_place(); }
  int64_t evaluate_and_update(int32_t* z, int64_t B, int64_t L, const double* sigma, const DiffusionStepArgs& step,
                              const uint8_t* keep, bool reuse) override {
    const int64_t changed = inner_.evaluate_and_update(z, B, L, sigma, step, keep, reuse);
    if (!reuse) progress_.tick();  // a reused evaluation is no network call
    return changed;
  }

 private:
  Denoiser& inner_;
  Progress& progress_;
};

class ProgressCausalLM final : public CausalLM {
 public:
  ProgressCausalLM(CausalLM& inner, Progress& progress) : inner_(inner), progress_(progress) {}
  int64_t vocab_size() const override { return inner_.vocab_size(); }
  void next_logits(const int32_t* z, int64_t B, int64_t L, int64_t n, float* out) override {
    inner_.next_logits(z, B, L, n, out);
    progress_.tick();
  }

 private:
  CausalLM& inner_;
  Progress& progress_;
};

// "1h02m", "3m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace duo
