// The PyTorch curriculum fixture (tests/fixtures/curriculum.json, tools/reference/README_curriculum.md) and the
// check of the loss chain through the soft input, for any implementation of the per-token DUO NELBO.
//
// The chain, in float64 from the fixture's soft-input logits y (which the curriculum code reproduces exactly):
//   P = softmax(y),  h0 = P·E,  logits = h0·Wᵀ,  ℓ_r = nelbo(logits_r, x_r, z_r, α_b, α'_b)  (summed over rows r)
//   dlogits from nelbo,  dh0 = dlogits·W,  dW = dlogitsᵀ·h0,  dE = Pᵀ·dh0.
// To check the engine's NELBO, call check_curriculum_loss_chain(c, f) with f wrapping
// duo_nelbo_row<double>(logits, V, x, z, alpha, dalpha, dlogits) of src/math/loss_duo.h.
#pragma once
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>
#include "core/error.h"

namespace duo::testing {

struct CurriculumFixtureCase {
  double tau = 0;
  float inverse_tau_f32 = 0;
  std::vector<float> eps, soft_logits;  // (B·L, V)
  std::vector<int32_t> z;               // (B·L)
  std::vector<double> soft_input, logits, loss, dlogits, dh0, dE, dW;
};

struct CurriculumFixture {
  int64_t B = 0, L = 0, V = 0, D = 0;
  double gamma_min = 0, gamma_max = 0;
  std::vector<double> t, gamma, alpha, dalpha;  // per sequence
  std::vector<float> alpha_tilde_f32, sigma_tilde_f32;
  std::vector<int32_t> x;                       // (B·L)
  std::vector<double> E, W;                     // (V, D) each
  std::vector<CurriculumFixtureCase> cases;
};

inline CurriculumFixture load_curriculum_fixture(const std::string& path = "tests/fixtures/curriculum.json") {
  std::ifstream in(path);
  DUO_CHECK(in.good(), path, "cannot open the curriculum fixture",
            "run the tests from the repository root; regenerate with /usr/bin/python3 "
            "tools/reference/make_curriculum_fixture.py");
  const nlohmann::json j = nlohmann::json::parse(in);
  CurriculumFixture f;
  f.B = j.at("B"); f.L = j.at("L"); f.V = j.at("V"); f.D = j.at("D");
  f.gamma_min = j.at("gamma_min"); f.gamma_max = j.at("gamma_max");
  f.t = j.at("t").get<std::vector<double>>();
  f.gamma = j.at("gamma").get<std::vector<double>>();
  f.alpha = j.at("alpha").get<std::vector<double>>();
  f.dalpha = j.at("dalpha").get<std::vector<double>>();
  f.alpha_tilde_f32 = j.at("alpha_tilde_f32").get<std::vector<float>>();
  f.sigma_tilde_f32 = j.at("sigma_tilde_f32").get<std::vector<float>>();
  f.x = j.at("x").get<std::vector<int32_t>>();
  f.E = j.at("E").get<std::vector<double>>();
  f.W = j.at("W").get<std::vector<double>>();
  for (const auto& c : j.at("cases")) {
    CurriculumFixtureCase k;
    k.tau = c.at("tau");
    k.inverse_tau_f32 = c.at("inverse_tau_f32").get<float>();
    k.eps = c.at("eps").get<std::vector<float>>();
    k.soft_logits = c.at("soft_logits").get<std::vector<float>>();
    k.z = c.at("z").get<std::vector<int32_t>>();
    for (auto [name, dst] : {std::pair{"soft_input", &k.soft_input}, {"logits", &k.logits}, {"loss", &k.loss},
                             {"dlogits", &k.dlogits}, {"dh0", &k.dh0}, {"dE", &k.dE}, {"dW", &k.dW}})
      *dst = c.at(name).get<std::vector<double>>();
    f.cases.push_back(std::move(k));
  }
  const size_t rows = (size_t)(f.B * f.L);
  DUO_CHECK(f.x.size() == rows && f.E.size() == (size_t)(f.V * f.D) && f.W.size() == f.E.size() &&
                f.alpha.size() == (size_t)f.B && !f.cases.empty(),
            path, "inconsistent sizes in the curriculum fixture", "regenerate it (tools/reference/README_curriculum.md)");
  for (const auto& c : f.cases)
    DUO_CHECK(c.eps.size() == rows * (size_t)f.V && c.z.size() == rows && c.loss.size() == rows &&
                  c.dE.size() == f.E.size(),
              path, "inconsistent sizes in a case of the curriculum fixture",
              "regenerate it (tools/reference/README_curriculum.md)");
  return f;
}

// nelbo(logits, V, x, z, alpha, dalpha, dlogits) → ℓ, writing dℓ/dlogits: the signature of duo_nelbo_row<double>.
using NelboRow = std::function<double(const double*, int, int, int, double, double, double*)>;

// Runs the chain above from soft_logits (float32, as the curriculum produces them) and compares the loss per
// token, dlogits, dh0, dE and dW with the fixture (relative 1e-10 of each quantity's largest magnitude).
inline void check_curriculum_loss_chain(const CurriculumFixture& f, const CurriculumFixtureCase& c,
                                        const std::vector<float>& soft_logits, const NelboRow& nelbo) {
  const int64_t R = f.B * f.L, V = f.V, D = f.D;
  std::vector<double> P((size_t)(R * V)), h0((size_t)(R * D), 0.0), logits((size_t)(R * V), 0.0),
      loss((size_t)R), dlogits((size_t)(R * V)), dh0((size_t)(R * D), 0.0), dE((size_t)(V * D), 0.0),
      dW((size_t)(V * D), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    const float* y = soft_logits.data() + r * V;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; ++j) m = std::max(m, (double)y[j]);
    for (int64_t j = 0; j < V; ++j) s += (P[r * V + j] = std::exp((double)y[j] - m));
    for (int64_t j = 0; j < V; ++j) P[r * V + j] /= s;
    for (int64_t j = 0; j < V; ++j)
      for (int64_t d = 0; d < D; ++d) h0[r * D + d] += P[r * V + j] * f.E[j * D + d];
    for (int64_t v = 0; v < V; ++v)
      for (int64_t d = 0; d < D; ++d) logits[r * V + v] += h0[r * D + d] * f.W[v * D + d];
    const int64_t b = r / f.L;
    loss[r] = nelbo(&logits[r * V], (int)V, f.x[r], c.z[r], f.alpha[b], f.dalpha[b], &dlogits[r * V]);
    for (int64_t v = 0; v < V; ++v)
      for (int64_t d = 0; d < D; ++d) {
        dh0[r * D + d] += dlogits[r * V + v] * f.W[v * D + d];
        dW[v * D + d] += dlogits[r * V + v] * h0[r * D + d];
      }
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < V; ++j)
      for (int64_t d = 0; d < D; ++d) dE[j * D + d] += P[r * V + j] * dh0[r * D + d];

  auto close = [](const std::vector<double>& got, const std::vector<double>& want, const char* what) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(want[i]));
      err = std::max(err, std::fabs(got[i] - want[i]));
    }
    BOOST_TEST(err <= 1e-10 * scale, what << ": max error " << err << " (largest magnitude " << scale << ")");
  };
  close(P, c.soft_input, "softmax(w/τ)");
  close(logits, c.logits, "logits");
  close(loss, c.loss, "loss per token");
  close(dlogits, c.dlogits, "dloss/dlogits");
  close(dh0, c.dh0, "dloss/dh0");
  close(dE, c.dE, "dloss/dE");
  close(dW, c.dW, "dloss/dW");
}

}  // namespace duo::testing
