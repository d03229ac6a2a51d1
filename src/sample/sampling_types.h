// Types shared by the diffusion and AR samplers.
#pragma once
#include <cstdint>
#include "core/error.h"
#include "math/sampling_step.h"  // SamplePrecision

namespace duo {

// Optional prompt (prefix / infill) conditioning: ids and keep are (B, L); keep[p] != 0 fixes position p to
// ids[p] for the whole run: it is fed to the model at every call and never resampled.
struct Prompt {
  const int32_t* ids = nullptr;
  const uint8_t* keep = nullptr;

  // Position p of the initial z: the prompt's id when p is kept (checked to lie in [0, V)), else unchanged.
  void apply(int64_t p, int64_t V, int32_t* z) const {
    if (!keep || !keep[p]) return;
    DUO_CHECK(ids[p] >= 0 && ids[p] < V, "sampling prompt",
              str("prompt id ", ids[p], " at position ", p, " is not in [0, ", V, ")"),
              "tokenize the prompt with the model's tokenizer");
    z[p] = ids[p];
  }
};

struct SamplerStats {
  int64_t nfe = 0;  // network evaluations
};

}  // namespace duo
