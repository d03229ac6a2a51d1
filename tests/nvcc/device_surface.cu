// Compile check, not a test case: touches every intrinsic, macro and PTX wrapper variant the emulator
// provides, so `make cuda` proves that the same kernel source compiles with nvcc (device path, inline PTX)
// and with the host compiler against cuda/emu/ (`make cuda` also runs g++ -fsyntax-only on this file).
// The kernels are never launched; their behaviour is tested under the emulator in tests/test_emu*.cpp.
#include "ptx.cuh"
#include "runtime.cuh"

struct __align__(16) Pair {
  float a, b;
};

__global__ void __launch_bounds__(256)
    surface_warp_and_block(float* f, int* i, unsigned* u, unsigned long long* ull, __nv_bfloat16* h) {
  DUO_SHARED(float, s, 256);
  DUO_SHARED(float[33], tile, 32);
  DUO_DYN_SHARED(Pair, dyn);
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  s[t] = f[t];
  tile[t % 32][t / 32] = s[t];
  dyn[t].a = s[t];
  __syncthreads();
  float v = tile[t / 32 % 32][t % 32] + dyn[t].a;
  v += __shfl_sync(0xffffffffu, v, 3);
  v += __shfl_sync(0xffffffffu, v, 3, 8);
  v += __shfl_up_sync(0xffffffffu, v, 1, 16);
  v += __shfl_down_sync(0xffffffffu, v, 2);
  v += __shfl_xor_sync(0xffffffffu, v, 4, 32);
  double d = __shfl_xor_sync(0xffffffffu, double(v), 1);
  unsigned m = __ballot_sync(0xffffffffu, v > 0.0f);
  int any = __any_sync(m | 1u, v > 1.0f), all = __all_sync(0xffffffffu, v > 2.0f);
  __syncwarp();
  __syncwarp(0x0000ffffu | (1u << (t % 32)));
  unsigned r = __reduce_add_sync(0xffffffffu, t) + __reduce_min_sync(0xffffffffu, t) +
               __reduce_max_sync(0xffffffffu, t) + __reduce_and_sync(0xffffffffu, t) +
               __reduce_or_sync(0xffffffffu, t) + __reduce_xor_sync(0xffffffffu, t);
  int cnt = __syncthreads_count(v > 0.0f) + __syncthreads_or(any) + __syncthreads_and(all);
  __threadfence();
  __threadfence_block();
  v = __expf(v) + __logf(fabsf(v) + 1.0f) + rsqrtf(v * v + 1.0f) + __fdividef(v, 3.0f) + fmaxf(v, 0.0f) +
      fminf(v, 1.0f) + __saturatef(v) + __powf(2.0f, v) + __sinf(v) + __cosf(v) + __int_as_float(__float_as_int(v));
  h[t] = __float2bfloat16(v);
  __nv_bfloat162 p = __floats2bfloat162_rn(v, float(d));
  v += __bfloat162float(h[t]) + __low2float(p) + __high2float(p) + __bfloat162float(__float2bfloat16_rn(v));
  float2 q = __bfloat1622float2(p);
  f[t] = v + q.x + q.y + float(cnt + warpSize + __popc(m) + __clz(m) + __ffs(m)) + __ldg(f + b);
  atomicAdd(f, 1.0f);
  atomicAdd(f, 0.5);  // converts, as CUDA's overloads do
  f[1] = float(min(int(t), 3) + max(t, 2u)) + min(v, 1.0f) + max(v, 0.0f);
  atomicAdd(i, 1);
  atomicAdd(u, 1u);
  atomicAdd(ull, 1ull);
  atomicMax(i, int(t));
  atomicMin(i, int(t));
  atomicMax(u, r);
  atomicExch(i, 3);
  atomicCAS(i, 3, 4);
  atomicCAS(ull, 3ull, 4ull);
}

__global__ void surface_ptx(const __nv_bfloat16* g, float* out) {
  DUO_SHARED(__nv_bfloat16[8], s, 32);
  const int l = int(threadIdx.x);
  duo::ptx::cp_async_ca<16>(&s[l][0], g + l * 8);
  duo::ptx::cp_async_ca<8>(&s[l][0], g + l * 8);
  duo::ptx::cp_async_ca<4>(&s[l][0], g + l * 8);
  duo::ptx::cp_async_cg(&s[l][0], g + l * 8);
  duo::ptx::cp_async_cg(&s[l][0], g + l * 8, 6);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<1>();
  duo::ptx::cp_async_wait<0>();
  __syncwarp();
  uint32_t r1[1], r2[2], r4[4], t1[1], t2[2], t4[4];
  duo::ptx::ldmatrix<1, false>(r1, &s[l][0]);
  duo::ptx::ldmatrix<2, false>(r2, &s[l][0]);
  duo::ptx::ldmatrix<4, false>(r4, &s[l][0]);
  duo::ptx::ldmatrix<1, true>(t1, &s[l][0]);
  duo::ptx::ldmatrix<2, true>(t2, &s[l][0]);
  duo::ptx::ldmatrix<4, true>(t4, &s[l][0]);
  const uint32_t a[4] = {r4[0] ^ t4[0], r4[1] ^ t4[1], r4[2] ^ t4[2], r4[3] ^ t4[3]};
  const uint32_t b[2] = {r2[0] ^ t2[0] ^ r1[0], r2[1] ^ t2[1] ^ t1[0]};
  const float c[4] = {0.0f, 1.0f, 2.0f, duo::ptx::pack_bf16x2(1.0f, 2.0f) * 1e-9f};
  float d[4], e[4];
  duo::ptx::mma_m16n8k16_bf16(d, a, b, c);
  duo::ptx::mma_m16n8k16_f16(e, a, b, d);
  d[0] += e[0] + float(duo::ptx::pack_f16x2(__half2float(__float2half(e[1])), 1.0f)) * 1e-9f;
  using Map = duo::ptx::MmaM16N8K16;
  for (int i = 0; i < 4; ++i) out[Map::c_row(l, i) * 8 + Map::c_col(l, i)] = d[i];
}

// Host launcher code, identical for both builds.
void surface_launch(float* f, int* i, unsigned* u, unsigned long long* ull, __nv_bfloat16* h, cudaStream_t st) {
  DUO_CUDA_CHECK(cudaFuncSetAttribute(surface_warp_and_block, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10));
  DUO_LAUNCH(surface_warp_and_block, dim3(2, 2, 1), dim3(64, 2, 2), 256 * sizeof(Pair), st)(f, i, u, ull, h);
  DUO_LAUNCH(surface_ptx, 1, 32, 0, st)(h, f);
  DUO_CUDA_CHECK(cudaGetLastError());
  DUO_CUDA_CHECK(cudaStreamSynchronize(st));
}
