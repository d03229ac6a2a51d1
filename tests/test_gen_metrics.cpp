// Sample entropy on hand sequences (the generative-perplexity rules are tested in test_gpt2_scorer.cpp).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>
#include "core/error.h"
#include "eval/gen_metrics.h"

using namespace duo;

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

BOOST_AUTO_TEST_SUITE_END()
