// cuBLASLt behind gemm.h (nvcc only; the emulator build uses gemm_emu.cpp). Row-major C = op(A) op(B) is run
// as the column-major C^T = op(B)^T op(A)^T, which cuBLASLt computes with A and B swapped and the same
// transpose flags. One plan (matmul descriptor, three layouts, the heuristic's best algorithm) per shape,
// transposes, epilogue and C alignment, built on first use and kept: building them costs more than a small
// GEMM. Every plan uses the same fp32 compute type; split-K reductions, if chosen, are ordered (cuBLASLt's
// counters), so results are run-to-run deterministic.
#if defined(__CUDACC__)
#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/error.h"
#include "gemm.h"

namespace duo::cuda {
namespace {

void lt_check(cublasStatus_t s, const char* op, const char* call, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail(str("CudaOps::", op, " (", file, ":", line, ")"), str(call, ": cuBLAS status ", int(s)),
       s == CUBLAS_STATUS_ALLOC_FAILED ? "the GPU is out of memory: use a smaller batch, model or sequence length"
                                       : "cuBLASLt rejected the GEMM: check the shapes; sm_80 or newer is required");
}
#define DUO_LT(op, call) lt_check((call), (op), #call, __FILE__, __LINE__)

// Largest power of two (≤ 256) dividing the address: the alignment cuBLASLt may assume for C and D.
uint32_t alignment_of(const void* p) {
  uint32_t a = 256;
  while (a > 4 && reinterpret_cast<uintptr_t>(p) % a != 0) a /= 2;
  return a;
}

}  // namespace

struct Gemm::Impl {
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool found = false;  // false only for a GELU-epilogue shape cuBLASLt cannot do (kept so it is asked once)
  };
  // (ta, tb, M, N, K, bias epilogue, GELU epilogue, C alignment, leading dimensions of A, B, C, bf16 C, DGELU)
  using Key =
      std::tuple<bool, bool, int64_t, int64_t, int64_t, bool, bool, uint32_t, int64_t, int64_t, int64_t, bool, bool>;
  cublasLtHandle_t handle = nullptr;
  std::map<Key, Plan> plans;

  Plan& plan(const char* op, const GemmArgs& g, uint32_t c_align);
};

Gemm::Impl::Plan& Gemm::Impl::plan(const char* op, const GemmArgs& g, uint32_t c_align) {
  const Key key{g.ta, g.tb, g.M, g.N, g.K, g.bias != nullptr, g.gelu_pre != nullptr, c_align,
                g.a_ld(), g.b_ld(), g.c_ld(), g.c_bf16, g.dgelu_pre != nullptr};
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  Plan p;
  // cuBLASLt's A is our B: (N x K) after its op; its B is our A: (K x M) after its op; C^T is (N x M).
  const cublasOperation_t opa = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  DUO_LT(op, cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  // GELU_AUX*: D = gelu(AB + bias) and the pre-activation in the aux buffer, laid out as D (column-major, ld N).
  // DGELU: D = AB · gelu'(aux), the aux (the forward's pre-activation) laid out as D.
  const cublasLtEpilogue_t epi =
      g.dgelu_pre ? CUBLASLT_EPILOGUE_DGELU
      : g.gelu_pre ? (g.bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                   : (g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (g.gelu_pre || g.dgelu_pre) {
    const int64_t aux_ld = g.c_ld();
    DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
  }
  DUO_LT(op, cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, g.tb ? g.K : g.N, g.tb ? g.N : g.K, g.b_ld()));
  DUO_LT(op, cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, g.ta ? g.M : g.K, g.ta ? g.K : g.M, g.a_ld()));
  // C and D share one layout; with a bf16 D the bias and the GELU aux are bf16 too (their default types follow D's).
  DUO_LT(op, cublasLtMatrixLayoutCreate(&p.c, g.c_bf16 ? CUDA_R_16BF : CUDA_R_32F, g.N, g.M, g.c_ld()));

  cublasLtMatmulPreference_t pref = nullptr;
  DUO_LT(op, cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  DUO_LT(op, cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    DUO_LT(op, cublasLtMatmulPreferenceSetAttribute(pref, attr, &c_align, sizeof(c_align)));
  cublasLtMatmulHeuristicResult_t best{};
  int found = 0;
  DUO_LT(op, cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &best, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  p.found = found > 0;
  if (!p.found && (g.gelu_pre || g.dgelu_pre)) return plans.emplace(key, p).first->second;  // the caller falls back
  DUO_CHECK(found > 0, str("CudaOps::", op),
            str("cuBLASLt has no algorithm for the bf16 GEMM M=", g.M, " N=", g.N, " K=", g.K),
            "sizes that are multiples of 8 are supported everywhere; check the model's hidden size");
  p.algo = best.algo;
  return plans.emplace(key, p).first->second;
}

Gemm::Gemm() : impl_(std::make_unique<Impl>()) { DUO_LT("Gemm", cublasLtCreate(&impl_->handle)); }

Gemm::~Gemm() {
  for (auto& [key, p] : impl_->plans) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cublasLtDestroy(impl_->handle);
}

bool Gemm::run(const char* op, const GemmArgs& g, void* workspace, cudaStream_t stream) {
  if (g.M == 0 || g.N == 0) return true;
  Impl::Plan& p = impl_->plan(op, g, alignment_of(g.C));
  if (!p.found) return false;
  if (g.bias)
    DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  if (g.gelu_pre)
    DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.gelu_pre,
                                              sizeof(g.gelu_pre)));
  if (g.dgelu_pre)
    DUO_LT(op, cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.dgelu_pre,
                                              sizeof(g.dgelu_pre)));
  const float alpha = 1.0f, beta = g.beta;
  DUO_LT(op, cublasLtMatmul(impl_->handle, p.desc, &alpha, g.B, p.a, g.A, p.b, &beta, g.C, p.c, g.C, p.c, &p.algo,
                            workspace, kWorkspaceBytes, stream));
  return true;
}

}  // namespace duo::cuda
#endif  // __CUDACC__
