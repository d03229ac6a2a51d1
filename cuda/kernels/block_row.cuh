// One block per row of a (N, V) tensor: the row walker of the per-row maths (math/loss_common.h) for the
// output-head kernels (softmax.cu, loss_head.cu, kl_head.cu), and the block size for a row of V.
#pragma once
#include <algorithm>
#include <cstdint>
#include "cuda_common.cuh"
#include "math/loss_common.h"

namespace duo::cuda {

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
inline unsigned row_threads(int64_t V) {
  return unsigned(std::min<int64_t>(kThreads, std::max<int64_t>(32, (V + 31) / 32 * 32)));
}

}  // namespace duo::cuda
