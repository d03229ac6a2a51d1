// Emulated definitions of the tensor-core and async-copy instructions wrapped by cuda/ptx.cuh. The lane
// layouts come from the constexpr maps in ptx.cuh (the PTX ISA's fragment tables), so the emulator and the
// kernels' epilogues read the same definition.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "emu/emu.h"
#include "emu/types.h"

namespace duo::emu {

// The two 16-bit elements of a fragment register (the lower index in the low half), as floats.
template <class E>
float elem_lo(uint32_t r) {
  E e;
  uint16_t u = uint16_t(r);
  std::memcpy(&e, &u, 2);
  return float(e);
}
template <class E>
float elem_hi(uint32_t r) {
  return elem_lo<E>(r >> 16);
}

// ldmatrix: lane l (of the first 8·count) gives the address of row l%8 of matrix l/8; afterwards register m
// of lane l holds the two 16-bit elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of matrix m, or of its transpose.
struct LdmatrixLane {
  const uint16_t* row;
  uint32_t* regs;
};
template <int count, bool trans>
void ldmatrix_op(void* const lanes[32], unsigned active) {
  if (active != ~0u)
    fail("", "ldmatrix needs all 32 lanes of the warp", "run it in full warps, outside divergent code");
  device().memory().add_fragment_bytes(128u * count);  // for the traffic counter (traffic.h)
  for (int l = 0; l < 8 * count; ++l)  // the lanes that give row addresses: each a 16-byte row
    if (reinterpret_cast<uintptr_t>(static_cast<LdmatrixLane*>(lanes[l])->row) % 16 != 0)
      fail("", str("ldmatrix: lane ", l, "'s row address is not 16-byte aligned (misaligned address on a GPU)"),
           "pad shared-memory rows to a multiple of 8 16-bit elements");
  for (int l = 0; l < 32; ++l) {
    auto* me = static_cast<LdmatrixLane*>(lanes[l]);
    for (int m = 0; m < count; ++m) {
      int r = l / 4, c = 2 * (l % 4);
      auto elem = [&](int row, int col) { return uint32_t(static_cast<LdmatrixLane*>(lanes[m * 8 + row])->row[col]); };
      me->regs[m] = trans ? elem(c, r) | elem(c + 1, r) << 16 : elem(r, c) | elem(r, c + 1) << 16;
    }
  }
}

// mma m16n8k16 row.col {bf16,f16} → f32: gathers A (16×16), B (16×8) and C (16×8) from the 32 lanes'
// fragments, computes D = A·B + C in fp32 (16-bit products are exact in fp32; the sum runs in k order; a
// tensor core may differ in the last bits), and scatters D back. E is the input element type.
struct MmaLane {
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
  float* d;
};
template <class Map, class E>
void mma_op(void* const lanes[32], unsigned active) {
  if (active != ~0u)
    fail("", "mma.sync needs all 32 lanes of the warp", "run it in full warps, outside divergent code");
  device().memory().add_tensor_flops(2.0 * 16 * 8 * 16);  // for the traffic counter (traffic.h)
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    const auto* me = static_cast<MmaLane*>(lanes[l]);
    for (int r = 0; r < 4; ++r) {
      A[Map::a_row(l, r)][Map::a_col(l, r)] = elem_lo<E>(me->a[r]);
      A[Map::a_row(l, r)][Map::a_col(l, r) + 1] = elem_hi<E>(me->a[r]);
      C[Map::c_row(l, r)][Map::c_col(l, r)] = me->c[r];
    }
    for (int r = 0; r < 2; ++r) {
      B[Map::b_row(l, r)][Map::b_col(l)] = elem_lo<E>(me->b[r]);
      B[Map::b_row(l, r) + 1][Map::b_col(l)] = elem_hi<E>(me->b[r]);
    }
  }
  for (int l = 0; l < 32; ++l) {
    auto* me = static_cast<MmaLane*>(lanes[l]);
    for (int r = 0; r < 4; ++r) {
      int i = Map::c_row(l, r), j = Map::c_col(l, r);
      float s = 0.0f;
      for (int k = 0; k < 16; ++k) s += A[i][k] * B[k][j];
      me->d[r] = s + C[i][j];
    }
  }
}

// cp.async: the source is read at issue, the destination written only when a wait_group covers the copy, so
// a kernel that forgets the wait reads poisoned shared memory.
inline void cp_async(void* dst, const void* src, unsigned size, unsigned src_size) {
  if (src_size > size)
    fail("", str("cp.async reads ", src_size, " source bytes into a ", size, "-byte copy"),
         "src_bytes is 0..16: the bytes past it are zero-filled");
  if (reinterpret_cast<uintptr_t>(dst) % size != 0 || reinterpret_cast<uintptr_t>(src) % size != 0)
    fail("", str("cp.async of ", size, " bytes from or to an address not aligned to ", size,
                 " (misaligned address on a GPU)"),
         "copy whole aligned chunks: 16-byte rows for cp.async.cg");
  if (src_size > 0 && !device().memory().holds(src, src_size))
    fail("", "cp.async reads a source outside device memory", "its source is global memory (cudaMalloc)");
  CopyInFlight c{dst, {}, size};
  std::memcpy(c.bytes, src, src_size);  // bytes past src_size stay zero (the zero-fill form)
  cur().copies.push_back(c);
}
inline void cp_async_commit() {
  ThreadCtx& t = cur();
  t.group_ends.push_back(t.copies.size());
}
inline void cp_async_wait(size_t n_pending) {
  ThreadCtx& t = cur();
  if (t.group_ends.size() <= n_pending) return;
  size_t done_groups = t.group_ends.size() - n_pending, landed = t.group_ends[done_groups - 1];
  for (size_t i = 0; i < landed; ++i) std::memcpy(t.copies[i].dst, t.copies[i].bytes, t.copies[i].size);
  t.copies.erase(t.copies.begin(), t.copies.begin() + landed);
  t.group_ends.erase(t.group_ends.begin(), t.group_ends.begin() + done_groups);
  for (auto& e : t.group_ends) e -= landed;
}

}  // namespace duo::emu
