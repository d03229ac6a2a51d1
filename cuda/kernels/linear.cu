// Dense layers out = in W^T + b (W is (O, I), PyTorch's layout) and their backward, on the bf16 GEMM of
// gemm.h: fp32 activations and weights are rounded to bf16 in the workspace, products accumulate in fp32 and
// the outputs are fp32 (the fp32 master weights and residual stream never lose precision). The bias is the
// GEMM's epilogue when 16-byte aligned (cuBLASLt's requirement), otherwise a separate pass. The bias gradient
// is a column sum, one thread per column over the rows in order: deterministic, and the CPU's order exactly.
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

// dbias[o] += sum_n dout[n, o], rows in order; one thread per column (coalesced across o)     dout: (N, O)
__global__ void bias_backward_kernel(float* dbias, const float* dout, int64_t N, int O) {
  const int o = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (o >= O) return;
  float acc = 0.0f;
  for (int64_t n = 0; n < N; ++n) acc += dout[n * O + o];
  dbias[o] += acc;
}

constexpr size_t kAlign = 256;
size_t round_up(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

void check_weight(const char* op, const Tensor& W) {
  check_present(op, "W", W);
  DUO_CHECK(W.ndim == 2 && W.is_contiguous(), str("CudaOps::", op),
            str("W ", W.shape_str(), " must be a contiguous (O, I) matrix"), "");
}

}  // namespace

void CudaOps::matmul(const char* op, float* C, const float* A, bool ta, const float* B, bool tb, int64_t M,
                     int64_t N, int64_t K, bool accumulate, const float* bias) {
  if (M == 0 || N == 0) return;
  const size_t a_bytes = round_up(size_t(M * K) * 2), b_bytes = round_up(size_t(K * N) * 2);
  char* ws = static_cast<char*>(workspace(a_bytes + b_bytes + Gemm::kWorkspaceBytes));
  auto* a16 = reinterpret_cast<__nv_bfloat16*>(ws);
  auto* b16 = reinterpret_cast<__nv_bfloat16*>(ws + a_bytes);
  cudaStream_t s = as_stream(stream_);
  if (M * K > 0) DUO_LAUNCH(to_bf16_kernel, blocks_for(M * K), kThreads, 0, s)(a16, A, M * K);
  if (K * N > 0) DUO_LAUNCH(to_bf16_kernel, blocks_for(K * N), kThreads, 0, s)(b16, B, K * N);
  DUO_CU_LAUNCHED(op);
  const bool fused_bias = bias && reinterpret_cast<uintptr_t>(bias) % 16 == 0;
  GemmArgs g;
  g.ta = ta, g.tb = tb, g.M = M, g.N = N, g.K = K, g.A = a16, g.B = b16, g.C = C;
  g.beta = accumulate ? 1.0f : 0.0f;
  g.bias = fused_bias ? bias : nullptr;
  gemm_->run(op, g, ws + a_bytes + b_bytes, s);
  if (bias && !fused_bias) {
    DUO_LAUNCH(add_bias_kernel, blocks_for(M * N), kThreads, 0, s)(C, bias, M, int(N));
    DUO_CU_LAUNCHED(op);
  }
}

void CudaOps::linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear";
  check_f32(op, {&out, &in, &W, &bias});
  check_weight(op, W);
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(in);
  check_matrix(op, "in", in, N, I);
  check_matrix(op, "out", out, N, O);
  if (!bias.empty()) check_numel(op, "bias", bias, O);
  // (N, I) x (O, I)^T -> (N, O)
  matmul(op, fptr(out), fptr(in), false, fptr(W), true, N, O, I, false, bias.empty() ? nullptr : fptr(bias));
}

void CudaOps::linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                              const Tensor& W, bool accumulate_din) {
  const char* op = "linear_backward";
  check_f32(op, {&dout, &din, &dW, &dbias, &in, &W});
  check_weight(op, W);
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(dout);
  check_matrix(op, "dout", dout, N, O);
  if (!din.empty()) check_matrix(op, "din", din, N, I);
  if (!dW.empty()) {
    check_matrix(op, "dW", dW, O, I);
    check_matrix(op, "in", in, N, I);
  }
  if (!dbias.empty()) check_numel(op, "dbias", dbias, O);
  if (!din.empty())  // din (N, I) = dout (N, O) @ W (O, I)
    matmul(op, fptr(din), fptr(dout), false, fptr(W), false, N, I, O, accumulate_din, nullptr);
  if (!dW.empty())  // dW (O, I) += dout^T (O, N) @ in (N, I)
    matmul(op, fptr(dW), fptr(dout), true, fptr(in), false, O, I, N, true, nullptr);
  if (!dbias.empty() && O) {
    DUO_LAUNCH(bias_backward_kernel, blocks_for(O), kThreads, 0, as_stream(stream_))(fptr(dbias), fptr(dout), N,
                                                                                    int(O));
    DUO_CU_LAUNCHED(op);
  }
}

}  // namespace duo
