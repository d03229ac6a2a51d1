// The per-token loss heads of the diffusion algorithms on the GPU (the CPU's loss_head.cpp): the per-row maths
// is the DUO_HD functions of src/math/loss_*.h that the CPU backend calls, run with the block walker BlockRow
// instead of the CPU's SerialRow (loss_common.h). One code path for both backends is the point: the CUDA heads
// cannot drift from the CPU's.
#include "kernels/block_row.cuh"
#include "math/loss_rows.h"

namespace duo {
using namespace cuda;

namespace {

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
      a, fptr(losses), dlogits.empty() ? nullptr : fptr(dlogits), fptr(logits), iptr(x), iptr(z),
      static_cast<const double*>(alpha.data), static_cast<const double*>(dalpha.data),
      static_cast<const double*>(weight.data), int(V));
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
