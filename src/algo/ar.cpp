// AR: next-token prediction with the causal DiT (docs/diffusion.md §7). Input x[:, :-1], targets x[:, 1:],
// the loss mask shifted the same way (BOS is never predicted); the mask id's logit is forced to -1e6.
#include "algo/algorithms.h"

namespace duo {

namespace {

class AR final : public Algorithm {
 public:
  using Algorithm::Algorithm;

  double counted_weight(const MicroBatch& mb) const override {
    double w = 0;
    for (int64_t b = 0; b < mb.B; ++b)
      for (int64_t l = 1; l < mb.L; ++l) w += mb.mask[b * mb.L + l];
    return w;
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, false);
    DUO_CHECK(cfg().causal, "algorithm ar", "AR needs the causal model", "pass --causal (duo-train sets it for --algo ar)");
    const int64_t B = mb.B, L = mb.L - 1;  // predict positions 1 .. L
    std::vector<int32_t> input(B * L);
    HeadInputs tok;
    tok.resize(B * L);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l) {
        input[b * L + l] = mb.ids[b * mb.L + l];
        tok.x[b * L + l] = tok.z[b * L + l] = mb.ids[b * mb.L + l + 1];
        tok.mask[b * L + l] = mb.mask[b * mb.L + l + 1];
      }
    Tensor y = features_of_ids(input.data(), std::vector<double>(B, 0.0), B, L, train, mb.dropout);
    return head(LossKind::AR, y, tok, backward, grad_scale);
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_ar(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<AR>(s, model, ops);
}

}  // namespace duo
