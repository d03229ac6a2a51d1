// The tensor-core and async-copy wrappers of cuda/ptx.cuh under the emulator: ldmatrix against the PTX
// table, mma against a scalar matmul (through the lane maps alone, and as a full tile with cp.async and
// ldmatrix), cp.async's deferred landing, and the softmax example against a scalar loop.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/philox.h"
#include "emu/examples/examples.h"
#include "emu_test_util.h"
#include "ptx.cuh"

using duo::testing::DeviceVec;
using duo::testing::error_of;

namespace {

// Four 8×8 matrices of 16-bit values m·64 + r·8 + c in shared memory; lane l gives the address of row l%8
// of matrix l/8 and stores its registers to out[l·4 + m].
template <int N, bool Trans>
__global__ void ldmatrix_table(uint32_t* out) {
  DUO_SHARED(uint16_t[8], s, 32);
  const int lane = int(threadIdx.x);
  for (int i = 0; i < 8; ++i) s[lane][i] = uint16_t(lane * 8 + i);
  __syncwarp();
  uint32_t r[N];
  duo::ptx::ldmatrix<N, Trans>(r, &s[lane][0]);
  for (int m = 0; m < N; ++m) out[lane * 4 + m] = r[m];
}

// Loads A, B, C fragments straight from global memory with the lane maps, one mma, D stored the same way.
// E is __nv_bfloat16 or __half (the same layout).
template <class E>
__global__ void mma_by_lane_map(const E* a, const E* b, const float* c, float* d) {
  using Map = duo::ptx::MmaM16N8K16;
  const int l = int(threadIdx.x);
  auto pack = [](E lo, E hi) {
    uint16_t u[2];
    memcpy(&u[0], &lo, 2);
    memcpy(&u[1], &hi, 2);
    return uint32_t(u[0]) | uint32_t(u[1]) << 16;
  };
  uint32_t fa[4], fb[2];
  float fc[4], fd[4];
  for (int r = 0; r < 4; ++r) {
    const E* p = a + Map::a_row(l, r) * 16 + Map::a_col(l, r);
    fa[r] = pack(p[0], p[1]);
    fc[r] = c[Map::c_row(l, r) * 8 + Map::c_col(l, r)];
  }
  for (int r = 0; r < 2; ++r) {
    const int k = Map::b_row(l, r), n = Map::b_col(l);
    fb[r] = pack(b[k * 8 + n], b[(k + 1) * 8 + n]);
  }
  if constexpr (std::is_same_v<E, __half>)
    duo::ptx::mma_m16n8k16_f16(fd, fa, fb, fc);
  else
    duo::ptx::mma_m16n8k16_bf16(fd, fa, fb, fc);
  for (int i = 0; i < 4; ++i) d[Map::c_row(l, i) * 8 + Map::c_col(l, i)] = fd[i];
}

__global__ void mma_in_partial_warp(float* out) {
  uint32_t a[4] = {}, b[2] = {};
  float c[4] = {}, d[4];
  duo::ptx::mma_m16n8k16_bf16(d, a, b, c);
  out[threadIdx.x] = d[0];
}

// Lane l copies 16 bytes (4 floats) to shared memory in two groups; snapshots show when they land.
__global__ void cp_async_groups(const float* src, float* out) {
  DUO_SHARED(float, s, 8 * 32);
  const int l = int(threadIdx.x);
  duo::ptx::cp_async_ca<16>(&s[l * 8], src + l * 8);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_cg(&s[l * 8 + 4], src + l * 8 + 4, 8);  // 8 source bytes, 8 zero-filled
  duo::ptx::cp_async_commit();
  out[l * 24 + 0] = s[l * 8];  // nothing landed yet: poison
  duo::ptx::cp_async_wait<1>();
  out[l * 24 + 1] = s[l * 8];      // first group landed
  out[l * 24 + 2] = s[l * 8 + 4];  // second not yet
  duo::ptx::cp_async_wait<0>();
  for (int i = 0; i < 8; ++i) out[l * 24 + 8 + i] = s[l * 8 + i];
}

// Misaligned addresses, which a GPU refuses: ldmatrix rows one 16-bit element late, a 16-byte cp.async from a
// source 4 bytes past 16-byte alignment.
__global__ void ldmatrix_misaligned(uint32_t* out) {
  DUO_SHARED(uint16_t[9], s, 32);
  const int lane = int(threadIdx.x);
  for (int i = 0; i < 9; ++i) s[lane][i] = 0;
  __syncwarp();
  uint32_t r[1];
  duo::ptx::ldmatrix<1, false>(r, &s[lane][1]);
  out[lane] = r[0];
}
__global__ void cp_async_misaligned(const float* src, float* out) {
  DUO_SHARED(float, s, 4);
  duo::ptx::cp_async_cg(&s[0], src + 1);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  out[threadIdx.x] = s[0];
}

template <class E = __nv_bfloat16>
std::vector<E> random_16bit(int n, uint64_t seed) {
  duo::Philox rng{seed, 0};
  std::vector<E> v(n);
  for (int i = 0; i < n; ++i) v[i] = E(rng.normal(i));
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emu)

BOOST_AUTO_TEST_CASE(ldmatrix_against_the_ptx_table) {
  auto check = [](auto kernel, int n, bool trans) {
    DeviceVec<uint32_t> d(32 * 4, 0xDEADBEEFu);
    DUO_LAUNCH(kernel, 1, 32, 0, nullptr)(d);
    const std::vector<uint32_t> out = d.host();
    for (int l = 0; l < 32; ++l)
      for (int m = 0; m < n; ++m) {
        int r = l / 4, c = l % 4 * 2;  // the element pair lane l holds, of matrix m (or of its transpose)
        auto elem = [&](int i, int j) { return trans ? uint32_t(m * 64 + j * 8 + i) : uint32_t(m * 64 + i * 8 + j); };
        BOOST_TEST_INFO("x" << n << (trans ? ".trans" : "") << " lane " << l << " matrix " << m);
        BOOST_REQUIRE_EQUAL(out[l * 4 + m], elem(r, c) | elem(r, c + 1) << 16);
      }
  };
  check(ldmatrix_table<1, false>, 1, false);
  check(ldmatrix_table<2, false>, 2, false);
  check(ldmatrix_table<4, false>, 4, false);
  check(ldmatrix_table<1, true>, 1, true);
  check(ldmatrix_table<2, true>, 2, true);
  check(ldmatrix_table<4, true>, 4, true);
}

// Spot values of the PTX ISA's m16n8k16 fragment figures (g = lane/4, t = lane%4), independent of the maps.
using Map = duo::ptx::MmaM16N8K16;
static_assert(Map::a_row(0, 0) == 0 && Map::a_col(0, 0) == 0 && Map::a_row(0, 1) == 8 && Map::a_col(0, 2) == 8);
static_assert(Map::a_row(5, 3) == 9 && Map::a_col(5, 3) == 10 && Map::a_row(30, 2) == 7 && Map::a_col(30, 2) == 12);
static_assert(Map::b_row(5, 0) == 2 && Map::b_row(5, 1) == 10 && Map::b_col(5) == 1 && Map::b_col(31) == 7);
static_assert(Map::c_row(31, 3) == 15 && Map::c_col(31, 3) == 7 && Map::c_row(6, 1) == 1 && Map::c_col(6, 1) == 5);

BOOST_AUTO_TEST_CASE(mma_lane_maps_against_scalar_matmul) {
  auto check = [](auto a, auto b, auto kernel, const char* type) {
    std::vector<float> c(16 * 8);
    for (int i = 0; i < 16 * 8; ++i) c[i] = float(i % 7) - 3.0f;
    DeviceVec<float> dd(16 * 8, NAN);
    DUO_LAUNCH(kernel, 1, 32, 0, nullptr)(DeviceVec(a), DeviceVec(b), DeviceVec(c), dd);
    const std::vector<float> d = dd.host();
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        double want = c[i * 8 + j];
        for (int k = 0; k < 16; ++k) want += double(float(a[i * 16 + k])) * double(float(b[k * 8 + j]));
        BOOST_TEST_INFO(type << " D[" << i << "][" << j << "]");
        BOOST_TEST(std::fabs(d[i * 8 + j] - want) <= 1e-5 * (1 + std::fabs(want)));
      }
  };
  check(random_16bit(16 * 16, 1), random_16bit(16 * 8, 2), mma_by_lane_map<__nv_bfloat16>, "bf16");
  check(random_16bit<__half>(16 * 16, 1), random_16bit<__half>(16 * 8, 2), mma_by_lane_map<__half>, "f16");
  DeviceVec<float> out(48, 0.0f);
  std::string e = error_of([&] { DUO_LAUNCH(mma_in_partial_warp, 1, 48, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("mma.sync needs all 32 lanes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(full_tile_through_cp_async_ldmatrix_and_mma) {
  auto a = random_16bit(16 * 16, 3), b = random_16bit(16 * 16, 4);
  __nv_bfloat16 *da, *db;
  float* dc;
  DUO_CUDA_CHECK(cudaMalloc(&da, 256 * sizeof(__nv_bfloat16)));
  DUO_CUDA_CHECK(cudaMalloc(&db, 256 * sizeof(__nv_bfloat16)));
  DUO_CUDA_CHECK(cudaMalloc(&dc, 256 * sizeof(float)));
  DUO_CUDA_CHECK(cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice));
  DUO_CUDA_CHECK(cudaMemcpy(db, b.data(), 512, cudaMemcpyHostToDevice));
  duo::emu_examples::mma_tile_16x16x16(da, db, dc, nullptr);
  std::vector<float> c(256);
  DUO_CUDA_CHECK(cudaMemcpy(c.data(), dc, 1024, cudaMemcpyDeviceToHost));
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double want = 0;
      for (int k = 0; k < 16; ++k) want += double(float(a[i * 16 + k])) * double(float(b[k * 16 + j]));
      BOOST_TEST_INFO("C[" << i << "][" << j << "]");
      BOOST_TEST(std::fabs(c[i * 16 + j] - want) <= 1e-5 * (1 + std::fabs(want)));
    }
  for (void* p : {(void*)da, (void*)db, (void*)dc}) DUO_CUDA_CHECK(cudaFree(p));
}

BOOST_AUTO_TEST_CASE(cp_async_lands_only_at_the_wait) {
  std::vector<float> src(8 * 32);
  for (int i = 0; i < 8 * 32; ++i) src[i] = float(i + 1);
  DeviceVec<float> dout(24 * 32, 0.0f);
  DUO_LAUNCH(cp_async_groups, 1, 32, 0, nullptr)(DeviceVec(src), dout);
  const std::vector<float> out = dout.host();
  for (int l = 0; l < 32; ++l) {
    BOOST_TEST_INFO("lane " << l);
    BOOST_TEST(std::isnan(out[l * 24 + 0]));
    BOOST_TEST(out[l * 24 + 1] == src[l * 8]);
    BOOST_TEST(std::isnan(out[l * 24 + 2]));
    for (int i = 0; i < 8; ++i) BOOST_TEST(out[l * 24 + 8 + i] == (i < 6 ? src[l * 8 + i] : 0.0f));
  }
}

BOOST_AUTO_TEST_CASE(misaligned_ldmatrix_and_cp_async_are_errors) {
  DeviceVec<uint32_t> out(32, 0);
  std::string e = error_of([&] { DUO_LAUNCH(ldmatrix_misaligned, 1, 32, 0, nullptr)(out); });
  BOOST_TEST(e.find("row address is not 16-byte aligned") != std::string::npos, e);
  DeviceVec<float> src(8, 1.0f), dst(1, 0.0f);
  e = error_of([&] { DUO_LAUNCH(cp_async_misaligned, 1, 1, 0, nullptr)(src, dst); });
  BOOST_TEST(e.find("not aligned to 16") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(softmax_example_against_scalar_loop) {
  for (int cols : {1, 37, 128, 300}) {
    const int rows = 5;
    std::vector<float> x(rows * cols), y(rows * cols);
    duo::Philox rng{9, uint64_t(cols)};
    for (int i = 0; i < rows * cols; ++i) x[i] = 4.0f * rng.normal(i);
    float *dx, *dy;
    DUO_CUDA_CHECK(cudaMalloc(&dx, x.size() * sizeof(float)));
    DUO_CUDA_CHECK(cudaMalloc(&dy, y.size() * sizeof(float)));
    DUO_CUDA_CHECK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    duo::emu_examples::softmax_rows(dx, dy, rows, cols, nullptr);
    DUO_CUDA_CHECK(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
    {  // the same bits with blocks spread over two OS threads and a shuffled thread order
      duo::emu::Config saved = duo::emu::device().config();
      duo::emu::device().config().threads = 2;
      duo::emu::device().config().schedule = duo::emu::Schedule::Random;
      std::vector<float> y2(y.size());
      duo::emu_examples::softmax_rows(dx, dy, rows, cols, nullptr);
      DUO_CUDA_CHECK(cudaMemcpy(y2.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
      duo::emu::device().config() = saved;
      BOOST_TEST(std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0);
    }
    for (int r = 0; r < rows; ++r) {
      double m = -INFINITY, s = 0;
      for (int c = 0; c < cols; ++c) m = std::max(m, double(x[r * cols + c]));
      for (int c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] - m);
      for (int c = 0; c < cols; ++c) {
        double want = std::exp(x[r * cols + c] - m) / s;
        BOOST_TEST_INFO("cols " << cols << " row " << r << " col " << c);
        BOOST_TEST(std::fabs(y[r * cols + c] - want) <= 1e-6 * (1 + want));
      }
    }
    DUO_CUDA_CHECK(cudaFree(dx));
    DUO_CUDA_CHECK(cudaFree(dy));
  }
}

BOOST_AUTO_TEST_SUITE_END()
