// One 16×16×16 bf16 tile through the tensor-core path a FlashAttention-2 class kernel uses:
// global → shared by cp.async, shared → fragments by ldmatrix, two mma.m16n8k16, and an epilogue that
// indexes the accumulators with the lane map.
#include "emu/examples/examples.h"
#include "ptx.cuh"

namespace duo::emu_examples {
namespace {

__global__ void mma_tile_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
  using Map = duo::ptx::MmaM16N8K16;
  DUO_SHARED(__nv_bfloat16[16], sa, 16);
  DUO_SHARED(__nv_bfloat16[16], sb, 16);
  const int lane = int(threadIdx.x);

  // 16 rows × 32 bytes per tile = 32 chunks of 16 bytes: one chunk of A and one of B per lane.
  const int row = lane / 2, col = lane % 2 * 8;
  duo::ptx::cp_async_cg(&sa[row][col], a + row * 16 + col);
  duo::ptx::cp_async_cg(&sb[row][col], b + row * 16 + col);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  __syncwarp();

  // A: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = a0..a3.
  uint32_t fa[4];
  duo::ptx::ldmatrix<4, false>(fa, &sa[lane % 16][lane / 16 * 8]);
  // B is k×n row-major; .trans turns its 8×8 blocks into the "col" fragments. Matrices: (k 0-7, n 0-7),
  // (k 8-15, n 0-7) for the first n-tile, then the same for n 8-15.
  uint32_t fb[4];
  duo::ptx::ldmatrix<4, true>(fb, &sb[lane % 8 + (lane / 8) % 2 * 8][lane / 16 * 8]);

  for (int nt = 0; nt < 2; ++nt) {
    const uint32_t bn[2] = {fb[nt * 2], fb[nt * 2 + 1]};
    const float zero[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float d[4];
    duo::ptx::mma_m16n8k16_bf16(d, fa, bn, zero);
    for (int i = 0; i < 4; ++i) c[Map::c_row(lane, i) * 16 + nt * 8 + Map::c_col(lane, i)] = d[i];
  }
}

}  // namespace

void mma_tile_16x16x16(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c, cudaStream_t stream) {
  DUO_LAUNCH(mma_tile_kernel, 1, 32, 0, stream)(a, b, c);
}

}  // namespace duo::emu_examples
