// The op-test harness, in the spirit of ggml's test-backend-ops: one case type per op family, with printable
// parameters and seeded inputs; every case runs on every backend under test and is judged by one rule against
// the CPU backend computing in float64.
//
//   backends    cpu-f64 (the reference), cpu-f32, cuda-emu (CudaOps under the SIMT emulator, bf16 GEMMs)
//   guards      every tensor sits between 64 guard elements on each side, filled with a sentinel; an op that
//               writes outside its tensor fails the case
//   verdict     for every output: first, no non-finite value where the reference is finite; then the relative
//               RMS error sqrt(Σ(got − ref)² / Σ ref²) and the max error max|got − ref| / max|ref| within the
//               case's tolerance for the backend's precision (Precision below), which is derived, not tuned
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "backend/ops.h"

namespace duo::test::ops {

// What a buffer holds: the backend's floating type (F64 on the reference, F32 elsewhere), its activation dtype
// (Act: Ops::activation_dtype of that floating type, BF16 on the CUDA backend; its initial values are rounded to
// bf16 on every backend, so that all start from the same numbers), or a fixed type.
enum class Kind : uint8_t { Float, I32, F64, Act };

// How a buffer's initial values are drawn (outputs that accumulate start from these values too).
struct Gen {
  enum Type : uint8_t { Uniform, Ids, Zeros, Positive } type = Uniform;
  double lo = -1, hi = 1;  // Uniform: [lo, hi); Positive: [lo, hi) with lo > 0
  int64_t n_ids = 0;       // Ids: [0, n_ids)
};
inline Gen uniform(double lo = -1, double hi = 1) { return {Gen::Uniform, lo, hi, 0}; }
inline Gen ids(int64_t n) { return {Gen::Ids, 0, 0, n}; }
inline Gen zeros() { return {Gen::Zeros, 0, 0, 0}; }
inline Gen positive(double lo, double hi) { return {Gen::Positive, lo, hi, 0}; }

// Scratch: written by the op in the backend's own form (embed_soft's saved probabilities, which the CUDA backend keeps
// in bf16): guarded against overruns, never compared.
enum class Role : uint8_t { In, Out, InOut, Scratch };

struct Buf {
  std::string name;
  std::vector<int64_t> shape;
  Role role = Role::In;
  Kind kind = Kind::Float;
  Gen gen = uniform();
};

// The precision a case's result is judged at: the unit roundoff of the arithmetic that forms it and the length
// K of the longest sum (or chain) behind one output element. Rounding errors of a K-term sum are bounded by
// K·u of the sum of |terms| and behave like √K·u on average: tol_max = 8·K·u, tol_rms = 8·√K·u (8: slack for
// the few ulps of exp/log/tanh approximations and for cancellation). A case through a bf16 GEMM uses u = 2^-8:
// its inputs are rounded to bf16 (2^-9 relative), which dominates the fp32 accumulation (kBf16 below).
struct Precision {
  double u = 0;
  double k = 1;
  double tol_max() const;
  double tol_rms() const;
};

struct OpCase {
  OpKind kind = OpKind::Fill;
  std::string params;             // printable: "linear N=17 I=33 O=64 bias"
  std::vector<Buf> bufs;
  double k = 1;                   // the longest sum behind one output element
  bool gemm = false;              // the CUDA backend forms it with bf16 GEMM inputs (or writes bf16 Act outputs)
  double loose = 1;               // factor for ops whose CPU and CUDA formulas differ by design (stated per case)
  // Calls the op on the tensors, in the order of bufs (views may be made from them); returns the op's scalar
  // results, if any (sum_squares), which are judged like one more output.
  std::function<std::vector<double>(Ops&, std::vector<Tensor>&)> invoke;
};

// All cases of all op families (cases.cpp). scale multiplies each sweep's leading size (rows, sequence length,
// element count): 1 for the tests, larger for the ops benchmark (bench/ops.cpp).
std::vector<OpCase> all_cases(int64_t scale = 1);

}  // namespace duo::test::ops
