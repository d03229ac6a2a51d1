// Shared by the diffusion algorithms (MDLM, SEDD, D3PM with absorbing noise; DUO base with uniform noise): the
// per-sequence schedule values, the noisy input of one micro-batch, and the loss-head inputs built from them.
#pragma once
#include "algo/algorithms.h"
#include "algo/corrupt.h"

namespace duo {

struct NoisyBatch {
  std::vector<double> alpha, dalpha, sigma;  // (B) α_t, α'_t, and the conditioning σ (0 when not conditioned)
  std::vector<int32_t> z;                    // (B, L) noisy ids
};

// t_b → (α, α', σ = −log α or 0); then z ~ q(z_t | x) with the absorbing (mask) or uniform forward process.
// discrete_T > 0 first maps t to D3PM's discrete grid.
inline NoisyBatch noisy_batch(const MicroBatch& mb, const AlgoSettings& s, int64_t V, bool absorbing,
                              bool time_conditioned, int discrete_T = 0) {
  NoisyBatch nb;
  nb.alpha.resize(mb.B); nb.dalpha.resize(mb.B); nb.sigma.resize(mb.B);
  for (int64_t b = 0; b < mb.B; ++b) {
    const double t = discrete_T > 0 ? discrete_time(mb.t[b], discrete_T) : mb.t[b];
    nb.alpha[b] = s.schedule.alpha(t);
    nb.dalpha[b] = s.schedule.dalpha(t);
    nb.sigma[b] = time_conditioned ? s.schedule.sigma(t) : 0.0;
  }
  nb.z.resize(mb.B * mb.L);
  Tensor z(nb.z.data(), DType::I32, {mb.B, mb.L});
  if (absorbing) corrupt_absorbing(ids_tensor(mb), z, nb.alpha, (int)V, s.mask_id, mb.noise, mb.token_offset);
  else corrupt_uniform(ids_tensor(mb), z, nb.alpha, (int)V, mb.noise, mb.token_offset);
  return nb;
}

// Loss-head inputs: x = the clean ids, z = the noisy ids, α and α' of each token's sequence, the loss mask.
inline HeadInputs head_inputs(const MicroBatch& mb, const NoisyBatch& nb) {
  const int64_t N = mb.B * mb.L;
  HeadInputs h;
  h.x.assign(mb.ids, mb.ids + N);
  h.z = nb.z;
  h.alpha.resize(N);
  h.dalpha.resize(N);
  for (int64_t n = 0; n < N; ++n) {
    h.alpha[n] = nb.alpha[n / mb.L];
    h.dalpha[n] = nb.dalpha[n / mb.L];
  }
  h.mask.assign(mb.mask, mb.mask + N);
  return h;
}

// A diffusion algorithm that corrupts the tokens once, runs the model once on them and applies one loss head:
// MDLM, SEDD and DUO base differ only in the forward process, the conditioning and the loss (their files say
// which); D3PM adds a reconstruction pass on top.
struct NoisingSpec {
  bool absorbing;         // mask noise (else uniform-state noise)
  bool time_conditioned;  // the network sees σ = −log α_t (else σ = 0)
  LossKind loss;
};

class NoisingAlgorithm : public Algorithm {
 public:
  NoisingAlgorithm(const AlgoSettings& s, DiT& model, Ops& ops, NoisingSpec spec) : Algorithm(s, model, ops), spec_(spec) {
    DUO_CHECK(!spec.absorbing || (s.mask_id >= 0 && s.mask_id < model.config().vocab_size), "algorithm " + s.name,
              str("mask id ", s.mask_id, " is outside the vocabulary of ", model.config().vocab_size),
              "the tokenizer defines the [MASK] id (GPT-2 and char: the added [PAD] id)");
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, true);
    NoisyBatch nb = noisy_batch(mb, settings(), cfg().vocab_size, spec_.absorbing, spec_.time_conditioned, settings().T);
    Tensor y = features_of_ids(nb.z.data(), nb.sigma, mb.B, mb.L, train, mb.dropout);
    return head(spec_.loss, y, head_inputs(mb, nb), backward, grad_scale);
  }

 protected:
  NoisingSpec spec_;
};

}  // namespace duo
