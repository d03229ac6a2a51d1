// The GEMM engine of the CUDA backend: row-major C[M,N] = op(A) op(B) (+ bias[N]) + beta C, or C = gelu(that) with
// the pre-activation kept, with bf16 A and B, fp32 accumulation, fp32 C (or bf16 C: the backend's activation dtype,
// rounded once from the fp32 result). Under nvcc it is cuBLASLt (gemm_cublaslt.cu: one handle, descriptors and the
// chosen algorithm cached per shape); under the SIMT emulator a host GEMM with the same rounding
// (gemm_emu.cpp: bf16 inputs, products exact in fp32, fp32 sums in k order).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime.cuh"

namespace duo::cuda {

struct GemmArgs {
  bool ta = false, tb = false;  // op(A) = A^T when ta (A stored (K, M)); op(B) = B^T when tb (B stored (N, K))
  int64_t M = 0, N = 0, K = 0;
  const __nv_bfloat16* A = nullptr;
  const __nv_bfloat16* B = nullptr;
  void* C = nullptr;           // (M, N), leading dimension N (or ldc): fp32, or bf16 when c_bf16
  // C, bias and gelu_pre in bf16 (cuBLASLt's bias and aux types follow D's); only with beta = 0.
  bool c_bf16 = false;
  // Leading dimensions (elements between rows as stored) when the rows are padded; 0: packed (A: K, or M when ta;
  // B: N, or K when tb; C: N). The fused vocabulary head pads its rows of V to a multiple of 64.
  int64_t lda = 0, ldb = 0, ldc = 0;
  float beta = 0.0f;           // 0: C is written; 1: C accumulates
  const void* bias = nullptr;  // [N] added to every row (epilogue), or null
  void* gelu_pre = nullptr;     // GELU epilogue: the result (bias included) goes here, C = gelu_tanh of it; null:
                                // none. Needs N % 8 == 0 and 16-byte aligned pointers (cuBLASLt's aux buffer);
                                // laid out as C (leading dimension ldc).
  // DGELU epilogue: C = (op(A) op(B)) * gelu_tanh'(dgelu_pre), dgelu_pre laid out as C and of C's type (cuBLASLt's
  // aux); no bias, beta = 0; null: none. The same conditions as gelu_pre.
  const void* dgelu_pre = nullptr;
  int64_t a_ld() const { return lda ? lda : (ta ? M : K); }
  int64_t b_ld() const { return ldb ? ldb : (tb ? K : N); }
  int64_t c_ld() const { return ldc ? ldc : N; }
};

struct Gemm {
  // Device scratch cuBLASLt may use per call (the caller provides it out of the backend's workspace); the
  // emulator's host GEMM needs none.
#if defined(__CUDACC__)
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;
#else
  static constexpr size_t kWorkspaceBytes = 0;
#endif
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  // Runs the GEMM. Returns false, without running it, only when the GELU or DGELU epilogue was asked for and
  // cuBLASLt has no algorithm with it for this shape (the caller then applies it itself); any other failure throws.
  bool run(const char* op, const GemmArgs& g, void* workspace, cudaStream_t stream);

 private:
  struct Impl;  // cuBLASLt state (nvcc only)
  std::unique_ptr<Impl> impl_;
};

}  // namespace duo::cuda
