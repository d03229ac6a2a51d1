// The engine's Philox (core/philox.h), which every kernel and the CPU backend draw with, is cuRAND's Philox4_32_10
// stream word for word. On a GPU (`make test-cuda`) a kernel draws with cuRAND's own device API (curand_kernel.h)
// and the host compares with duo::Philox; under the emulator the same kernel runs on the emulator's version of that
// API (cuda/emu/curand_kernel.h). Words, uniform floats and uniform doubles must be equal; normals may differ in
// their last bits on a GPU, where cuRAND's Box-Muller takes the sine and cosine from __sincosf (an absolute error
// of about 2^-21 before the radius multiplies it, at most 6.7 for a float uniform): checked to 1e-5 × the radius.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/philox.h"
#include "cuda_test_util.h"
#include "curand.cuh"

namespace {

constexpr int kWords = 9;  // words drawn one at a time after each init: crosses block ends at every offset

// Thread i: curand_init(seed, subsequence, offsets[i]), then kWords words, then (from a fresh init) a float
// uniform, a double uniform and four normals.
__global__ void draw_with_curand(unsigned long long seed, unsigned long long subsequence,
                                 const unsigned long long* offsets, int n, unsigned* words, float* uniforms,
                                 double* doubles, float* normals) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  curandStatePhilox4_32_10_t s;
  curand_init(seed, subsequence, offsets[i], &s);
  for (int k = 0; k < kWords; ++k) words[i * kWords + k] = curand(&s);
  curand_init(seed, subsequence, offsets[i], &s);
  uniforms[i] = curand_uniform(&s);
  curand_init(seed, subsequence, offsets[i], &s);
  doubles[i] = curand_uniform_double(&s);
  curand_init(seed, subsequence, offsets[i], &s);
  const float4 g = curand_normal4(&s);
  normals[4 * i] = g.x;
  normals[4 * i + 1] = g.y;
  normals[4 * i + 2] = g.z;
  normals[4 * i + 3] = g.w;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

BOOST_AUTO_TEST_CASE(philox_streams_are_curands) {
  using duo::Philox;
  const std::vector<unsigned long long> offsets = {0, 1, 2, 3, 4, 5, 7, 8, 1000, 4095, (1ull << 32) - 2,
                                                   (1ull << 34) + 3, (1ull << 62) + 1};
  const int n = int(offsets.size());
  for (const auto& [seed, subsequence] : std::vector<std::pair<unsigned long long, unsigned long long>>{
           {0, 0}, {42, 7}, {0x123456789abcdefull, (1ull << 40) + 5}, {~0ull, ~0ull}}) {
    duo::CudaOps ops;
    duo::test::DeviceBuffers buf(ops);
    duo::Tensor d_off = buf.up(std::vector<int64_t>(offsets.begin(), offsets.end()), {n});
    duo::Tensor words = buf.zeros(duo::DType::U32, {n * kWords}), uniforms = buf.zeros(duo::DType::F32, {n});
    duo::Tensor doubles = buf.zeros(duo::DType::F64, {n}), normals = buf.zeros(duo::DType::F32, {4 * n});
    DUO_LAUNCH(draw_with_curand, 1, 32, 0, static_cast<cudaStream_t>(ops.stream()))(
        seed, subsequence, static_cast<const unsigned long long*>(d_off.data), n, static_cast<unsigned*>(words.data),
        static_cast<float*>(uniforms.data), static_cast<double*>(doubles.data), static_cast<float*>(normals.data));
    DUO_CUDA_CHECK(cudaGetLastError());
    const std::vector<uint32_t> w = buf.down<uint32_t>(words);
    const std::vector<float> u = buf.down<float>(uniforms), g = buf.down<float>(normals);
    const std::vector<double> ud = buf.down<double>(doubles);
    const Philox p{seed, subsequence};
    for (int i = 0; i < n; ++i) {
      const uint64_t o = offsets[(size_t)i];
      for (int k = 0; k < kWords; ++k)
        BOOST_TEST(w[(size_t)(i * kWords + k)] == p.bits(o + (uint64_t)k),
                   "seed " << seed << " subsequence " << subsequence << ": word " << k << " after offset " << o);
      BOOST_TEST(u[(size_t)i] == p.uniform(o), "uniform at offset " << o);
      BOOST_TEST(ud[(size_t)i] == Philox::to_uniform_double(p.bits(o), p.bits(o + 1)), "uniform double at offset " << o);
      if (o % 2 == 0) BOOST_TEST(ud[(size_t)i] == p.uniform_double(o / 2), "Philox::uniform_double(" << o / 2 << ")");
      float want[4];
      Philox::box_muller(p.bits(o), p.bits(o + 1), &want[0], &want[1]);
      Philox::box_muller(p.bits(o + 2), p.bits(o + 3), &want[2], &want[3]);
      if (o % 4 == 0) {
        float block[4];
        p.normal4(o / 4, block);
        for (int k = 0; k < 4; ++k) BOOST_TEST(block[k] == want[k]);
      }
      for (int k = 0; k < 4; ++k) {
        const float radius = std::hypot(want[k & 2], want[(k & 2) + 1]);
        BOOST_TEST(std::abs(g[(size_t)(4 * i + k)] - want[k]) <= 1e-5f * std::max(radius, 1.0f),
                   "normal " << k << " at offset " << o << ": " << g[(size_t)(4 * i + k)] << " vs " << want[k]);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
