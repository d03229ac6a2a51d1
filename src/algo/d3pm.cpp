// D3PM absorb (docs/diffusion.md §10): T = 1000 discrete steps, absorbing noise, time-conditioned, "mean"
// parameterisation (log-softmax over all V). Per token ℓ = −log x̂(x | clean input, σ = 0) + T·L_vb·[z_t = m]:
// the reconstruction term is a second forward pass on the clean sequence, so a micro-batch runs the model
// twice (noisy pass: forward, head, backward; then clean pass: forward, head, backward; gradients add up).
#include "algo/noising.h"
#include "core/rng_streams.h"

namespace duo {

namespace {

class D3PM final : public NoisingAlgorithm {
 public:
  D3PM(const AlgoSettings& s, DiT& model, Ops& ops)
      : NoisingAlgorithm(s, model, ops, NoisingSpec{/*absorbing=*/true, /*time_conditioned=*/true, LossKind::D3PM}) {
    DUO_CHECK(s.T >= 2, "--algo.T", str("D3PM needs T >= 2 discrete steps, got ", s.T), "the reference uses 1000");
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    LossSums vb = NoisingAlgorithm::run(mb, train, backward, grad_scale);  // T·L_vb on the noisy input
    // Reconstruction term on the clean input at σ = 0 (its own dropout sub-stream).
    HeadInputs clean;
    clean.resize(mb.B * mb.L);
    clean.x.assign(mb.ids, mb.ids + mb.B * mb.L);
    clean.z = clean.x;
    clean.mask.assign(mb.mask, mb.mask + mb.B * mb.L);
    Philox clean_dropout{mb.dropout.seed, stream_id(mb.dropout.subsequence, streams::kD3pmCleanDropout)};
    Tensor y = features_of_ids(mb.ids, std::vector<double>(mb.B, 0.0), mb.B, mb.L, train, clean_dropout);
    LossSums rec = head(LossKind::CE, y, clean, backward, grad_scale);
    for (size_t b = 0; b < vb.seq_loss.size(); ++b) vb.seq_loss[b] += rec.seq_loss[b];
    vb.loss += rec.loss;
    return vb;
  }
  int backward_passes() const override { return 2; }
};

}  // namespace

std::unique_ptr<Algorithm> make_d3pm(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<D3PM>(s, model, ops);
}

}  // namespace duo
