// The distillation KL head on the GPU (the CPU's kl_head.cpp): distill_kl_row of src/math/loss_distill.h per
// row, with the block walker BlockRow, so the CUDA head computes the CPU's maths.
#include "kernels/block_row.cuh"
#include "math/loss_distill.h"

namespace duo {
using namespace cuda;

namespace {

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

void CudaOps::do_kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student,
const Tensor& teacher,
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
