// D3PM absorb (duo_algorithms.md §7.4): T = 1000 discrete steps, absorbing noise, time-conditioned, "mean"
// parameterisation (log-softmax over all V). Per token ℓ = −log x̂(x | clean input, σ = 0) + T·L_vb·[z_t = m]:
// the reconstruction term is a second forward pass on the clean sequence, so a micro-batch runs the model
// twice (noisy pass: forward, head, backward; then clean pass: forward, head, backward; gradients add up).
#include "algo/noising.h"

namespace duo {

namespace {

class D3PM final : public Algorithm {
 public:
  D3PM(const AlgoSettings& s, DiT& model, Ops& ops) : Algorithm(s, model, ops) {
    DUO_CHECK(s.mask_id >= 0 && s.mask_id < model.config().vocab_size, "algorithm d3pm",
              str("mask id ", s.mask_id, " is outside the vocabulary"), "the tokenizer defines the [MASK] id");
    DUO_CHECK(s.T >= 2, "--algo.T", str("D3PM needs T >= 2 discrete steps, got ", s.T), "the reference uses 1000");
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, true);
    const AlgoSettings& s = settings();
    NoisyBatch nb = noisy_batch(mb, s, cfg().vocab_size, /*absorbing=*/true, /*time_conditioned=*/true, s.T);
    HeadInputs tok = head_inputs(mb, nb);
    // Variational term on the noisy input.
    Tensor logits = forward_ids(nb.z.data(), nb.sigma, mb.B, mb.L, train, mb.dropout);
    LossSums vb = head(LossKind::D3PM, logits, tok, backward, grad_scale);
    // Reconstruction term on the clean input at σ = 0 (its own dropout sub-stream).
    Philox clean_dropout{mb.dropout.seed, stream_id(mb.dropout.subsequence, 0xc1ea9)};
    logits = forward_ids(mb.ids, std::vector<double>(mb.B, 0.0), mb.B, mb.L, train, clean_dropout);
    LossSums rec = head(LossKind::CE, logits, tok, backward, grad_scale);
    return {vb.loss + rec.loss, vb.weight};
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_d3pm(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<D3PM>(s, model, ops);
}

}  // namespace duo
