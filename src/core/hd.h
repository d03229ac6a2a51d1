// DUO_HD marks small math functions that both the CPU backend and CUDA kernels call (per-token loss math,
// posteriors): one definition, compiled for host and device, so the two backends cannot drift apart.
#pragma once
#if defined(__CUDACC__)
#define DUO_HD __host__ __device__ inline
#else
#define DUO_HD inline
#endif
