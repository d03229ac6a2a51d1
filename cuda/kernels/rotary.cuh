// Rotary position embedding's shared pieces (rotary.cu; the flash attention kernels rotate q and k as they load them,
// flash_attention.cu): the table of (cos, sin) and the rotation of one pair, with every product and sum rounded as
// written (no FMA contraction), so that a pair rotated by either kernel is the same bits.
#pragma once
#include "runtime.cuh"

namespace duo::cuda {

// (y1, y2) = (x1 c - x2 s, x2 c + x1 s): the pair (j, j + hd/2) turned by the angle whose (cos, sin) is (c, s); the
// backward passes -s.
__device__ __forceinline__ void rotate_pair(float x1, float x2, float c, float s, float& y1, float& y2) {
  y1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
  y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
}

// table[l, j] = (cos, sin)(l · 10000^(-2j/hd)) for l < L, j < hd/2, evaluated in double and rounded to fp32 (the
// CPU's table), on the stream (L·hd/2 float2).
void rotary_table(float2* table, int L, int hd, cudaStream_t stream);

}  // namespace duo::cuda
