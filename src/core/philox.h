// Counter-based Philox4x32-10 random numbers, bit-compatible with cuRAND's curandStatePhilox4_32_10_t.
//
// Why counter-based: element i of a random tensor is a pure function of (seed, subsequence, i), so the CPU
// backend, the CUDA emulator and a real GPU draw identical numbers for the same seed and offset, in any order
// and on any number of threads. A "stream" (Philox) is one (seed, subsequence) pair; subsequence separates
// uses (dropout of block 3 at step 1200, the noise of a loss, ...).
//
// Mapping to cuRAND: Philox{seed, subseq}.bits(i) equals the first curand() after
// curand_init(seed, subseq, i, &state); uniform(i) equals curand_uniform after the same init;
// normal4(j) equals curand_normal4 after curand_init(seed, subseq, 4*j, &state).
//
// Every member is DUO_HD: CUDA kernels (dropout, sampling) call the same code on the device, so the streams
// are identical by construction rather than by a cuRAND-vs-host comparison.
#pragma once
#include <cmath>
#include <cstdint>
#include "core/hd.h"

namespace duo {

struct PhiloxBlock { uint32_t v[4]; };

DUO_HD PhiloxBlock philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += W0; k1 += W1; }
    uint64_t p0 = (uint64_t)M0 * c0, p1 = (uint64_t)M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

struct Philox {
  uint64_t seed = 0;
  uint64_t subsequence = 0;

  // The four 32-bit words of counter block j (= offsets 4j .. 4j+3 of this stream).
  DUO_HD PhiloxBlock block(uint64_t j) const {
    return philox4x32_10((uint32_t)j, (uint32_t)(j >> 32), (uint32_t)subsequence, (uint32_t)(subsequence >> 32),
                         (uint32_t)seed, (uint32_t)(seed >> 32));
  }
  DUO_HD uint32_t bits(uint64_t i) const { return block(i >> 2).v[i & 3]; }
  // In (0, 1]: cuRAND's curand_uniform (never 0, so log(u) is safe).
  DUO_HD float uniform(uint64_t i) const { return to_uniform(bits(i)); }
  // In (0, 1) with 53 random bits from words 2j and 2j+1 of the stream: cuRAND's curand_uniform_double
  // after curand_init(seed, subseq, 2*j) when the pair lies in one block (always true: 2j is even).
  DUO_HD double uniform_double(uint64_t j) const {
    PhiloxBlock b = block((2 * j) >> 2);
    int k = (int)((2 * j) & 3);
    return to_uniform_double(b.v[k], b.v[k + 1]);
  }
  // Four standard normals from block j (Box-Muller on the word pairs (x,y) and (z,w)), as curand_normal4.
  DUO_HD void normal4(uint64_t j, float out[4]) const {
    PhiloxBlock b = block(j);
    box_muller(b.v[0], b.v[1], &out[0], &out[1]);
    box_muller(b.v[2], b.v[3], &out[2], &out[3]);
  }
  // Standard normal number i of the stream (element i of normal4's output order).
  DUO_HD float normal(uint64_t i) const {
    float o[4];
    normal4(i >> 2, o);
    return o[i & 3];
  }

  DUO_HD static float to_uniform(uint32_t x) {
    constexpr float inv = 2.3283064e-10f;  // 2^-32
    return x * inv + inv / 2.0f;
  }
  DUO_HD static double to_uniform_double(uint32_t x, uint32_t y) {
    constexpr double inv53 = 1.1102230246251565e-16;  // 2^-53
    uint64_t z = (uint64_t)x ^ ((uint64_t)y << (53 - 32));
    return (double)z * inv53 + inv53 / 2.0;
  }
  DUO_HD static void box_muller(uint32_t x, uint32_t y, float* r0, float* r1) {
    constexpr float inv = 2.3283064e-10f;  // 2^-32
    constexpr float two_pi = 6.2831855f;
    float u = x * inv + inv / 2.0f;
    float v = y * (inv * two_pi) + (inv * two_pi) / 2.0f;
    float s = std::sqrt(-2.0f * std::log(u));
    *r0 = std::sin(v) * s;
    *r1 = std::cos(v) * s;
  }
};

// Mixes several ids (step, layer, purpose) into one subsequence number, so streams never collide by accident.
inline uint64_t stream_id(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  auto mix = [](uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 27; x *= 0x94d049bb133111ebull; x ^= x >> 31;
    return x;
  };
  return mix(mix(mix(a) ^ b) ^ c);
}

}  // namespace duo
