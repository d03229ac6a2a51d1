// Example kernels that prove the emulator end to end; each .cu file here compiles with nvcc too (make
// cuda-check), so the same source is what a GPU would run. They are examples, not backend ops.
#pragma once
#include "runtime.cuh"

namespace duo::emu_examples {

// y[r, :] = softmax(x[r, :]) for rows × cols fp32, one block of 128 threads per row (warp shuffles for the
// per-warp max and sum, shared memory to combine the warps). Device pointers.
void softmax_rows(const float* x, float* y, int rows, int cols, cudaStream_t stream);

// C (16×16 fp32, row-major) = A (16×16 bf16, row-major) · B (16×16 bf16, row-major, k×n): one warp loads
// both tiles with cp.async, feeds the tensor cores through ldmatrix (B transposed on the fly) and two
// m16n8k16 mma, and writes C through the accumulator lane map. Device pointers.
void mma_tile_16x16x16(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c, cudaStream_t stream);

}  // namespace duo::emu_examples
