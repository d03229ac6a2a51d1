// Row-wise log-softmax (and its backward) and the fused cross-entropy (the CPU's softmax.cpp). fp32; every row
// is stabilised by its maximum. One block per row (V may be 50k): the block's threads walk the row with a stride
// (coalesced reads) and combine sums and maxima by block reductions (kernels/block_row.cuh).
#include "kernels/block_row.cuh"

namespace duo {
using namespace cuda;

namespace {

// log sum_j exp(x_j) of one row, by the whole block.
__device__ float block_logsumexp(const float* x, int V, float* scratch) {
  return row_logsumexp(x, V, -1, MaskLogit::Keep, BlockRow{scratch});
}

// out[n, j] = x[n, j] - lse_n; grid (N).                                                     (N, V)
__global__ void log_softmax_kernel(float* out, const float* logits, int V) {
  DUO_SHARED(float, scratch, 32);
  const float* x = logits + int64_t(blockIdx.x) * V;
  float* y = out + int64_t(blockIdx.x) * V;
  const float lse = block_logsumexp(x, V, scratch);
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) y[j] = x[j] - lse;
}

// dx = dy - exp(y) sum(dy); grid (N).
__global__ void log_softmax_backward_kernel(float* dx, const float* dy, const float* y, int V) {
  DUO_SHARED(float, scratch, 32);
  const int64_t row = int64_t(blockIdx.x) * V;
  float s = 0.0f;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) s += dy[row + j];
  s = block_sum(s, scratch);
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) dx[row + j] = dy[row + j] - expf(y[row + j]) * s;
}

// losses[n] = lse - x[target]; dlogits = g (softmax - onehot(target)) when requested. grid (N).
__global__ void cross_entropy_kernel(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                     float g, int V) {
  DUO_SHARED(float, scratch, 32);
  const int64_t n = blockIdx.x;
  const float* x = logits + n * V;
  const int t = valid_id(targets[n], V);
  const float lse = block_logsumexp(x, V, scratch);
  if (threadIdx.x == 0) losses[n] = lse - x[t];
  if (!dlogits) return;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
    dlogits[n * V + j] = g * expf(x[j] - lse) - (j == t ? g : 0.0f);
}

}  // namespace

void CudaOps::do_log_softmax(Tensor& out, const Tensor& logits) {
  const char* op = "log_softmax";
  check_f32(op, {&out, &logits});
  const auto [N, V] = checks::log_softmax(str("CudaOps::", op), out, logits);
  if (N) DUO_LAUNCH(log_softmax_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(fptr(out), fptr(logits), int(V));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) {
  const char* op = "log_softmax_backward";
  check_f32(op, {&dlogits, &dout, &out});
  const auto [N, V] = checks::log_softmax_backward(str("CudaOps::", op), dlogits, dout, out);
  if (N)
    DUO_LAUNCH(log_softmax_backward_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(fptr(dlogits), fptr(dout),
                                                                                          fptr(out), int(V));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                               double grad_scale) {
  const char* op = "cross_entropy";
  check_f32(op, {&losses, &dlogits, &logits});
  check_on_device(op, targets);
  const auto [N, V] = checks::cross_entropy(str("CudaOps::", op), losses, dlogits, logits, targets);
  check_ids(op, targets, V);
  if (N)
    DUO_LAUNCH(cross_entropy_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(
        fptr(losses), dlogits.empty() ? nullptr : fptr(dlogits), fptr(logits), iptr(targets), float(grad_scale),
        int(V));
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
