// Inference forward passes of one DiT from host ids (the samplers' and the AR Gen-PPL scorer's common part):
// uploads ids and sigma, runs the model without dropout, copies logits back to the host.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include "core/arena.h"
#include "model/dit.h"

namespace duo {

// Inference forward passes of one DiT: uploads ids and sigma, runs the model, copies results to the host.
class DiTRunner {
 public:
  DiTRunner(DiT& model, Ops& ops);
  DiTRunner(const DiTRunner&) = delete;
  DiTRunner& operator=(const DiTRunner&) = delete;

  const ModelConfig& config() const { return model_.config(); }
  int64_t max_batch() const { return model_.options().max_batch; }
  int64_t max_length() const { return model_.options().max_length; }
  // logits (B, L, V) on the device, valid until the next call. B <= max_batch(), L <= max_length(); sigma (B)
  // is the time input (ignored by the causal model; null = zeros). From the second forward of the same shapes on, the
  // network's ops are recorded once and replayed (Ops::record: a CUDA graph), uploads before them.
  Tensor forward(const int32_t* ids, int64_t B, int64_t L, const double* sigma);
  // The (B, L) ids of the last forward, where it uploaded them (on the backend): a sampler's step may update them in
  // place (Ops::diffusion_step) before they are copied back.
  Tensor ids(int64_t B, int64_t L) const { return Tensor(ws_.at(ids_), DType::I32, {B, L}, ops_.device()); }
  // All of logits copied to the host as float.
  void to_host(const Tensor& logits, float* out);
  // Row r of the (B * L, V) rows of logits copied to the host as float.
  void row_to_host(const Tensor& logits, int64_t r, float* out);

 private:
  DiT& model_;
  Ops& ops_;
  // The model's weights do not change while it samples or scores: the backend may keep converted copies.
  std::optional<FrozenWeights> frozen_;
  const void* frozen_params_ = nullptr;
  Arena ws_;
  size_t ids_, sigma_;
  // The last forward's shapes, and the recorded forward of those shapes (with its output) when there is one.
  int64_t last_B_ = 0, last_L_ = 0;
  std::unique_ptr<Ops::Recording> recording_;
  Tensor recorded_logits_;
  std::vector<double> staging_;  // float64 models: device values before the cast to float
};

// Calls f(b0, nb) for the chunks [b0, b0 + nb) of a batch of B rows that fit a model planned for max_batch.
template <class F>
void for_each_chunk(int64_t B, int64_t max_batch, F&& f) {
  for (int64_t b0 = 0; b0 < B; b0 += max_batch) f(b0, std::min(max_batch, B - b0));
}

}  // namespace duo
