// Generative metrics: unigram entropy of hand sequences, the §8.3 token mask on hand cases, and the pooled
// generative perplexity with batching, chunking and the reference's drop-the-remainder flag.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>
#include "core/error.h"
#include "eval/gen_metrics.h"

using namespace duo;

namespace {

constexpr int32_t E = 50256;  // EOS

std::vector<double> weights(const std::vector<int32_t>& ids, const std::vector<uint8_t>& attn) {
  std::vector<double> w(ids.size());
  gen_ppl_weights(ids.data(), attn.empty() ? nullptr : attn.data(), (int64_t)ids.size(), E, w.data());
  return w;
}

// log p(next = t) = -0.01 (t mod 97) - 0.5: a known, position-independent scorer that records its calls.
class HandScorer : public NextTokenScorer {
 public:
  explicit HandScorer(int64_t ctx) : ctx_(ctx) {}
  int64_t context_size() const override { return ctx_; }
  void next_token_log_probs(const int32_t* ids, const uint8_t*, int64_t B, int64_t N, double* out) override {
    batch_rows.push_back(B);
    chunk_lengths.push_back(N);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j + 1 < N; ++j) out[b * (N - 1) + j] = logp(ids[b * N + j + 1]);
  }
  static double logp(int32_t t) { return -0.01 * (t % 97) - 0.5; }
  std::vector<int64_t> batch_rows, chunk_lengths;

 private:
  int64_t ctx_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(gen_metrics)

BOOST_AUTO_TEST_CASE(unigram_entropy_hand_sequences) {
  const std::vector<int32_t> a = {7, 7, 2, 9};  // p = (1/2, 1/4, 1/4): H = 1.5 ln 2
  BOOST_TEST(std::abs(unigram_entropy(a.data(), 4) - 1.5 * std::log(2.0)) < 1e-15);
  const std::vector<int32_t> same = {3, 3, 3};
  BOOST_TEST(unigram_entropy(same.data(), 3) == 0.0);
  const std::vector<int32_t> two_rows = {7, 7, 2, 9, 1, 2, 3, 4};  // second row: ln 4
  const double want = 0.5 * (1.5 * std::log(2.0) + std::log(4.0));
  BOOST_TEST(std::abs(mean_unigram_entropy(two_rows.data(), 2, 4) - want) < 1e-15);
  BOOST_CHECK_THROW(unigram_entropy(a.data(), 0), duo::Error);
}

BOOST_AUTO_TEST_CASE(gen_ppl_mask_hand_cases) {
  using W = std::vector<double>;
  // Leading EOS (the usual OWT sample): every later EOS and the padding are excluded; text after an EOS counts.
  BOOST_TEST(weights({E, 11, 12, E, 13, E, E, E}, {1, 1, 1, 1, 1, 1, 0, 0}) == W({0, 1, 1, 0, 1, 0, 0, 0}),
             boost::test_tools::per_element());
  // Interior EOS without a leading one: the first EOS counts, the second does not.
  BOOST_TEST(weights({11, 12, E, 13, E, 14}, {}) == W({0, 1, 1, 1, 0, 1}), boost::test_tools::per_element());
  // No EOS, trailing padding (pad = EOS, attention 0): padding never counts.
  BOOST_TEST(weights({11, 12, 13, E, E}, {1, 1, 1, 0, 0}) == W({0, 1, 1, 0, 0}), boost::test_tools::per_element());
  // Without an attention mask the reference's rule applies as is: the first EOS counts.
  BOOST_TEST(weights({11, 12, 13, E, E}, {}) == W({0, 1, 1, 1, 0}), boost::test_tools::per_element());
  // Position 0 is context only, even when it is a real token.
  BOOST_TEST(weights({11, 12}, {}) == W({0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(pooled_gen_ppl_batches_and_chunks) {
  const int64_t n = 7, N = 6;
  std::vector<int32_t> ids;
  std::vector<uint8_t> attn;
  for (int64_t b = 0; b < n; ++b) {
    const std::vector<int32_t> row = {E, (int32_t)(10 + b), (int32_t)(20 + 3 * b), E, (int32_t)(5 * b), E};
    ids.insert(ids.end(), row.begin(), row.end());
    for (int j = 0; j < N; ++j) attn.push_back(b == 6 && j == 5 ? 0 : 1);
  }
  // Expected with one chunk per row: targets j = 1, 2, 4 of every row (j = 3, 5 are later EOS).
  auto expected = [&](int64_t rows) {
    double nll = 0, w = 0;
    for (int64_t b = 0; b < rows; ++b)
      for (int j : {1, 2, 4}) { nll -= HandScorer::logp(ids[(size_t)(b * N + j)]); w += 1; }
    return std::exp(nll / w);
  };
  GenPplOptions opt;
  opt.eos_id = E;
  opt.batch_size = 3;
  HandScorer all(1024);
  const GenPplResult r = generative_perplexity(all, ids.data(), attn.data(), n, N, opt);
  BOOST_TEST(r.samples_scored == 7);
  BOOST_TEST(r.weight_sum == 21.0);
  BOOST_TEST(std::abs(r.gen_ppl - expected(7)) < 1e-12);
  BOOST_TEST(all.batch_rows == std::vector<int64_t>({3, 3, 1}), boost::test_tools::per_element());
  // The reference drops the 7th sample (it does not fill a batch of 3).
  opt.drop_last_partial_batch = true;
  HandScorer dropped(1024);
  const GenPplResult d = generative_perplexity(dropped, ids.data(), attn.data(), n, N, opt);
  BOOST_TEST(d.samples_scored == 6);
  BOOST_TEST(std::abs(d.gen_ppl - expected(6)) < 1e-12);
  BOOST_TEST(dropped.batch_rows == std::vector<int64_t>({3, 3}), boost::test_tools::per_element());
  // Context 4: chunks [0, 4) and [4, 6). The second chunk starts at the non-EOS token of position 4 (context
  // only now) and its EOS at 5 is the chunk's first EOS, so it counts.
  opt.drop_last_partial_batch = false;
  HandScorer chunked(4);
  const GenPplResult c = generative_perplexity(chunked, ids.data(), attn.data(), n, N, opt);
  double nll = 0, w = 0;
  for (int64_t b = 0; b < n; ++b) {
    for (int j : {1, 2}) { nll -= HandScorer::logp(ids[(size_t)(b * N + j)]); w += 1; }
    if (b != 6) { nll -= HandScorer::logp(E); w += 1; }  // row 6's position 5 is padding
  }
  BOOST_TEST(c.weight_sum == w);
  BOOST_TEST(std::abs(c.gen_ppl - std::exp(nll / w)) < 1e-12);
  BOOST_TEST(chunked.chunk_lengths == std::vector<int64_t>({4, 2, 4, 2, 4, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gen_ppl_errors) {
  HandScorer s(1024);
  const std::vector<int32_t> only_eos = {E, E, E};
  GenPplOptions opt;
  BOOST_CHECK_THROW(generative_perplexity(s, only_eos.data(), nullptr, 1, 3, opt), duo::Error);
  opt.batch_size = 0;
  const std::vector<int32_t> ok = {E, 1, 2};
  BOOST_CHECK_THROW(generative_perplexity(s, ok.data(), nullptr, 1, 3, opt), duo::Error);
}

BOOST_AUTO_TEST_SUITE_END()
