// The per-token loss heads of the diffusion algorithms on the GPU (the CPU's loss_head.cpp): the per-row maths
// is the DUO_HD functions of src/math/loss_*.h that the CPU backend calls, run with the block walker BlockRow
// instead of the CPU's SerialRow (loss_common.h). One code path for both backends is the point: the CUDA heads
// cannot drift from the CPU's.
//
// linear_loss_head is the vocabulary head of a training step fused with its loss head, a chunk of rows at a time:
// the output GEMM for the chunk (bf16 y and W, converted once per call), the loss kernel, which writes the scaled
// gradient in bf16 straight from the row function (the backward GEMMs' input, and the bias gradient's column sums', in
// the CPU's order; no fp32 gradient row) and the two backward GEMMs straight from the bf16 rows. The (N, V) fp32
// logits, their gradient and its conversions never exist (docs/architecture.md §5).
#include "backend/kernel_traffic.h"
#include "gemm.h"
#include "kernels/block_row.cuh"
#include "math/loss_rows.h"

namespace duo {
using namespace cuda;

namespace {

// Where the loss row writes its gradient (loss_common.h's sink): entry j times the row's weight, in fp32 (d32, when
// given) and its bf16 rounding (d16, when given: the backward GEMMs' operand), each written once, straight from the
// row function, so the fused head keeps no fp32 gradient row.
struct WeightedGradient {
  float* d32;
  __nv_bfloat16* d16;
  float weight;
  __device__ explicit operator bool() const { return d32 != nullptr || d16 != nullptr; }
  __device__ void set(int j, float v) const {
    const float s = v * weight;
    if (d32) d32[j] = s;
    if (d16) d16[j] = __float2bfloat16_rn(s);
  }
};

// Row n = blockIdx.x, a row of ld entries of logits (V of them used): losses[n] = ℓ(row), dlogits[n, :] = weight[n]
// dℓ/dlogits (when dlogits is given: packed rows of V) and its bf16 rounding d16[n, :] (when given: rows of ld).
__global__ void loss_head_kernel(LossHeadArgs a, float* losses, float* dlogits, __nv_bfloat16* d16,
                                 const float* logits, const int32_t* x, const int32_t* z, const double* alpha,
                                 const double* dalpha, const double* weight, int V, int64_t ld) {
  DUO_SHARED(float, scratch, 32);
  const BlockRow walk{scratch};
  const int64_t n = blockIdx.x;
  const WeightedGradient d{dlogits ? dlogits + n * V : nullptr, d16 ? d16 + n * ld : nullptr, float(weight[n])};
  const float loss = loss_row<float, BlockRow, WeightedGradient>(a, logits + n * ld, V, valid_id(x[n], V),
                                                                 valid_id(z[n], V), alpha[n], dalpha[n], d, walk);
  if (threadIdx.x == 0) losses[n] = loss;
}

}  // namespace

void CudaOps::do_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits,
const Tensor& x,
                           const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const char* op = "loss_head";
  check_f32(op, {&logits, &losses, &dlogits});
  for (const Tensor* t : {&x, &z, &alpha, &dalpha, &weight}) check_on_device(op, *t);
  const auto [N, V] = checks::loss_head(str("CudaOps::", op), losses, dlogits, logits, x, z, alpha, dalpha, weight);
  check_ids(op, x, V);
  check_ids(op, z, V);
  if (N == 0) return;
  DUO_LAUNCH(loss_head_kernel, unsigned(N), row_threads(V), 0, as_stream(stream_))(
      a, fptr(losses), dlogits.empty() ? nullptr : fptr(dlogits), nullptr, fptr(logits), iptr(x), iptr(z),
      static_cast<const double*>(alpha.data), static_cast<const double*>(dalpha.data),
      static_cast<const double*>(weight.data), int(V), V);
  DUO_CU_LAUNCHED(op);
}

int64_t CudaOps::default_vocab_chunk_rows(int64_t V, DType) const { return cuda_vocab_chunk_rows(V); }

void CudaOps::do_linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                                  const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x,
                                  const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const char* op = "linear_loss_head";
  check_f32(op, {&losses, &dy, &dW, &dbias, &y, &W, &bias});
  for (const Tensor* t : {&x, &z, &alpha, &dalpha, &weight}) check_on_device(op, *t);
  const auto [N, D, V] = checks::linear_loss_head(str("CudaOps::", op), losses, dy, dW, dbias, y, W, bias, x, z,
                                                  alpha, dalpha, weight);
  check_ids(op, x, V);
  check_ids(op, z, V);
  if (N == 0) return;
  const int64_t C = std::min(N, vocab_chunk_rows(V, DType::F32)), ld = cuda_vocab_ld(V);
  const bool backward = !dy.empty();
  // One workspace request: y and W in bf16, a chunk's logits (rows padded to ld entries: aligned rows for the
  // GEMMs' tensor-core paths), and for the backward its gradient in bf16 (rows of ld; the loss kernel writes nothing
  // else of it) and the column sums' partial rows; then cuBLASLt's scratch.
  const bool copy_bias = !bias.empty() && !aligned16(bias.data);
  const size_t y_bytes = round_up(size_t(N * D) * 2), w_bytes = round_up(size_t(V * D) * 2) +
                                                                (copy_bias ? round_up(size_t(V) * 4) : 0),
               l_bytes = round_up(size_t(C * ld) * 4), h_bytes = backward ? round_up(size_t(C * ld) * 2) : 0,
               p_bytes = backward && !dbias.empty() ? round_up(size_t(column_sum_chunks(C) * V) * 4) : 0;
  char* ws = static_cast<char*>(workspace(y_bytes + w_bytes + l_bytes + h_bytes + p_bytes + Gemm::kWorkspaceBytes));
  char *y16 = ws, *w_slot = y16 + y_bytes, *h16 = w_slot + w_bytes + l_bytes;
  float* logits = reinterpret_cast<float*>(w_slot + w_bytes);
  float* partial = reinterpret_cast<float*>(h16 + h_bytes);
  char* gemm_ws = h16 + h_bytes + p_bytes;
  cudaStream_t s = as_stream(stream_);
  to_bf16(y16, fptr(y), N * D);
  const void* w16 = bf16_weights(W, w_slot);  // W's working copy, or rounded into its slot
  DUO_CU_LAUNCHED(op);
  // The bias goes through the GEMM's epilogue, which needs it 16-byte aligned: else an aligned copy of it.
  const float* b = bias.empty() ? nullptr : fptr(bias);
  if (copy_bias) {
    float* aligned = reinterpret_cast<float*>(w_slot + round_up(size_t(V * D) * 2));
    DUO_CU(op, cudaMemcpyAsync(aligned, b, size_t(V) * 4, cudaMemcpyDeviceToDevice, s));
    b = aligned;
  }
  for (int64_t r0 = 0; r0 < N; r0 += C) {
    const int64_t n = std::min(C, N - r0);
    char* yc = y16 + size_t(r0 * D) * 2;
    // logits (n, V; rows of ld) = y (n, D) W^T + bias
    gemm_bf16(op, logits, yc, false, w16, true, n, V, D, false, b, nullptr, gemm_ws, 0, ld);
    DUO_LAUNCH(loss_head_kernel, unsigned(n), row_threads(V), 0, s)(
        a, fptr(losses) + r0, nullptr, backward ? reinterpret_cast<__nv_bfloat16*>(h16) : nullptr, logits, iptr(x) + r0,
        iptr(z) + r0, static_cast<const double*>(alpha.data) + r0, static_cast<const double*>(dalpha.data) + r0,
        static_cast<const double*>(weight.data) + r0, int(V), ld);
    DUO_CU_LAUNCHED(op);
    if (!backward) continue;
    if (!dbias.empty()) {
      add_column_sums(fptr(dbias), reinterpret_cast<const __nv_bfloat16*>(h16), n, int(V), partial, s, ld);
      DUO_CU_LAUNCHED(op);
    }
    // dy (n, D) = dlogits (n, V) W (V, D); dW (V, D) += dlogits^T (V, n) y (n, D)
    gemm_bf16(op, fptr(dy) + r0 * D, h16, false, w16, false, n, D, V, false, nullptr, nullptr, gemm_ws, ld);
    gemm_bf16(op, fptr(dW), h16, true, yc, false, V, D, n, true, nullptr, nullptr, gemm_ws, ld);
  }
}

}  // namespace duo
