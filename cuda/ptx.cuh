// Tensor-core and async-copy wrappers: the only place with inline PTX. Each wrapper has an asm path for the
// GPU (sm_80+) and an emulated path (cuda/emu/ptx_emu.h) with the per-lane layouts of the PTX ISA tables.
// Wrappers take typed pointers and convert to shared-space addresses themselves.
//
// Fragment layouts of mma.m16n8k16 with bf16 or fp16 inputs (g = lane / 4, t = lane % 4), as functions a kernel
// also uses to index its accumulators in an epilogue:
//   A 16×16 row-major, 4 registers of 2 bf16: register r holds A[a_row(l,r)][a_col(l,r) + {0,1}]
//   B 16×8  "col" (k×n), 2 registers:          register r holds B[b_row(l,r) + {0,1}][b_col(l)]
//   C/D 16×8 fp32, 4 floats:                    element i is C[c_row(l,i)][c_col(l,i)]
#pragma once
#include <cstdint>
#include <cstring>

#include "runtime.cuh"
#if !defined(__CUDACC__)
#include "emu/ptx_emu.h"
#endif

#if defined(__CUDACC__)
#define DUO_PTX __device__ __forceinline__
#define DUO_LANE_MAP __host__ __device__ constexpr
#else
#define DUO_PTX inline
#define DUO_LANE_MAP constexpr
#endif

namespace duo::ptx {

struct MmaM16N8K16 {
  static DUO_LANE_MAP int a_row(int lane, int r) { return lane / 4 + (r & 1) * 8; }
  static DUO_LANE_MAP int a_col(int lane, int r) { return lane % 4 * 2 + (r >> 1) * 8; }
  static DUO_LANE_MAP int b_row(int lane, int r) { return lane % 4 * 2 + r * 8; }
  static DUO_LANE_MAP int b_col(int lane) { return lane / 4; }
  static DUO_LANE_MAP int c_row(int lane, int i) { return lane / 4 + (i >> 1) * 8; }
  static DUO_LANE_MAP int c_col(int lane, int i) { return lane % 4 * 2 + (i & 1); }
};

// Two floats as a bf16 pair in one register (lo in the low half), the packing the fragments use.
DUO_PTX uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

#if defined(__CUDACC__)
template <class T>
DUO_PTX uint32_t smem_addr(const T* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

// Two floats as a fp16 pair in one register.
DUO_PTX uint32_t pack_f16x2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

// D = A·B + C with fp32 accumulation: mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32.
// The two input types share the fragment layout (MmaM16N8K16).
DUO_PTX void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif !defined(__CUDACC__)
  emu::MmaLane me{a, b, c, d};
  emu::warp_collective(0xffffffffu, emu::mma_op<MmaM16N8K16, __nv_bfloat16>, &me,
                       emu::Site::here("mma.sync.m16n8k16.bf16", std::source_location::current()));
#endif
}
DUO_PTX void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif !defined(__CUDACC__)
  emu::MmaLane me{a, b, c, d};
  emu::warp_collective(0xffffffffu, emu::mma_op<MmaM16N8K16, __half>, &me,
                       emu::Site::here("mma.sync.m16n8k16.f16", std::source_location::current()));
#endif
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 0..8·N-1 each give one 16-byte row.
template <int N, bool Trans, class T>
DUO_PTX void ldmatrix(uint32_t (&r)[N], const T* smem_row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  static_assert(sizeof(T) == 2, "ldmatrix moves 16-bit elements");
#if defined(__CUDA_ARCH__)
  uint32_t s = smem_addr(smem_row);
  if constexpr (N == 1 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
  if constexpr (N == 1 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
  if constexpr (N == 2 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
  if constexpr (N == 2 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
  if constexpr (N == 4 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  if constexpr (N == 4 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
#elif !defined(__CUDACC__)
  emu::LdmatrixLane me{reinterpret_cast<const uint16_t*>(smem_row), r};
  emu::warp_collective(0xffffffffu, emu::ldmatrix_op<N, Trans>, &me,
                       emu::Site::here("ldmatrix", std::source_location::current()));
#endif
}

// cp.async.ca.shared.global (Bytes = 4, 8 or 16; cached in L1) and cp.async.cg (16 bytes, L2 only).
// src_bytes < 16 reads only that many bytes and zero-fills the rest (for tails of a row).
template <int Bytes, class T>
DUO_PTX void cp_async_ca(T* smem_dst, const T* gmem_src) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src), "n"(Bytes));
#elif !defined(__CUDACC__)
  emu::cp_async(smem_dst, gmem_src, Bytes, Bytes);
#endif
}
template <class T>
DUO_PTX void cp_async_cg(T* smem_dst, const T* gmem_src, int src_bytes = 16) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(src_bytes));
#elif !defined(__CUDACC__)
  emu::cp_async(smem_dst, gmem_src, 16, unsigned(src_bytes));
#endif
}
DUO_PTX void cp_async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::);
#elif !defined(__CUDACC__)
  emu::cp_async_commit();
#endif
}
// Waits until at most N committed groups are still in flight (N = 0: all of them).
template <int N>
DUO_PTX void cp_async_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#elif !defined(__CUDACC__)
  emu::cp_async_wait(N);
#endif
}

}  // namespace duo::ptx
