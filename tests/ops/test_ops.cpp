// The op-test harness run (op_harness.h): every case of every op family on every backend, one verdict rule.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "core/philox.h"
#include "cuda_ops.h"
#include "op_harness.h"

namespace duo::test::ops {

double Precision::tol_max() const { return 8.0 * k * u; }
double Precision::tol_rms() const { return 8.0 * std::sqrt(k) * u; }

namespace {

constexpr int64_t kGuard = 64;          // guard elements on each side of every tensor
constexpr double kSentinel = -7777.25;  // their value (exact in every dtype used)
constexpr double kF32 = 0x1p-24;        // unit roundoff of float
// bf16 GEMM inputs: each factor is rounded to 8 significant bits (2^-9 relative). A dot product's error from it
// is a random-sign sum, about 2^-9·√2 of the result's own size whatever K is, so the bound is K-independent:
// u = 2^-9 with k = 2 (tol_max = 16·2^-9 = 3.1e-2, tol_rms = 11·2^-9 = 2.2e-2).
constexpr double kBf16 = 0x1p-9;

struct Backend {
  std::string name;
  Ops* ops;
  DType floats;     // the dtype of Kind::Float buffers
  bool bf16_gemm;   // GEMM-backed ops round their inputs to bf16
};

DType dtype_of_buf(const Buf& b, DType floats) {
  return b.kind == Kind::I32 ? DType::I32 : b.kind == Kind::F64 ? DType::F64 : floats;
}

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Initial values of buffer i of a case, in double (float buffers hold values rounded to float, so that every
// backend, the float64 reference included, starts from the very same numbers).
std::vector<double> initial_values(const Buf& b, uint64_t seed) {
  const int64_t n = count(b.shape);
  std::vector<double> v((size_t)n, 0.0);
  Philox rng{seed, 17};
  for (int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform_double(i);
    switch (b.gen.type) {
      case Gen::Uniform: case Gen::Positive: v[i] = b.gen.lo + (b.gen.hi - b.gen.lo) * u; break;
      case Gen::Ids: v[i] = std::floor(u * (double)b.gen.n_ids); break;
      case Gen::Zeros: v[i] = 0; break;
    }
    if (b.kind == Kind::Float) v[i] = (double)(float)v[i];
  }
  return v;
}

// One tensor with its guards on a backend: the allocation holds kGuard elements, the tensor, kGuard elements.
struct Guarded {
  Ops* ops = nullptr;
  void* base = nullptr;
  DType dt = DType::F32;
  int64_t n = 0;
  Tensor t;
  Guarded(Ops& o, const Buf& b, DType floats, const std::vector<double>& init) : ops(&o) {
    dt = dtype_of_buf(b, floats);
    n = count(b.shape);
    const int64_t total = n + 2 * kGuard;
    base = o.alloc((size_t)total * dtype_size(dt));
    std::vector<double> all((size_t)total, kSentinel);
    std::copy(init.begin(), init.end(), all.begin() + kGuard);
    Tensor whole(base, dt, {total}, o.device());
    upload(whole, all);
    t = Tensor(static_cast<char*>(base) + kGuard * dtype_size(dt), dt, {1}, o.device());
    t.ndim = (int)b.shape.size();
    for (int d = 0; d < t.ndim; ++d) t.shape[d] = b.shape[(size_t)d];
    t.set_contiguous_strides();
  }
  ~Guarded() { ops->release(base); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  void upload(Tensor& whole, const std::vector<double>& v) {
    if (dt == DType::F64) return ops->from_host(whole, v.data());
    if (dt == DType::F32) {
      std::vector<float> f(v.begin(), v.end());
      return ops->from_host(whole, f.data());
    }
    std::vector<int32_t> i(v.size());
    for (size_t k = 0; k < v.size(); ++k) i[k] = (int32_t)v[k];
    ops->from_host(whole, i.data());
  }
  // The whole allocation back in double.
  std::vector<double> download() {
    const int64_t total = n + 2 * kGuard;
    Tensor whole(base, dt, {total}, ops->device());
    std::vector<double> v((size_t)total);
    if (dt == DType::F64) {
      ops->to_host(v.data(), whole);
    } else if (dt == DType::F32) {
      std::vector<float> f((size_t)total);
      ops->to_host(f.data(), whole);
      std::copy(f.begin(), f.end(), v.begin());
    } else {
      std::vector<int32_t> i((size_t)total);
      ops->to_host(i.data(), whole);
      std::copy(i.begin(), i.end(), v.begin());
    }
    return v;
  }
};

// The outputs of one case on one backend: every Out / InOut buffer, then the scalars. Guard damage is an error.
std::vector<std::vector<double>> run(const OpCase& c, const Backend& be) {
  std::vector<std::unique_ptr<Guarded>> bufs;
  for (size_t i = 0; i < c.bufs.size(); ++i)
    bufs.push_back(std::make_unique<Guarded>(*be.ops, c.bufs[i], be.floats, initial_values(c.bufs[i], 1000 + i)));
  std::vector<Tensor> ts;
  for (auto& b : bufs) ts.push_back(b->t);
  const std::vector<double> scalars = c.invoke(*be.ops, ts);
  be.ops->sync();
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < c.bufs.size(); ++i) {
    const std::vector<double> all = bufs[i]->download();
    const double sentinel = bufs[i]->dt == DType::I32 ? (double)(int32_t)kSentinel : kSentinel;
    for (int64_t g = 0; g < kGuard; ++g)
      if (all[(size_t)g] != sentinel || all[(size_t)(kGuard + bufs[i]->n + g)] != sentinel)
        fail(c.params, str(be.name, ": the op wrote outside ", c.bufs[i].name), "an overrun");
    if (c.bufs[i].role != Role::In)
      out.emplace_back(all.begin() + kGuard, all.begin() + kGuard + bufs[i]->n);
  }
  if (!scalars.empty()) out.push_back(scalars);
  return out;
}

std::string output_name(const OpCase& c, size_t k) {
  for (const Buf& b : c.bufs)
    if (b.role != Role::In && k-- == 0) return b.name;
  return "result";
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
      const auto want = run(c, ref);
      for (const Backend& be : backends) {
        const auto got = run(c, be);
        BOOST_REQUIRE_EQUAL(got.size(), want.size());
        const Precision p = be.bf16_gemm && c.gemm ? Precision{kBf16, 2.0 * c.loose}
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
