// The op-test harness run (op_harness.h): every case of every op family on every backend, one verdict rule.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "cuda_ops.h"
#include "op_harness.h"
#include "op_runner.h"

namespace duo::test::ops {

double Precision::tol_max() const { return 8.0 * k * u; }
double Precision::tol_rms() const { return 8.0 * std::sqrt(k) * u; }

namespace {

constexpr double kF32 = 0x1p-24;  // unit roundoff of float
// bf16 GEMM inputs: each factor is rounded to 8 significant bits (2^-9 relative). A dot product's error from it
// is a random-sign sum, about 2^-9·√2 of the result's own size whatever K is, so the bound is K-independent:
// u = 2^-9 with k = 2 (tol_max = 16·2^-9 = 3.1e-2, tol_rms = 11·2^-9 = 2.2e-2).
constexpr double kBf16 = 0x1p-9;

struct Backend {
  std::string name;
  Ops* ops;
  DType floats;    // the dtype of Kind::Float buffers
  bool bf16_gemm;  // GEMM-backed ops round their inputs to bf16
};

std::string output_name(const OpCase& c, size_t k) {
  for (const Buf& b : c.bufs)
    if (b.role != Role::In && b.role != Role::Scratch && k-- == 0) return b.name;
  return "result";
}

// A case with a buffer in the activation dtype: on a bf16 backend its outputs carry bf16's rounding (2^-9 relative,
// the same bound as a bf16 GEMM's inputs).
bool has_act(const OpCase& c) {
  for (const Buf& b : c.bufs)
    if (b.kind == Kind::Act) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ops)

// The verdict rule, for every case, backend and output: finite where the reference is finite, then relative RMS
// and max error within the case's Precision for that backend.
BOOST_AUTO_TEST_CASE(every_case_on_every_backend) {
  CpuOps cpu64, cpu32;
  CudaOps gpu;
  const Backend ref{"cpu-f64", &cpu64, DType::F64, false};
  const std::vector<Backend> backends = {{"cpu-f32", &cpu32, DType::F32, false}, {"cuda-emu", &gpu, DType::F32, true}};
  const std::vector<OpCase> cases = all_cases();
  for (const OpCase& c : cases) {
    BOOST_TEST_CONTEXT(c.params) {
      const auto want = run_case(c, *ref.ops, ref.floats, ref.name.c_str());
      for (const Backend& be : backends) {
        const auto got = run_case(c, *be.ops, be.floats, be.name.c_str());
        BOOST_REQUIRE_EQUAL(got.size(), want.size());
        const bool bf16 = be.bf16_gemm && (c.gemm || (be.ops->activation_dtype(be.floats) == DType::BF16 && has_act(c)));
        const Precision p = bf16 ? Precision{kBf16, 2.0 * c.loose}
                                                   : Precision{kF32, std::max(1.0, c.k) * c.loose};
        for (size_t k = 0; k < want.size(); ++k) {
          const std::vector<double>& g = got[k];
          const std::vector<double>& w = want[k];
          double err2 = 0, ref2 = 0, err_max = 0, ref_max = 0;
          int64_t nonfinite = -1;
          for (size_t i = 0; i < w.size(); ++i) {
            if (std::isfinite(w[i]) && !std::isfinite(g[i]) && nonfinite < 0) nonfinite = (int64_t)i;
            const double e = g[i] - w[i];
            err2 += e * e;
            ref2 += w[i] * w[i];
            err_max = std::max(err_max, std::fabs(e));
            ref_max = std::max(ref_max, std::fabs(w[i]));
          }
          const double rms = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2), mx = ref_max > 0 ? err_max / ref_max
                                                                                                      : err_max;
          const std::string what = be.name + " " + output_name(c, k);
          BOOST_TEST(nonfinite < 0, what << ": non-finite at " << nonfinite);
          BOOST_TEST(rms <= p.tol_rms(), what << ": relative RMS error " << rms << " > " << p.tol_rms());
          BOOST_TEST(mx <= p.tol_max(), what << ": max error " << mx << " > " << p.tol_max());
        }
      }
    }
  }
}

// Coverage: every op kind has cases, and every family sweeps more than one shape.
BOOST_AUTO_TEST_CASE(every_op_kind_has_cases) {
  std::map<OpKind, int> n;
  for (const OpCase& c : all_cases()) ++n[c.kind];
  for (int k = 0; k < (int)OpKind::Count; ++k) {
    BOOST_TEST(n[(OpKind)k] >= 1, op_name((OpKind)k) << " has no case in tests/ops/cases.cpp");
    BOOST_TEST(n[(OpKind)k] >= 3, op_name((OpKind)k) << " sweeps fewer than 3 shapes");
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace duo::test::ops
