// The emulator's stand-in for cuBLASLt (see gemm.h): the same bf16 inputs, every product exact in fp32 (two
// 8-bit mantissas), sums in fp32 in k order, then beta C, the bias and GELU epilogues, as cuBLASLt applies them
// (with a bf16 C: a bf16 bias added in fp32, then the pre-activation and C each rounded once), or the DGELU
// epilogue (the product times GELU's derivative at the aux pre-activation).
// Only the summation order differs from a GPU, which is why kernel tests compare GEMM ops with a tolerance.
#include "gemm.h"
#include "kernels/gelu.cuh"

namespace duo::cuda {

struct Gemm::Impl {};
Gemm::Gemm() = default;
Gemm::~Gemm() = default;

namespace {

// The GEMM itself, as the device would run it when its turn in the stream comes.
void host_gemm(const GemmArgs& g) {
  emu::HostAccess access(emu::device().memory(), "gemm");  // this host loop stands for device code
  emu::device().memory().add_tensor_flops(2.0 * double(g.M) * double(g.N) * double(g.K));
  const int64_t lda = g.a_ld(), ldb = g.b_ld(), ldc = g.c_ld();
  for (int64_t m = 0; m < g.M; ++m)
    for (int64_t n = 0; n < g.N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < g.K; ++k) {
        const float a = float(g.ta ? g.A[k * lda + m] : g.A[m * lda + k]);
        const float b = float(g.tb ? g.B[n * ldb + k] : g.B[k * ldb + n]);
        acc += a * b;
      }
      const int64_t at = m * ldc + n;
      if (g.dgelu_pre) {  // C = acc gelu'(aux), aux of C's type
        const float pre = g.c_bf16 ? float(static_cast<const __nv_bfloat16*>(g.dgelu_pre)[at])
                                   : static_cast<const float*>(g.dgelu_pre)[at];
        const float r = acc * Gelu::df(pre);
        if (g.c_bf16) static_cast<__nv_bfloat16*>(g.C)[at] = __float2bfloat16_rn(r);
        else static_cast<float*>(g.C)[at] = r;
        continue;
      }
      if (g.c_bf16) {  // bf16 bias, aux and C; every value rounded once from its fp32 result
        float r = acc;
        if (g.bias) r += float(static_cast<const __nv_bfloat16*>(g.bias)[n]);
        if (g.gelu_pre) {
          static_cast<__nv_bfloat16*>(g.gelu_pre)[at] = __float2bfloat16_rn(r);
          r = Gelu::f(r);
        }
        static_cast<__nv_bfloat16*>(g.C)[at] = __float2bfloat16_rn(r);
        continue;
      }
      float* c = static_cast<float*>(g.C) + at;
      float r = g.beta != 0.0f ? acc + g.beta * *c : acc;
      if (g.bias) r += static_cast<const float*>(g.bias)[n];
      if (g.gelu_pre) {
        static_cast<float*>(g.gelu_pre)[at] = r;
        r = Gelu::f(r);
      }
      *c = r;
    }
}

}  // namespace

// Runs now, or is recorded with its arguments when the stream captures (a cuBLASLt call is captured the same way).
bool Gemm::run(const char* op, const GemmArgs& g, void*, cudaStream_t stream) {
  if (emu::enqueue(stream, [g] { host_gemm(g); }) == emu::Enqueued::Implicit)
    fail(op, "a GEMM on the legacy default stream while this thread captures a stream",
         "issue every op of a recorded sequence on the backend's stream");
  return true;
}

}  // namespace duo::cuda
