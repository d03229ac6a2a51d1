// Dense layers out = in W^T + b (W is (O, I), PyTorch's layout), the MLP's linear + GELU (one GEMM with
// cuBLASLt's GELU epilogue) and their backward, on the bf16 GEMM of gemm.h: fp32 activations and weights are
// rounded to bf16 in the workspace, products accumulate in fp32 and the outputs are fp32 (the fp32 master weights
// and residual stream never lose precision). Frozen weights are read from their bf16 working copy instead
// (backend/weight_copies.h: made by the public call, or by AdamW). Activations in the backend's bf16 activation
// dtype (Ops::activation_dtype) are read as they are, and a bf16 output is written by the GEMM itself, rounded once
// (with the bias rounded to bf16, the type cuBLASLt adds to a bf16 output). The bias is the GEMM's epilogue when
// 16-byte aligned (cuBLASLt's requirement), otherwise a separate pass. The bias gradient
// is a column sum over the rows in fixed chunks (column_sums.cu): deterministic, and the CPU's order exactly
// up to 64 rows.
#include "backend/weight_copies.h"
#include "cuda_common.cuh"
#include "gemm.h"

namespace duo {
using namespace cuda;

namespace {

// y[i] = bf16(x[i]), round to nearest even                                                     (n)
__global__ void to_bf16_kernel(__nv_bfloat16* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}

// out[n, o] += bias[o]                                                                  out: (N, O)
__global__ void add_bias_kernel(float* out, const float* bias, int64_t N, int O) {
  const int64_t total = N * O;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] += bias[i % O];
}

}  // namespace

size_t CudaOps::bf16_slot_bytes(const Tensor& t) { return is_bf16(t) ? 0 : round_up(size_t(t.numel()) * 2); }

const void* CudaOps::bf16_operand(const Tensor& t, void* slot) {
  if (is_bf16(t)) return t.data;
  to_bf16(slot, fptr(t), t.numel());
  return slot;
}

void CudaOps::round_weights(void* copy, const Tensor& W) {
  to_bf16(copy, fptr(W), W.numel());
  DUO_CU_LAUNCHED("round_weights");
}

const void* CudaOps::bf16_weights(const Tensor& W, void* slot) {
  if (const WeightCopies::Slot c = copies_->find(W); c.copy && c.current) return c.copy;
  to_bf16(slot, fptr(W), W.numel());
  return slot;
}

void CudaOps::to_bf16(void* dst, const float* src, int64_t n) {
  if (n > 0)
    DUO_LAUNCH(to_bf16_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(static_cast<__nv_bfloat16*>(dst), src,
                                                                              n);
}

bool CudaOps::matmul(const char* op, float* C, const float* A, bool ta, const float* B, bool tb, int64_t M,
                     int64_t N, int64_t K, bool accumulate, const float* bias, float* gelu_pre) {
  if (M == 0 || N == 0) return true;
  cudaStream_t s = as_stream(stream_);
  if (K == 0) {  // an empty sum: C = bias (or C + bias), which cuBLASLt's K = 0 layouts are not asked to do
    if (gelu_pre) return false;  // linear_gelu falls back to linear (this path) and the GELU kernel
    if (!accumulate) DUO_CU(op, cudaMemsetAsync(C, 0, size_t(M * N) * sizeof(float), s));
    if (bias) {
      DUO_LAUNCH(add_bias_kernel, blocks_for(M * N), kThreads, 0, s)(C, bias, M, int(N));
      DUO_CU_LAUNCHED(op);
    }
    return true;
  }
  const size_t a_bytes = round_up(size_t(M * K) * 2), b_bytes = round_up(size_t(K * N) * 2);
  char* ws = static_cast<char*>(workspace(a_bytes + b_bytes + Gemm::kWorkspaceBytes));
  to_bf16(ws, A, M * K);
  to_bf16(ws + a_bytes, B, K * N);
  DUO_CU_LAUNCHED(op);
  return gemm_bf16(op, C, ws, ta, ws + a_bytes, tb, M, N, K, accumulate, bias, gelu_pre, ws + a_bytes + b_bytes);
}

bool CudaOps::gemm_bf16(const char* op, void* C, const void* A, bool ta, const void* B, bool tb, int64_t M, int64_t N,
                        int64_t K, bool accumulate, const void* bias, void* gelu_pre, void* gemm_workspace,
                        int64_t lda, int64_t ldc, bool c_bf16, const void* dgelu_pre) {
  cudaStream_t s = as_stream(stream_);
  const bool fused_bias = bias && aligned16(bias);
  GemmArgs g;
  g.ta = ta, g.tb = tb, g.M = M, g.N = N, g.K = K;
  g.A = static_cast<const __nv_bfloat16*>(A), g.B = static_cast<const __nv_bfloat16*>(B), g.C = C;
  g.c_bf16 = c_bf16;
  g.beta = accumulate ? 1.0f : 0.0f;
  g.bias = fused_bias ? bias : nullptr;
  g.gelu_pre = gelu_pre;
  g.dgelu_pre = dgelu_pre;
  g.lda = lda, g.ldc = ldc;
  DUO_CHECK(!dgelu_pre || (!bias && !accumulate && !gelu_pre), str("CudaOps::", op),
            "the DGELU epilogue takes no bias, accumulation or GELU", "ask for it from gelu_linear_backward");
  DUO_CHECK(!gelu_pre || (fused_bias || !bias), str("CudaOps::", op), "the GELU epilogue needs its bias in the GEMM",
            "ask for it from linear_gelu, which checks the bias' alignment");
  DUO_CHECK(!c_bf16 || (!accumulate && (fused_bias || !bias)), str("CudaOps::", op),
            "a bf16 output is written by the GEMM, with its bias (16-byte aligned) in the epilogue",
            "accumulate into fp32, or give the bias as an aligned bf16 copy (linear_gemm does)");
  if (!gemm_->run(op, g, gemm_workspace, s)) return false;
  if (bias && !fused_bias) {
    DUO_CHECK(ldc == 0 || ldc == N, str("CudaOps::", op), "a separate bias pass needs packed rows of C",
              "give the GEMM a 16-byte aligned bias (its epilogue)");
    DUO_LAUNCH(add_bias_kernel, blocks_for(M * N), kThreads, 0, s)(static_cast<float*>(C),
                                                                   static_cast<const float*>(bias), M, int(N));
    DUO_CU_LAUNCHED(op);
  }
  return true;
}

bool CudaOps::linear_gemm(const char* op, Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias,
                          Tensor* pre) {
  // N counts the rows of in, so I = 0 is N = 0 too: nothing to write (as the shared checks read the shapes)
  const int64_t N = rows_of(in), I = in.dim(-1), O = W.dim(0);
  const bool out16 = is_bf16(out);
  if (N == 0 || O == 0 || I == 0) return true;
  // (N, I) x (O, I)^T -> (N, O): in (unless already bf16), W and, for a bf16 output, the bias rounded in the workspace
  const size_t a_bytes = bf16_slot_bytes(in), w_bytes = round_up(size_t(O * I) * 2),
               b_bytes = out16 && !bias.empty() ? round_up(size_t(O) * 2) : 0;
  char* ws = static_cast<char*>(workspace(a_bytes + w_bytes + b_bytes + Gemm::kWorkspaceBytes));
  const void* a16 = bf16_operand(in, ws);
  const void* w16 = bf16_weights(W, ws + a_bytes);
  const void* b = bias.empty() ? nullptr : bias.data;
  if (b_bytes) {
    to_bf16(ws + a_bytes + w_bytes, fptr(bias), O);
    b = ws + a_bytes + w_bytes;
  }
  DUO_CU_LAUNCHED(op);
  return gemm_bf16(op, out.data, a16, false, w16, true, N, O, I, false, b, pre ? pre->data : nullptr,
                   ws + a_bytes + w_bytes + b_bytes, 0, 0, out16);
}

void CudaOps::do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear";
  check_f32(op, {&W, &bias});
  check_f32_or_bf16(op, {&in});
  check_f32_or_bf16(op, {&out});
  checks::linear(str("CudaOps::", op), out, in, W, bias);
  linear_gemm(op, out, in, W, bias, nullptr);
}

// The GELU epilogue when cuBLASLt takes it (the aux buffer's leading dimension O a multiple of 8, 16-byte aligned
// pre-activation and bias); otherwise the GEMM and the GELU kernel separately, as the default linear_gelu.
void CudaOps::do_linear_gelu(Tensor& out, Tensor& pre, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear_gelu";
  check_f32(op, {&W, &bias});
  check_f32_or_bf16(op, {&in});
  check_f32_or_bf16(op, {&out, &pre});
  const auto [N, O, I] = checks::linear(str("CudaOps::", op), pre, in, W, bias);
  check_matrix(op, "out", out, N, O);
  const bool epilogue =
      O % 8 == 0 && aligned16(pre.data) && aligned16(out.data) && (bias.empty() || aligned16(bias.data));
  const bool fused = epilogue && linear_gemm(op, out, in, W, bias, &pre);
  if (epilogue && !fused) ++epilogue_fallbacks_;  // cuBLASLt has no GELU algorithm for the shape
  if (!fused) {
    do_linear(pre, in, W, bias);
    do_gelu(out, pre);
  }
}

void CudaOps::do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                 const Tensor& W, bool accumulate_din) {
  linear_backward_gemms("linear_backward", din, dW, dbias, dout, in, W, accumulate_din, nullptr);
}

// The DGELU epilogue when cuBLASLt takes it (I a multiple of 8, 16-byte aligned dpre and pre of one dtype: the aux
// has the output's type); otherwise linear_backward's GEMMs and the GELU backward kernel on dpre in place, as the
// default gelu_linear_backward.
void CudaOps::do_gelu_linear_backward(Tensor& dpre, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                      const Tensor& W, const Tensor& pre) {
  const char* op = "gelu_linear_backward";
  check_f32_or_bf16(op, {&dpre, &pre});
  const bool epilogue = W.dim(1) % 8 == 0 && aligned16(dpre.data) && aligned16(pre.data);
  if (!linear_backward_gemms(op, dpre, dW, dbias, dout, in, W, false, epilogue ? &pre : nullptr))
    do_gelu_backward(dpre, dpre, pre);
}

bool CudaOps::linear_backward_gemms(const char* op, Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout,
                                    const Tensor& in, const Tensor& W, bool accumulate_din, const Tensor* dgelu_pre) {
  check_f32(op, {&dW, &dbias, &W});
  check_f32_or_bf16(op, {&in});
  check_f32_or_bf16(op, {&dout});
  check_f32_or_bf16(op, {&din});
  const auto [N, O, I] = checks::linear_backward(str("CudaOps::", op), din, dW, dbias, dout, in, W);
  DUO_CHECK(!(is_bf16(din) && accumulate_din), str("CudaOps::", op), "din in bf16 cannot accumulate",
            "accumulate into an fp32 din (the residual stream's gradients are fp32)");
  bool dgelu_done = false;
  if (N > 0 && O > 0 && I > 0 && (!din.empty() || !dW.empty())) {
    // dout is rounded to bf16 once for both GEMMs: din (N, I) = dout (N, O) @ W (O, I), dW (O, I) += dout^T @ in
    // (in as the forward left it, dout as the op before wrote it: already bf16 when in the activation dtype).
    const size_t d_bytes = bf16_slot_bytes(dout), w_bytes = din.empty() ? 0 : round_up(size_t(O * I) * 2),
                 i_bytes = dW.empty() ? 0 : bf16_slot_bytes(in);
    char* ws = static_cast<char*>(workspace(d_bytes + w_bytes + i_bytes + Gemm::kWorkspaceBytes));
    char *w_slot = ws + d_bytes, *in16 = w_slot + w_bytes, *gemm_ws = in16 + i_bytes;
    const void* dout16 = bf16_operand(dout, ws);
    if (!din.empty()) {
      const void* w16 = bf16_weights(W, w_slot);
      DUO_CU_LAUNCHED(op);
      // with the DGELU epilogue when asked and cuBLASLt has it for the shape, else the plain GEMM
      if (dgelu_pre) {
        dgelu_done = gemm_bf16(op, din.data, dout16, false, w16, false, N, I, O, false, nullptr, nullptr, gemm_ws, 0,
                               0, is_bf16(din), dgelu_pre->data);
        if (!dgelu_done) ++epilogue_fallbacks_;  // cuBLASLt has no DGELU algorithm for the shape
      }
      if (!dgelu_done)
        gemm_bf16(op, din.data, dout16, false, w16, false, N, I, O, accumulate_din, nullptr, nullptr, gemm_ws, 0, 0,
                  is_bf16(din));
    }
    if (!dW.empty()) {
      const void* x16 = bf16_operand(in, in16);
      DUO_CU_LAUNCHED(op);
      gemm_bf16(op, fptr(dW), dout16, true, x16, false, O, I, N, true, nullptr, nullptr, gemm_ws);
    }
  } else {  // an empty dimension: matmul's K = 0 and empty-output rules (a bf16 din of an empty sum: zeros)
    if (!din.empty() && is_bf16(din) && N * I > 0)
      DUO_CU(op, cudaMemsetAsync(din.data, 0, size_t(N * I) * 2, as_stream(stream_)));
    else if (!din.empty())
      matmul(op, fptr(din), fptr(dout), false, fptr(W), false, N, I, O, accumulate_din, nullptr);
    if (!dW.empty()) matmul(op, fptr(dW), fptr(dout), true, fptr(in), false, O, I, N, true, nullptr);
  }
  if (!dbias.empty() && O) {  // dbias (O) += column sums of dout (N, O)
    float* partial = static_cast<float*>(workspace(size_t(column_sum_chunks(N) * O) * sizeof(float)));
    if (is_bf16(dout)) add_column_sums(fptr(dbias), hptr(dout), N, int(O), partial, as_stream(stream_));
    else add_column_sums(fptr(dbias), fptr(dout), N, int(O), partial, as_stream(stream_));
    DUO_CU_LAUNCHED(op);
  }
  return dgelu_done;
}

}  // namespace duo
