// Parity of the curriculum's relaxed input with the PyTorch reference (tests/fixtures/curriculum.json, written by
// tools/reference/make_curriculum_fixture.py): from the stored ε, the soft-input logits w/τ and z_t must come out
// bit for bit, and the loss chain through softmax(w/τ)·E is checked by curriculum_fixture.h.
#include <boost/test/unit_test.hpp>
#include "math/loss_duo.h"
#include <algorithm>
#include <cmath>
#include <vector>
#include "algo/curriculum.h"
#include "algo/diffusion_transform.h"
#include "curriculum_fixture.h"

using namespace duo;
using duo::testing::CurriculumFixture;

BOOST_AUTO_TEST_SUITE(curriculum)

BOOST_AUTO_TEST_CASE(fixture_relaxed_input_is_bit_exact) {
  const CurriculumFixture f = testing::load_curriculum_fixture();
  const DiffusionTransform T(f.V);
  for (int64_t b = 0; b < f.B; ++b) {
    BOOST_TEST(f.gamma[b] == f.gamma_min + f.t[b] * (f.gamma_max - f.gamma_min), boost::test_tools::tolerance(1e-15));
    double at, st;
    gaussian_scales(f.gamma[b], &at, &st);
    BOOST_TEST((float)at == f.alpha_tilde_f32[b]);
    BOOST_TEST((float)st == f.sigma_tilde_f32[b]);
    // The fixture's α, α' (its own Simpson rule) agree with the engine's T.
    const TransformPoint p = T.at_gamma(f.gamma[b]);
    BOOST_TEST(f.alpha[b] == p.alpha, boost::test_tools::tolerance(1e-10));
    BOOST_TEST(f.dalpha[b] == (f.gamma_max - f.gamma_min) * p.dalpha_dgamma, boost::test_tools::tolerance(1e-9));
  }
  for (const auto& c : f.cases) {
    BOOST_TEST((float)(1.0 / c.tau) == c.inverse_tau_f32);
    std::vector<float> y((size_t)(f.B * f.L * f.V));
    int clean = 0;
    for (int64_t r = 0; r < f.B * f.L; ++r) {
      const int64_t b = r / f.L;
      const int32_t z = simple_latent_row(c.eps.data() + r * f.V, f.V, f.x[r], f.alpha_tilde_f32[b],
                                          f.sigma_tilde_f32[b], c.inverse_tau_f32, y.data() + r * f.V);
      BOOST_TEST(z == c.z[r], "row " << r);
      clean += z == f.x[r];
    }
    BOOST_TEST(y == c.soft_logits, "soft-input logits differ from PyTorch's at τ = " << c.tau);
    BOOST_TEST((clean > 0 && clean < f.B * f.L), "the fixture should hold both z_t = x and z_t ≠ x");
  }
}

// The chain through the soft input, with the NELBO replayed from the fixture (the engine's duo_nelbo_row is on
// another branch). The replay checks what it is called with, so the logits, dh0, dE and dW comparisons are real.
// The lead wires in the real loss by passing a NelboRow that calls duo_nelbo_row<double> instead.
BOOST_AUTO_TEST_CASE(fixture_loss_chain_with_replayed_nelbo) {
  const CurriculumFixture f = testing::load_curriculum_fixture();
  for (const auto& c : f.cases) {
    int64_t row = 0;
    auto replay = [&](const double* logits, int V, int x, int z, double alpha, double dalpha, double* dlogits) {
      const int64_t b = row / f.L;
      BOOST_REQUIRE(V == f.V);
      BOOST_REQUIRE(x == f.x[row]);
      BOOST_REQUIRE(z == c.z[row]);
      BOOST_REQUIRE(alpha == f.alpha[b]);
      BOOST_REQUIRE(dalpha == f.dalpha[b]);
      for (int j = 0; j < V; ++j) {
        BOOST_REQUIRE(std::fabs(logits[j] - c.logits[row * V + j]) <= 1e-12 * (1 + std::fabs(c.logits[row * V + j])));
        dlogits[j] = c.dlogits[row * V + j];
      }
      return c.loss[row++];
    };
    testing::check_curriculum_loss_chain(f, c, c.soft_logits, replay);
    BOOST_TEST(row == f.B * f.L);
  }
}

// The real DUO NELBO (math/loss_duo.h) through the whole chain: softmax(w/τ) · E · Wᵀ → NELBO → backward,
// against the PyTorch reference's loss and gradients (dlogits, dh0, dE, dW).
BOOST_AUTO_TEST_CASE(fixture_loss_chain_with_engine_nelbo) {
  const CurriculumFixture f = testing::load_curriculum_fixture();
  for (const auto& c : f.cases) {
    auto nelbo = [](const double* logits, int V, int x, int z, double alpha, double dalpha, double* dlogits) {
      return duo::duo_nelbo_row<double>(logits, V, x, z, alpha, dalpha, dlogits);
    };
    testing::check_curriculum_loss_chain(f, c, c.soft_logits, nelbo);
  }
}

BOOST_AUTO_TEST_SUITE_END()
