// The CPU backend's optional bf16 GEMMs (`--compute bf16`, docs/cpu_performance.md §4): both inputs rounded to
// bfloat16 (8 significant bits), products accumulated in fp32, on oneDNN's matmul (its AVX512-BF16 / AMX
// kernels, about twice the fp32 rate). The dense layers and attention use it; everything else stays fp32.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>
#include "core/simd.h"

namespace duo::cpu {

using bf16_t = uint16_t;  // the upper half of an IEEE float: sign, 8 exponent bits, 7 stored mantissa bits

// Round to nearest, ties to even (NaN stays NaN; finite values round as the hardware's vcvtneps2bf16 does).
DUO_INLINE_INTO_CLONES bf16_t to_bf16(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);  // quiet NaN
  return (bf16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
DUO_INLINE_INTO_CLONES float from_bf16(bf16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float x;
  __builtin_memcpy(&x, &u, 4);
  return x;
}
// y[i] = to_bf16(x[i]) for n elements (threads for large n).
void to_bf16(const float* x, bf16_t* y, int64_t n);

// True when this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16) that make bf16 GEMMs pay.
bool cpu_has_bf16_gemm();

// "GEMMs in bf16 (dense layers, attention; fp32 sums) on oneDNN 2.6.3, AVX512-BF16" for a run's header.
std::string bf16_gemm_summary();

// Row-major C (M, N) = alpha op(A) op(B) + beta * C (+ bias[n] on every row when bias is given) with A, B bf16 and
// C, bias fp32 (beta 0 or 1); op transposes when ta/tb.
// Owns oneDNN's engine, stream and the primitives already built, one per shape (building one takes ~0.1 ms).
// May be called from the tasks of an OpenMP loop (attention's heads): each call then runs on its own thread.
class Bf16Gemm {
 public:
  Bf16Gemm();
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  void operator()(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16_t* A, int64_t lda,
                  const bf16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duo::cpu
