// Output heads: row-wise log-softmax (and its backward), the fused cross-entropy, and the per-token loss heads
// of the diffusion algorithms. fp32; every row is stabilised by its maximum.
//
// Every kernel here gives one block to one row (V may be 50k): the block's threads walk the row with a stride
// (coalesced reads) and combine sums and maxima by block reductions.
// loss_head and kl_head: the per-row maths is the DUO_HD functions of src/algo/loss_*.h that the CPU backend
// calls, run with the block walker BlockRow instead of the CPU's SerialRow (loss_common.h). One code path for
// both backends is the point: the CUDA heads cannot drift from the CPU's.
#include "algo/loss_distill.h"
#include "algo/loss_rows.h"
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

// The row walker of a block (loss_common.h): thread t visits t, t + blockDim.x, …; sums and maxima are block
// reductions (fixed trees, so schedule-independent). scratch: 32 floats of shared memory.
struct BlockRow {
  float* scratch;
  __device__ int first() const { return int(threadIdx.x); }
  __device__ int step() const { return int(blockDim.x); }
  __device__ bool owns(int j) const { return j >= 0 && j % int(blockDim.x) == int(threadIdx.x); }
  __device__ float sum(float v) const { return block_sum(v, scratch); }
  __device__ float max(float v) const { return block_max(v, scratch); }
};

// Threads per row: a multiple of 32 (the reductions' warps), no more than the row needs, at most kThreads.
unsigned row_threads(int64_t V) {
  return unsigned(std::min<int64_t>(kThreads, std::max<int64_t>(32, (V + 31) / 32 * 32)));
}

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
  const int t = targets[n];
  const float lse = block_logsumexp(x, V, scratch);
  if (threadIdx.x == 0) losses[n] = lse - x[t];
  if (!dlogits) return;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
    dlogits[n * V + j] = g * expf(x[j] - lse) - (j == t ? g : 0.0f);
}

// Row n = blockIdx.x: losses[n] = ℓ(row), dlogits[n, :] = weight[n] dℓ/dlogits (when dlogits is given). Each
// thread scales the gradient entries it wrote itself (same walk), so no barrier is needed before the scaling.
__global__ void loss_head_kernel(LossHeadArgs a, float* losses, float* dlogits, const float* logits,
                                 const int32_t* x, const int32_t* z, const double* alpha, const double* dalpha,
                                 const double* weight, int V) {
  DUO_SHARED(float, scratch, 32);
  const BlockRow walk{scratch};
  const int64_t n = blockIdx.x;
  float* d = dlogits ? dlogits + n * V : nullptr;
  const float loss = loss_row<float>(a, logits + n * V, V, x[n], z[n], alpha[n], dalpha[n], d, walk);
  if (threadIdx.x == 0) losses[n] = loss;
  if (d)
    for (int j = walk.first(); j < V; j += walk.step()) d[j] *= float(weight[n]);
}

// Row n = blockIdx.x: losses[n] = KL of the row pair, dstudent[n, :] = weight[n] dKL/dstudent (when given).
__global__ void kl_head_kernel(bool forward_kl, float* losses, float* dstudent, const float* student,
                               const float* teacher, const double* weight, int V) {
  DUO_SHARED(float, scratch, 32);
  const BlockRow walk{scratch};
  const int64_t n = blockIdx.x;
  float* d = dstudent ? dstudent + n * V : nullptr;
  const float kl = distill_kl_row(student + n * V, teacher + n * V, V, forward_kl, d, walk);
  if (threadIdx.x == 0) losses[n] = kl;
  if (d)
    for (int j = walk.first(); j < V; j += walk.step()) d[j] *= float(weight[n]);
}

}  // namespace

void CudaOps::log_softmax(Tensor& out, const Tensor& logits) {
  const char* op = "log_softmax";
  check_f32(op, {&out, &logits});
  const auto [N, V] = checks::log_softmax(str("CudaOps::", op), out, logits);
  if (N) DUO_LAUNCH(log_softmax_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(fptr(out), fptr(logits), int(V));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) {
  const char* op = "log_softmax_backward";
  check_f32(op, {&dlogits, &dout, &out});
  const auto [N, V] = checks::log_softmax_backward(str("CudaOps::", op), dlogits, dout, out);
  if (N)
    DUO_LAUNCH(log_softmax_backward_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(fptr(dlogits), fptr(dout),
                                                                                          fptr(out), int(V));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
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

void CudaOps::loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& x,
                        const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) {
  const char* op = "loss_head";
  check_f32(op, {&logits, &losses, &dlogits});
  for (const Tensor* t : {&x, &z, &alpha, &dalpha, &weight}) check_on_device(op, *t);
  const auto [N, V] = checks::loss_head(str("CudaOps::", op), losses, dlogits, logits, x, z, alpha, dalpha, weight);
  check_ids(op, x, V);
  check_ids(op, z, V);
  if (N == 0) return;
  DUO_LAUNCH(loss_head_kernel, unsigned(N), row_threads(V), 0, as_stream(stream_))(
      a, fptr(losses), dlogits.empty() ? nullptr : fptr(dlogits), fptr(logits), iptr(x), iptr(z),
      static_cast<const double*>(alpha.data), static_cast<const double*>(dalpha.data),
      static_cast<const double*>(weight.data), int(V));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student, const Tensor& teacher,
                      const Tensor& weight) {
  const char* op = "kl_head";
  check_f32(op, {&student, &teacher, &losses, &dstudent});
  check_on_device(op, weight);
  const auto [N, V] = checks::kl_head(str("CudaOps::", op), losses, dstudent, student, teacher, weight);
  if (N == 0) return;
  DUO_LAUNCH(kl_head_kernel, unsigned(N), row_threads(V), 0, as_stream(stream_))(
      dir == KlDirection::Forward, fptr(losses), dstudent.empty() ? nullptr : fptr(dstudent), fptr(student),
      fptr(teacher), static_cast<const double*>(weight.data), int(V));
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
