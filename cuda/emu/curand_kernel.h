// cuRAND's device API for the Philox4_32_10 generator, under the emulator (a kernel includes cuda/curand.cuh, which
// is <curand_kernel.h> under nvcc and this header otherwise). Written from cuRAND's documented behaviour, on the
// engine's Philox4x32-10 (core/philox.h):
//  * curand_init(seed, subsequence, offset, &s): key = the seed's two 32-bit halves; the 128-bit counter starts at
//    (offset / 4) in its low 64 bits and subsequence in its high 64 bits; the state then stands at word offset % 4
//    of that counter's block, so the stream is the words of blocks 0, 1, 2 ... in order, as Philox{seed,
//    subsequence}.bits(i) numbers them;
//  * curand() returns the next word; curand4() the next four (across a block's end when not aligned);
//  * curand_uniform, curand_uniform_double (two words, 53 bits) and curand_normal4 (Box-Muller on the pairs of
//    curand4) map words to numbers as Philox::to_uniform, to_uniform_double and box_muller do.
// tests/test_cuda_curand.cpp checks these against the engine's Philox here, and against the real cuRAND on a GPU.
#pragma once
#include <cstdint>

#include "core/philox.h"
#include "emu/types.h"

struct curandStatePhilox4_32_10_t {
  uint64_t seed = 0, subsequence = 0;
  uint64_t next = 0;  // index of the next word of the stream
};

inline void curand_init(unsigned long long seed, unsigned long long subsequence, unsigned long long offset,
                        curandStatePhilox4_32_10_t* state) {
  state->seed = seed;
  state->subsequence = subsequence;
  state->next = offset;
}

inline unsigned int curand(curandStatePhilox4_32_10_t* state) {
  return duo::Philox{state->seed, state->subsequence}.bits(state->next++);
}

inline uint4 curand4(curandStatePhilox4_32_10_t* state) {
  const unsigned x = curand(state), y = curand(state), z = curand(state), w = curand(state);
  return make_uint4(x, y, z, w);
}

inline float curand_uniform(curandStatePhilox4_32_10_t* state) { return duo::Philox::to_uniform(curand(state)); }

inline double curand_uniform_double(curandStatePhilox4_32_10_t* state) {
  const unsigned x = curand(state), y = curand(state);
  return duo::Philox::to_uniform_double(x, y);
}

inline float4 curand_normal4(curandStatePhilox4_32_10_t* state) {
  const uint4 b = curand4(state);
  float4 r;
  duo::Philox::box_muller(b.x, b.y, &r.x, &r.y);
  duo::Philox::box_muller(b.z, b.w, &r.z, &r.w);
  return r;
}
