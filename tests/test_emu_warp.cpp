// Warp-level semantics of the SIMT emulator: every shuffle mode and width against a table written from the
// CUDA programming guide's rules, votes and reductions with masks, partial warps, divergent warp operations,
// and the bf16 type's rounding.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "emu_test_util.h"
#include "runtime.cuh"

using duo::testing::DeviceVec;
using duo::testing::error_of;

namespace {

enum Mode { kIdx, kUp, kDown, kXor };

// Each lane contributes 100 + lane; out[lane] = the value it received.
__global__ void shuffle(int mode, int b, int width, int* out) {
  int lane = int(threadIdx.x), v = 100 + lane, r = 0;
  switch (mode) {
    case kIdx: r = __shfl_sync(0xffffffffu, v, b, width); break;
    case kUp: r = __shfl_up_sync(0xffffffffu, v, unsigned(b), width); break;
    case kDown: r = __shfl_down_sync(0xffffffffu, v, unsigned(b), width); break;
    default: r = __shfl_xor_sync(0xffffffffu, v, b, width); break;
  }
  out[lane] = r;
}

// The source lane by the programming guide's prose (independent of the emulator's PTX-style formula).
int expected_source(int mode, int lane, int b, int width) {
  int seg = lane / width * width;
  switch (mode) {
    case kIdx: return seg + b % width;
    case kUp: return lane % width >= b ? lane - b : lane;
    case kDown: return lane % width + b < width ? lane + b : lane;
    default: {
      int j = lane ^ b;
      return j < seg + width ? j : lane;  // earlier segments may be read, later ones give the own value
    }
  }
}

// Votes with a mask of the even lanes, called only by the even lanes.
__global__ void votes_even_lanes(unsigned* out) {
  unsigned lane = threadIdx.x;
  if (lane % 2) return;
  const unsigned even = 0x55555555u;
  out[lane * 6 + 0] = __ballot_sync(even, lane % 4 == 0);
  out[lane * 6 + 1] = __any_sync(even, lane == 6);
  out[lane * 6 + 2] = __all_sync(even, lane < 31);
  out[lane * 6 + 3] = __all_sync(even, lane < 30);
  out[lane * 6 + 4] = __reduce_add_sync(even, lane);
  out[lane * 6 + 5] = __reduce_max_sync(even, lane * 3 % 7);
}

// Two half-warps shuffle independently with disjoint masks at the same call.
__global__ void half_warps(float* out) {
  unsigned lane = threadIdx.x;
  unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  float v = float(lane);
  for (int off = 8; off > 0; off /= 2) v += __shfl_xor_sync(mask, v, off, 16);
  out[lane] = v;
}

// A block of 40 threads: warp 1 has 8 lanes. Reading a lane that does not exist gives poison (-1 here).
__global__ void partial_warp(int* out) {
  int t = int(threadIdx.x);
  out[t * 2] = __shfl_down_sync(0xffffffffu, t, 4);
  out[t * 2 + 1] = int(__ballot_sync(0xffffffffu, 1));
}

__global__ void half_warp_shuffles_full_mask(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1.0f, 0);
}

__global__ void mask_without_self(float* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1.0f, 0); }

__global__ void shuffle_then_barrier(float* out) {
  float v = 1.0f;
  if (threadIdx.x < 32) v = __shfl_sync(0xffffffffu, v, 0);
  __syncthreads();
  if (threadIdx.x == 32) v = __shfl_sync(0xffffffffu, v, 0);  // warp 1's other lanes never come
  out[threadIdx.x] = v;
}

__global__ void count_barrier(int* out) {
  int t = int(threadIdx.x);
  out[t * 3 + 0] = __syncthreads_count(t % 3 == 0);
  out[t * 3 + 1] = __syncthreads_or(t == 17);
  out[t * 3 + 2] = __syncthreads_and(t < 50);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emu)

BOOST_AUTO_TEST_CASE(every_shuffle_mode_and_width_against_the_table) {
  int checked = 0;
  for (int mode : {kIdx, kUp, kDown, kXor})
    for (int width : {1, 2, 4, 8, 16, 32})
      for (int b : {0, 1, 3, 5, 8, 13, 16, 31}) {
        if (mode == kIdx && b >= 32) continue;
        DeviceVec<int> d(32, -7);
        DUO_LAUNCH(shuffle, 1, 32, 0, nullptr)(mode, b, width, d);
        const std::vector<int> out = d.host();
        for (int lane = 0; lane < 32; ++lane) {
          BOOST_TEST_INFO("mode " << mode << " width " << width << " b " << b << " lane " << lane);
          BOOST_REQUIRE_EQUAL(out[lane], 100 + expected_source(mode, lane, b, width));
          ++checked;
        }
      }
  BOOST_TEST(checked == 4 * 6 * 8 * 32);
  DeviceVec<int> out(32, 0);
  std::string e = error_of([&] { DUO_LAUNCH(shuffle, 1, 32, 0, nullptr)(kIdx, 0, 12, out); });
  BOOST_TEST(e.find("width 12 is not a power of 2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(votes_and_reductions_over_a_mask) {
  DeviceVec<unsigned> d(32 * 6, 0);
  DUO_LAUNCH(votes_even_lanes, 1, 32, 0, nullptr)(d);
  const std::vector<unsigned> out = d.host();
  unsigned sum = 0, mx = 0;
  for (unsigned l = 0; l < 32; l += 2) sum += l, mx = std::max(mx, l * 3 % 7);
  for (unsigned l = 0; l < 32; l += 2) {
    BOOST_TEST(out[l * 6 + 0] == 0x11111111u);
    BOOST_TEST(out[l * 6 + 1] == 1u);
    BOOST_TEST(out[l * 6 + 2] == 1u);
    BOOST_TEST(out[l * 6 + 3] == 0u);
    BOOST_TEST(out[l * 6 + 4] == sum);
    BOOST_TEST(out[l * 6 + 5] == mx);
  }
  DeviceVec<float> dh(32, 0.0f);
  DUO_LAUNCH(half_warps, 1, 32, 0, nullptr)(dh);
  const std::vector<float> h = dh.host();
  for (int l = 0; l < 32; ++l) BOOST_TEST(h[l] == (l < 16 ? 120.0f : 376.0f));
}

BOOST_AUTO_TEST_CASE(block_barrier_reductions) {
  DeviceVec<int> d(64 * 3, 0);
  DUO_LAUNCH(count_barrier, 1, 64, 0, nullptr)(d);
  const std::vector<int> out = d.host();
  for (int t = 0; t < 64; ++t) {
    BOOST_TEST(out[t * 3 + 0] == 22);
    BOOST_TEST(out[t * 3 + 1] == 1);
    BOOST_TEST(out[t * 3 + 2] == 0);
  }
}

BOOST_AUTO_TEST_CASE(partial_last_warp) {
  DeviceVec<int> d(40 * 2, 0);
  DUO_LAUNCH(partial_warp, 1, 40, 0, nullptr)(d);
  const std::vector<int> out = d.host();
  for (int t = 0; t < 40; ++t) {
    int lane = t % 32;
    int want = t < 32 ? (lane + 4 < 32 ? t + 4 : t) : (lane < 4 ? t + 4 : -1);
    BOOST_TEST_INFO("thread " << t);
    BOOST_TEST(out[t * 2] == want);
    BOOST_TEST(unsigned(out[t * 2 + 1]) == (t < 32 ? 0xffffffffu : 0xffu));
  }
}

BOOST_AUTO_TEST_CASE(divergent_warp_operations_are_errors) {
  DeviceVec<float> out(64, 0.0f);
  std::string e = error_of([&] { DUO_LAUNCH(half_warp_shuffles_full_mask, 1, 32, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("divergent warp operation") != std::string::npos);
  BOOST_TEST(e.find("__shfl_sync at") != std::string::npos);
  BOOST_TEST(e.find("lane 16 has exited") != std::string::npos);

  e = error_of([&] { DUO_LAUNCH(mask_without_self, 1, 32, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find(": thread (") != std::string::npos);  // which lane comes first depends on the schedule
  BOOST_TEST(e.find("excludes itself") != std::string::npos);

  e = error_of([&] { DUO_LAUNCH(shuffle_then_barrier, 1, 64, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("lane 1 has exited") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bf16_and_f16_round_to_nearest_even_with_cuda_bit_layout) {
  auto bits = [](float f) { return __bfloat16_as_ushort(__float2bfloat16(f)); };
  auto from = [](uint32_t u) { return std::bit_cast<float>(u); };
  BOOST_TEST(bits(1.0f) == 0x3F80);
  BOOST_TEST(bits(-2.0f) == 0xC000);
  BOOST_TEST(bits(from(0x3F808000u)) == 0x3F80);  // tie, even stays
  BOOST_TEST(bits(from(0x3F818000u)) == 0x3F82);  // tie, odd rounds up to even
  BOOST_TEST(bits(from(0x3F808001u)) == 0x3F81);  // above the tie
  BOOST_TEST(bits(from(0x7F7FFFFFu)) == 0x7F80);  // the largest float rounds to +inf
  BOOST_TEST(bits(INFINITY) == 0x7F80);
  BOOST_TEST(bits(NAN) == 0x7FFF);
  BOOST_TEST(bits(from(0x00010000u)) == 0x0001);  // denormals are kept
  BOOST_TEST(__bfloat162float(__ushort_as_bfloat16(0x4049)) == 3.140625f);
  BOOST_TEST(__half_as_ushort(__float2half(1.0f)) == 0x3C00);      // fp16: the same rule, IEEE half layout
  BOOST_TEST(__half_as_ushort(__float2half(65520.0f)) == 0x7C00);  // the tie above 65504 rounds to inf
  BOOST_TEST(__half2float(__ushort_as_half(0x3555)) == 0.333251953125f);
  __nv_bfloat162 p = __floats2bfloat162_rn(1.0f, -1.0f);
  BOOST_TEST(std::bit_cast<uint32_t>(p) == 0xBF803F80u);  // .x in the low half
}

BOOST_AUTO_TEST_SUITE_END()
