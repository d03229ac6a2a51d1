// Typed warp tiles for the tensor-core kernels (mma.sync m16n8k16: bf16 operands, fp32 accumulators), so that a
// kernel's loop body reads as a handful of named tile operations. A warp owns 16 rows of every product:
//   SmemTile<C>   64 rows × C bf16 columns in shared memory (row pitch C + 8: the 8 rows one ldmatrix reads start
//                 on distinct bank groups, and each row stays 16-byte aligned for cp.async);
//   Frags<K>      the warp's 16 rows × K columns as bf16 A fragments, k-step by k-step (f[k]: columns 16k..16k+15);
//   Acc<N>        a 16 × N fp32 accumulator in the mma C layout. Lane l holds rows g = l/4 and g + 8 ("row r" = 0, 1
//                 below) and, of each 8-column n-tile n, the columns n·8 + 2(l%4) and that + 1 (element e = 0, 1):
//                 c[n][2r + e].
// The operations (block-wide where they say so, else per warp):
//   load_async(tile, src, ld, row0, n_rows)   block: cp.async 64 rows of a bf16 matrix, rows past n_rows as zeros
//   load_frags(a, tile, row0)                 the A fragments of tile rows row0..row0+15
//   mma_abt(c, a, tile)                       c = A · tileᵀ  (16 × 64: the tile's rows are the product's columns)
//   mma_ab(c, a, tile)                        c += A · tile  (A 16 × 64 from an accumulator, the tile 64 × C)
//                                             (both also for arrays c[M], a[M]: a warp's M row tiles against one
//                                             tile, each B fragment loaded once for all M)
//   to_frags(c)                               an accumulator as the next product's A operand (no data moves)
//   row_max(c, r, init), quad_max(x), quad_sum(x), scale_row(c, r, s)
//   for_each(c, f)                            f(value&, row r, column within the tile) for this lane's elements
//   for_each_with(a, b, f)                    f(a's value&, b's value, r, column) for the elements of two
// Their lane maps are those of duo::ptx::MmaM16N8K16 (checked against the PTX ISA tables in test_emu_ptx.cpp);
// tests/test_cuda_tile.cpp checks these operations against host products.
#pragma once
#include <cstdint>

#include "ptx.cuh"

namespace duo::cuda::tile {

using bf16 = __nv_bfloat16;
using Mma = duo::ptx::MmaM16N8K16;

constexpr int kRows = 64;           // rows of a shared-memory tile: 16 per warp of a 4-warp block
constexpr int kBlockThreads = 128;  // the block that loads a tile

template <int C>
using SmemTile = bf16[C + 8];  // one row; a tile is SmemTile<C>[kRows]

template <int K>
struct Frags {
  static_assert(K % 16 == 0, "A fragments come in k-steps of 16 columns");
  uint32_t f[K / 16][4];
};

template <int N>
struct Acc {
  static_assert(N % 8 == 0, "an accumulator is made of 8-column n-tiles");
  float c[N / 8][4] = {};
};

// Block-wide: issues (does not wait for) the cp.async copies of rows row0..row0+63 of a (n_rows, C) bf16 matrix
// with row stride ld. Rows past n_rows are zero-filled: their products are masked, and zero (not poison) keeps
// 0·x finite in the products that still read them.
template <int C>
__device__ __forceinline__ void load_async(SmemTile<C>* tile, const bf16* src, int ld, int row0, int n_rows) {
  constexpr int kChunks = C / 8;  // 16-byte chunks per row
  for (int i = threadIdx.x; i < kRows * kChunks; i += kBlockThreads) {
    const int r = i / kChunks, col = i % kChunks * 8;
    const bool inside = row0 + r < n_rows;
    duo::ptx::cp_async_cg(&tile[r][col], src + size_t(inside ? row0 + r : 0) * ld + col, inside ? 16 : 0);
  }
}

// The A fragments of tile rows row0..row0+15: one ldmatrix.x4 per k-step (lanes 0-15 give rows, lanes 16-31 the
// same rows' upper 8 columns).
template <int K>
__device__ __forceinline__ void load_frags(Frags<K>& a, const SmemTile<K>* tile, int row0) {
  const int lane = threadIdx.x % 32;
  for (int k = 0; k < K / 16; ++k)
    duo::ptx::ldmatrix<4, false>(a.f[k], &tile[row0 + lane % 16][k * 16 + lane / 16 * 8]);
}

// c[m] (16 × 64) = A[m] (16 × K) · Bᵀ for the warp's M row tiles, B a 64 × K tile: B's rows are the product's
// columns, so B is the "col" operand as stored and ldmatrix needs no transpose. One x4 load gives two n8-tiles of one
// k-step, and each load serves all M row tiles: a warp that owns 32 rows (M = 2) reads half the shared-memory bytes
// per mma of one that owns 16.
template <int K, int M>
__device__ __forceinline__ void mma_abt(Acc<kRows> (&c)[M], const Frags<K> (&a)[M], const SmemTile<K>* b) {
  const int lane = threadIdx.x % 32;
  for (auto& cm : c)
    for (auto& ct : cm.c)
      for (float& x : ct) x = 0.0f;
  for (int k = 0; k < K / 16; ++k)
    for (int n = 0; n < kRows / 8; n += 2) {
      uint32_t f[4];  // (n-tile n, k lo), (n, k hi), (n+1, k lo), (n+1, k hi)
      duo::ptx::ldmatrix<4, false>(f, &b[n * 8 + lane % 8 + lane / 16 * 8][k * 16 + lane / 8 % 2 * 8]);
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      for (int m = 0; m < M; ++m) {
        duo::ptx::mma_m16n8k16_bf16(c[m].c[n], a[m].f[k], b0, c[m].c[n]);
        duo::ptx::mma_m16n8k16_bf16(c[m].c[n + 1], a[m].f[k], b1, c[m].c[n + 1]);
      }
    }
}

// c[m] (16 × N) += A[m] (16 × 64) · B for M row tiles, B a 64 × N tile (k = tile row): B is row-major k × n, so
// ldmatrix.trans turns its 8 × 8 blocks into "col" fragments; each load serves all M row tiles.
template <int N, int M>
__device__ __forceinline__ void mma_ab(Acc<N> (&c)[M], const Frags<kRows> (&a)[M], const SmemTile<N>* b) {
  const int lane = threadIdx.x % 32;
  for (int k = 0; k < kRows / 16; ++k)
    for (int n = 0; n < N / 8; n += 2) {
      uint32_t f[4];  // (k lo, n-tile n), (k hi, n), (k lo, n+1), (k hi, n+1)
      duo::ptx::ldmatrix<4, true>(f, &b[k * 16 + lane % 8 + lane / 8 % 2 * 8][n * 8 + lane / 16 * 8]);
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      for (int m = 0; m < M; ++m) {
        duo::ptx::mma_m16n8k16_bf16(c[m].c[n], a[m].f[k], b0, c[m].c[n]);
        duo::ptx::mma_m16n8k16_bf16(c[m].c[n + 1], a[m].f[k], b1, c[m].c[n + 1]);
      }
    }
}

// The same products for a warp's single row tile (M = 1).
template <int K>
__device__ __forceinline__ void mma_abt(Acc<kRows>& c, const Frags<K>& a, const SmemTile<K>* b) {
  mma_abt(reinterpret_cast<Acc<kRows>(&)[1]>(c), reinterpret_cast<const Frags<K>(&)[1]>(a), b);
}
template <int N>
__device__ __forceinline__ void mma_ab(Acc<N>& c, const Frags<kRows>& a, const SmemTile<N>* b) {
  mma_ab(reinterpret_cast<Acc<N>(&)[1]>(c), reinterpret_cast<const Frags<kRows>(&)[1]>(a), b);
}

// A 16 × 64 accumulator as the bf16 A operand of the next product (its columns become k): the C layout of n-tiles
// 2k and 2k+1 is exactly the A layout of k-step k, so no data leaves the lane.
__device__ __forceinline__ Frags<kRows> to_frags(const Acc<kRows>& c) {
  Frags<kRows> a;
  for (int k = 0; k < kRows / 16; ++k) {
    a.f[k][0] = duo::ptx::pack_bf16x2(c.c[2 * k][0], c.c[2 * k][1]);          // row g,   cols 2t, 2t+1
    a.f[k][1] = duo::ptx::pack_bf16x2(c.c[2 * k][2], c.c[2 * k][3]);          // row g+8
    a.f[k][2] = duo::ptx::pack_bf16x2(c.c[2 * k + 1][0], c.c[2 * k + 1][1]);  // row g,   cols 8+2t, 8+2t+1
    a.f[k][3] = duo::ptx::pack_bf16x2(c.c[2 * k + 1][2], c.c[2 * k + 1][3]);  // row g+8
  }
  return a;
}

// f(value&, r, col) for each of this lane's elements, in n-tile order: row g + 8r of the warp's 16, column col of N.
template <int N, class F>
__device__ __forceinline__ void for_each(Acc<N>& c, F&& f) {
  const int lane = threadIdx.x % 32;
  for (int n = 0; n < N / 8; ++n)
    for (int i = 0; i < 4; ++i) f(c.c[n][i], i / 2, n * 8 + Mma::c_col(lane, i));
}

// f(a's value&, b's value, r, col) for each element of a and the one at the same place in b.
template <int N, class F>
__device__ __forceinline__ void for_each_with(Acc<N>& a, const Acc<N>& b, F&& f) {
  const int lane = threadIdx.x % 32;
  for (int n = 0; n < N / 8; ++n)
    for (int i = 0; i < 4; ++i) f(a.c[n][i], b.c[n][i], i / 2, n * 8 + Mma::c_col(lane, i));
}

// The largest of init and this lane's elements of row r (not yet across the quad: quad_max).
template <int N>
__device__ __forceinline__ float row_max(const Acc<N>& c, int r, float init) {
  for (int n = 0; n < N / 8; ++n) init = fmaxf(init, fmaxf(c.c[n][2 * r], c.c[n][2 * r + 1]));
  return init;
}

// Across the 4 lanes of a quad, which share their rows.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Row r of the accumulator times s.
template <int N>
__device__ __forceinline__ void scale_row(Acc<N>& c, int r, float s) {
  for (int n = 0; n < N / 8; ++n) {
    c.c[n][2 * r] *= s;
    c.c[n][2 * r + 1] *= s;
  }
}

}  // namespace duo::cuda::tile
