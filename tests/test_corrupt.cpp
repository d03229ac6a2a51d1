// Forward processes (part of the `schedule` suite: the noise side of training): empirical marginals
// q(z_t | x), uniform replacement ids, determinism and splitting of the Philox stream, input checks.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "algo/corrupt.h"
#include "core/error.h"

using namespace duo;

namespace {

struct Batch {
  int64_t B, L;
  std::vector<int32_t> x, z;
  Batch(int64_t b, int64_t l, int V) : B(b), L(l), x(b * l), z(b * l, -1) {
    for (int64_t k = 0; k < b * l; ++k) x[k] = (int32_t)((k * 7 + k / 3) % V);
  }
  Tensor xt() { return Tensor(x.data(), DType::I32, {B, L}); }
  Tensor zt() { return Tensor(z.data(), DType::I32, {B, L}); }
};

// |observed − n p| within 5 binomial standard deviations.
bool binomial_ok(int64_t observed, int64_t n, double p) {
  return std::fabs(observed - n * p) <= 5.0 * std::sqrt(n * p * (1 - p)) + 1e-9;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(uniform_noise_marginals) {
  const int V = 13;
  const std::vector<double> alpha = {0.0, 0.1, 0.5, 0.9, 1.0};
  Batch b(5, 40000, V);
  corrupt_uniform(b.xt(), b.zt(), alpha, V, Philox{9, 1});
  for (int64_t s = 0; s < b.B; ++s) {
    int64_t kept = 0;
    std::vector<int64_t> hist(V, 0);
    for (int64_t l = 0; l < b.L; ++l) {
      int32_t z = b.z[s * b.L + l];
      BOOST_REQUIRE(z >= 0);
      BOOST_REQUIRE(z < V);
      kept += z == b.x[s * b.L + l];
      ++hist[(z - b.x[s * b.L + l] + V) % V];  // offset from x: uniform over V when replaced
    }
    const double p_same = alpha[s] + (1 - alpha[s]) / V;  // q(z_t = x | x)
    BOOST_TEST(binomial_ok(kept, b.L, p_same), "alpha=" << alpha[s] << " kept " << kept << " of " << b.L);
    for (int v = 1; v < V; ++v)  // each other id has probability (1 − α)/V
      BOOST_TEST(binomial_ok(hist[v], b.L, (1 - alpha[s]) / V), "alpha=" << alpha[s] << " offset " << v << ": " << hist[v]);
  }
  // α = 1 keeps everything.
  for (int64_t l = 0; l < b.L; ++l) BOOST_REQUIRE(b.z[4 * b.L + l] == b.x[4 * b.L + l]);
}

BOOST_AUTO_TEST_CASE(absorbing_noise_marginals) {
  const int V = 11, mask = 10;
  const std::vector<double> alpha = {0.0, 0.3, 0.75, 1.0};
  Batch b(4, 30000, V - 1);  // clean data never contains the mask id
  corrupt_absorbing(b.xt(), b.zt(), alpha, V, mask, Philox{3, 2});
  for (int64_t s = 0; s < b.B; ++s) {
    int64_t masked = 0;
    for (int64_t l = 0; l < b.L; ++l) {
      int32_t z = b.z[s * b.L + l];
      if (z == mask) ++masked;
      else BOOST_REQUIRE(z == b.x[s * b.L + l]);
    }
    BOOST_TEST(binomial_ok(masked, b.L, 1 - alpha[s]), "alpha=" << alpha[s] << " masked " << masked);
  }
}

BOOST_AUTO_TEST_CASE(noise_is_a_function_of_seed_and_token_index) {
  const int V = 50258;
  const std::vector<double> alpha = {0.4, 0.6, 0.2};
  Batch whole(3, 257, V), again(3, 257, V), other(3, 257, V);
  corrupt_uniform(whole.xt(), whole.zt(), alpha, V, Philox{5, 17});
  corrupt_uniform(again.xt(), again.zt(), alpha, V, Philox{5, 17});
  corrupt_uniform(other.xt(), other.zt(), alpha, V, Philox{5, 18});
  BOOST_TEST(whole.z == again.z);
  BOOST_TEST(whole.z != other.z);
  // Sequence by sequence with the matching token offset gives the same noise (any batch split agrees).
  for (int64_t s = 0; s < 3; ++s) {
    std::vector<int32_t> x(whole.x.begin() + s * 257, whole.x.begin() + (s + 1) * 257), z(257);
    corrupt_uniform(Tensor(x.data(), DType::I32, {1, 257}), Tensor(z.data(), DType::I32, {1, 257}), {alpha[s]}, V,
                    Philox{5, 17}, s * 257);
    BOOST_TEST(std::equal(z.begin(), z.end(), whole.z.begin() + s * 257));
  }
  // In place (z aliases x).
  Batch inplace(3, 257, V);
  corrupt_uniform(inplace.xt(), inplace.xt(), alpha, V, Philox{5, 17});
  BOOST_TEST(inplace.x == whole.z);
}

BOOST_AUTO_TEST_CASE(uniform_id_covers_the_range) {
  BOOST_TEST(uniform_id(0u, 50258) == 0);
  BOOST_TEST(uniform_id(0xffffffffu, 50258) == 50257);
  BOOST_TEST(uniform_id(0x80000000u, 10) == 5);
}

BOOST_AUTO_TEST_CASE(noising_input_errors) {
  Batch b(2, 8, 5);
  BOOST_CHECK_THROW(corrupt_uniform(b.xt(), b.zt(), {0.5}, 5, Philox{}), duo::Error);          // one α per sequence
  BOOST_CHECK_THROW(corrupt_uniform(b.xt(), b.zt(), {0.5, 1.5}, 5, Philox{}), duo::Error);     // α outside [0, 1]
  BOOST_CHECK_THROW(corrupt_uniform(b.xt(), b.zt(), {0.5, 0.5}, 4, Philox{}), duo::Error);     // id 4 ≥ V
  BOOST_CHECK_THROW(corrupt_absorbing(b.xt(), b.zt(), {0.5, 0.5}, 5, 5, Philox{}), duo::Error);  // mask id ≥ V
  std::vector<float> f(16);
  BOOST_CHECK_THROW(corrupt_uniform(Tensor(f.data(), DType::F32, {2, 8}), b.zt(), {0.5, 0.5}, 5, Philox{}), duo::Error);
  bool thrown = false;
  try {
    corrupt_uniform(b.xt(), b.zt(), {0.5, 0.5}, 4, Philox{});
  } catch (const duo::Error& e) {
    thrown = true;  // x = (0, 2, 4, ...): the first bad id sits at (0, 2), and the message says so
    BOOST_TEST(e.problem().find("token id 4 at (0, 2)") != std::string::npos, e.what());
    BOOST_TEST(!e.hint().empty());
  }
  BOOST_TEST(thrown);
}

BOOST_AUTO_TEST_SUITE_END()
