// Row-wise softmax, the shape of most reduction kernels of the backend: a strided loop per thread, a warp
// reduction with __shfl_xor_sync, then the warps combined through shared memory.
#include "emu/examples/examples.h"

namespace duo::emu_examples {
namespace {

constexpr int kThreads = 128, kWarps = kThreads / 32;

// Reduces v over the block with op; every thread gets the result. `scratch` holds one value per warp.
template <class Op>
__device__ float block_reduce(float v, float* scratch, Op op) {
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kWarps; ++w) v = op(v, scratch[w]);
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};

__global__ void __launch_bounds__(kThreads) softmax_rows_kernel(const float* x, float* y, int cols) {
  DUO_SHARED(float, scratch, kWarps);
  const float* row = x + size_t(blockIdx.x) * cols;
  float* out = y + size_t(blockIdx.x) * cols;
  float m = -INFINITY;
  for (int c = int(threadIdx.x); c < cols; c += kThreads) m = fmaxf(m, row[c]);
  m = block_reduce(m, scratch, Max{});
  float s = 0.0f;
  for (int c = int(threadIdx.x); c < cols; c += kThreads) s += __expf(row[c] - m);
  s = block_reduce(s, scratch, Sum{});
  const float inv = __fdividef(1.0f, s);
  for (int c = int(threadIdx.x); c < cols; c += kThreads) out[c] = __expf(row[c] - m) * inv;
}

}  // namespace

void softmax_rows(const float* x, float* y, int rows, int cols, cudaStream_t stream) {
  DUO_LAUNCH(softmax_rows_kernel, rows, kThreads, 0, stream)(x, y, cols);
}

}  // namespace duo::emu_examples
