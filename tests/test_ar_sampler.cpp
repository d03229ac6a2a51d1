// The AR sampler over a Markov-chain double: the joint distribution of the first two tokens (chi-square), the
// mask id never sampled, top-p, prompts and determinism.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>
#include "core/error.h"
#include "sample/ar_sampler.h"
#include "sampling_doubles.h"

using namespace duo;
using duo::testing::chi_square_p;

namespace {

// Next-token logits depend on the previous token only: logits[prev][v]. The mask id gets a large logit, so a
// sampler that forgot to suppress it would draw it most of the time.
class MarkovLM : public CausalLM {
 public:
  MarkovLM(int64_t V, int32_t mask) : V_(V), mask_(mask) {
    for (int64_t a = 0; a < V; ++a)
      for (int64_t v = 0; v < V; ++v) logits_.push_back(v == mask ? 5.0f : (float)(0.3 * ((a * 7 + v * 3) % 5)) - 1.0f);
  }
  int64_t vocab_size() const override { return V_; }
  void next_logits(const int32_t* z, int64_t B, int64_t L, int64_t n, float* out) override {
    ++calls;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < n; ++k) BOOST_REQUIRE(z[b * L + k] >= 0 && z[b * L + k] < V_);
      const int32_t prev = z[b * L + n - 1];
      for (int64_t v = 0; v < V_; ++v) out[b * V_ + v] = logits_[(size_t)(prev * V_ + v)] + 3.0f;  // any shift
    }
  }
  // P(v | prev) without the mask id.
  double prob(int32_t prev, int32_t v) const {
    if (v == mask_) return 0;
    double s = 0;
    for (int64_t u = 0; u < V_; ++u)
      if (u != mask_) s += std::exp((double)logits_[(size_t)(prev * V_ + u)]);
    return std::exp((double)logits_[(size_t)(prev * V_ + v)]) / s;
  }
  int64_t calls = 0;

 private:
  int64_t V_;
  int32_t mask_;
  std::vector<float> logits_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(sampling)

BOOST_AUTO_TEST_CASE(ar_joint_distribution_chi_square) {
  const int64_t V = 4, B = 20000, L = 3;
  const int32_t bos = 0, mask = 3;
  MarkovLM net(V, mask);
  ArSamplerConfig cfg;
  cfg.bos_id = bos;
  cfg.mask_id = mask;
  cfg.seed = 17;
  std::vector<int32_t> z((size_t)(B * L));
  const SamplerStats st = sample_ar(net, cfg, B, L, {}, z.data());
  BOOST_TEST(st.nfe == L - 1);
  std::vector<int64_t> counts((size_t)(V * V), 0);
  for (int64_t b = 0; b < B; ++b) {
    BOOST_REQUIRE(z[(size_t)(b * L)] == bos);
    ++counts[(size_t)(z[(size_t)(b * L + 1)] * V + z[(size_t)(b * L + 2)])];
  }
  std::vector<double> exact((size_t)(V * V)), independent((size_t)(V * V));
  for (int32_t a = 0; a < V; ++a)
    for (int32_t c = 0; c < V; ++c) {
      exact[(size_t)(a * V + c)] = net.prob(bos, a) * net.prob(a, c);
      independent[(size_t)(a * V + c)] = net.prob(bos, a) * net.prob(bos, c);  // ignores the prefix: wrong
    }
  BOOST_TEST(chi_square_p(counts, exact) > 1e-4);  // mask cells are 0 there: any mask draw fails this
  BOOST_TEST(chi_square_p(counts, independent) < 1e-4);
}

BOOST_AUTO_TEST_CASE(ar_top_p_prompt_and_determinism) {
  const int64_t V = 6, B = 5, L = 9;
  MarkovLM net(V, 5);
  ArSamplerConfig cfg;
  cfg.bos_id = 1;
  cfg.mask_id = 5;
  cfg.seed = 3;
  // A tiny top-p keeps only the most likely token: the chain becomes greedy.
  cfg.p_nucleus = 1e-6;
  std::vector<int32_t> z((size_t)(B * L));
  sample_ar(net, cfg, B, L, {}, z.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 1; n < L; ++n) {
      const int32_t prev = z[(size_t)(b * L + n - 1)];
      int32_t best = 0;
      for (int32_t v = 1; v < V; ++v)
        if (net.prob(prev, v) > net.prob(prev, best)) best = v;
      BOOST_TEST(z[(size_t)(b * L + n)] == best);
    }
  // Prompt: the first three positions of every row, plus one later position of row 2.
  cfg.p_nucleus = 1.0;
  std::vector<int32_t> ids((size_t)(B * L), 0);
  std::vector<uint8_t> keep((size_t)(B * L), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < 3; ++n) {
      keep[(size_t)(b * L + n)] = 1;
      ids[(size_t)(b * L + n)] = (int32_t)((b + n) % 5);
    }
  keep[(size_t)(2 * L + 6)] = 1; ids[(size_t)(2 * L + 6)] = 4;
  MarkovLM counted(V, 5);
  std::vector<int32_t> a((size_t)(B * L)), b2((size_t)(B * L)), c((size_t)(B * L));
  const SamplerStats st = sample_ar(counted, cfg, B, L, {ids.data(), keep.data()}, a.data());
  BOOST_TEST(st.nfe == L - 3);  // positions 1, 2 are kept in every row
  BOOST_TEST(counted.calls == st.nfe);
  for (size_t p = 0; p < a.size(); ++p) {
    if (keep[p]) BOOST_TEST(a[p] == ids[p]);
    BOOST_TEST(a[p] != 5);
  }
  sample_ar(net, cfg, B, L, {ids.data(), keep.data()}, b2.data());
  BOOST_TEST(a == b2);
  cfg.seed = 4;
  sample_ar(net, cfg, B, L, {ids.data(), keep.data()}, c.data());
  BOOST_TEST(a != c);
  cfg.bos_id = 9;
  BOOST_CHECK_THROW(sample_ar(net, cfg, B, L, {}, c.data()), duo::Error);
}

BOOST_AUTO_TEST_SUITE_END()
