// Discrete Consistency Distillation, the per-token KL (docs/distillation.md §4; src/math/loss_distill.h and the kl_head op):
// central finite differences, the PyTorch fixture (tools/reference/distill.py), and the op on whole rows.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "math/loss_distill.h"
#include "backend/cpu/cpu_ops.h"
#include "distill_fixture.h"
#include "loss_test_util.h"

using namespace duo;
using namespace duo::testing;

namespace {

std::vector<double> row(const nlohmann::json& c, const char* key, int n, int V) {
  std::vector<double> all = c.at(key).get<std::vector<double>>();
  return std::vector<double>(all.begin() + (size_t)n * V, all.begin() + (size_t)(n + 1) * V);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distill)

BOOST_AUTO_TEST_CASE(kl_gradient_matches_finite_differences) {
  for (bool fwd : {false, true}) {
    for (unsigned seed = 1; seed <= 4; ++seed) {
      const int V = 5 + 3 * (int)seed;
      std::vector<double> teacher = test_logits(V, 100 + seed, 3.0);
      check_finite_differences(test_logits(V, seed, 3.0),
                               [&](auto* o, auto* d) { return distill_kl_row(o, teacher.data(), V, fwd, d); },
                               str(fwd ? "kl-fwd" : "kl-bwd", " V=", V));
    }
  }
}

BOOST_AUTO_TEST_CASE(kl_is_zero_for_equal_rows_and_positive_otherwise) {
  const int V = 13;
  std::vector<double> a = test_logits(V, 7), b = test_logits(V, 8), d(V);
  for (bool fwd : {false, true}) {
    BOOST_TEST(std::fabs(distill_kl_row(a.data(), a.data(), V, fwd, d.data())) < 1e-15);
    for (double g : d) BOOST_TEST(std::fabs(g) < 1e-15);
    BOOST_TEST(distill_kl_row(a.data(), b.data(), V, fwd, (double*)nullptr) > 1e-3);
  }
  // A shift of all logits changes nothing (softmax invariance).
  std::vector<double> shifted = a;
  for (double& v : shifted) v += 5.0;
  BOOST_TEST(std::fabs(distill_kl_row(shifted.data(), b.data(), V, false, (double*)nullptr) -
                       distill_kl_row(a.data(), b.data(), V, false, (double*)nullptr)) < 1e-13);
}

BOOST_AUTO_TEST_CASE(kl_matches_pytorch_fixture) {
  const auto& fx = distill_fixture();
  const int V = fx.at("V"), L = fx.at("L");
  int checked = 0;
  for (const auto& c : fx.at("cases")) {
    for (const char* kind : {"kl-bwd", "kl-fwd"}) {
      const bool fwd = std::string(kind) == "kl-fwd";
      for (int n = 0; n < L; ++n) {
        nlohmann::json one;
        one["logits"] = row(c, "student", n, V);
        one["loss"] = c.at(kind).at("loss").at(n);
        one["grad"] = row(c.at(kind), "grad", n, V);
        const std::vector<double> t64 = row(c, "teacher", n, V);
        const std::vector<float> t32(t64.begin(), t64.end());
        check_against_fixture(
            one,
            [&](auto* o, auto* d) {
              using T = std::remove_pointer_t<decltype(o)>;
              const T* t = nullptr;
              if constexpr (std::is_same_v<T, double>) t = t64.data(); else t = t32.data();
              return distill_kl_row(o, t, V, fwd, d);
            },
            str(kind, " t=", c.at("t").get<double>(), " token ", n));
        ++checked;
      }
    }
  }
  BOOST_TEST(checked >= 100);
}

// The op over whole (N, V) blocks: the per-row function, scaled by the weights, in both dtypes.
template <class T>
void check_kl_head(KlDirection dir, const char* kind) {
  const auto& fx = distill_fixture();
  const int V = fx.at("V"), L = fx.at("L");
  const auto& c = fx.at("cases").at(2);
  std::vector<double> s64 = c.at("student").get<std::vector<double>>(), t64 = c.at("teacher").get<std::vector<double>>();
  std::vector<T> s(s64.begin(), s64.end()), t(t64.begin(), t64.end()), losses(L), ds((size_t)L * V, T(NAN));
  std::vector<double> w(L);
  for (int n = 0; n < L; ++n) w[n] = n % 3 == 0 ? 0.0 : 0.25 * n;  // masked tokens get a zero gradient
  CpuOps ops;
  Tensor ts(s.data(), dtype_of<T>(), {L, V}), tt(t.data(), dtype_of<T>(), {L, V}), tl(losses.data(), dtype_of<T>(), {L});
  Tensor td(ds.data(), dtype_of<T>(), {L, V}), tw(w.data(), DType::F64, {L});
  ops.kl_head(dir, tl, td, ts, tt, tw);
  const double tol = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  const std::vector<double> want_g = c.at(kind).at("grad").get<std::vector<double>>();
  for (int n = 0; n < L; ++n) {
    BOOST_TEST(close(losses[n], c.at(kind).at("loss").at(n).get<double>(), tol), kind << " loss " << n);
    for (int j = 0; j < V; ++j)
      BOOST_TEST(close(ds[(size_t)n * V + j], w[n] * want_g[(size_t)n * V + j], tol), kind << " grad " << n << "," << j);
  }
  // Without a gradient tensor the losses are the same.
  std::vector<T> l2(L);
  Tensor tl2(l2.data(), dtype_of<T>(), {L}), none;
  ops.kl_head(dir, tl2, none, ts, tt, tw);
  for (int n = 0; n < L; ++n) BOOST_TEST(l2[n] == losses[n]);
}

BOOST_AUTO_TEST_CASE(kl_head_op_matches_fixture) {
  check_kl_head<double>(KlDirection::Backward, "kl-bwd");
  check_kl_head<double>(KlDirection::Forward, "kl-fwd");
  check_kl_head<float>(KlDirection::Backward, "kl-bwd");
  check_kl_head<float>(KlDirection::Forward, "kl-fwd");
}

BOOST_AUTO_TEST_CASE(kl_head_rejects_mismatched_shapes) {
  CpuOps ops;
  std::vector<float> s(12), t(15), l(3), d(12);
  std::vector<double> w(3, 1.0);
  Tensor ts(s.data(), DType::F32, {3, 4}), tt(t.data(), DType::F32, {3, 5}), tl(l.data(), DType::F32, {3});
  Tensor td(d.data(), DType::F32, {3, 4}), tw(w.data(), DType::F64, {3});
  BOOST_CHECK_THROW(ops.kl_head(KlDirection::Backward, tl, td, ts, tt, tw), Error);
}

BOOST_AUTO_TEST_SUITE_END()
