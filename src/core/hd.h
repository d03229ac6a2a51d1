// DUO_HD marks small math functions that both the CPU backend and CUDA kernels call (per-token loss math,
// posteriors): one definition, compiled for host and device, so the two backends cannot drift apart.
#pragma once
#if defined(__CUDACC__)
#define DUO_HD __host__ __device__ inline
#else
#define DUO_HD inline
#endif

// DUO_HD, forced inline: the row helpers that a DUO_SIMD_CLONES caller must inline to vectorise at its width
// (core/simd.h's DUO_INLINE_INTO_CLONES) and that kernels call as well.
#if defined(__CUDACC__)
#define DUO_HD_INLINE __host__ __device__ __forceinline__
#else
#define DUO_HD_INLINE __attribute__((always_inline)) inline
#endif
