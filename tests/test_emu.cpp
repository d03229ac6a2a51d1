// The SIMT emulator's block model: barriers, shared memory (poison, isolation between blocks), divergence
// reports, launch limits, atomics over several OS threads, and schedules that expose races.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "emu_test_util.h"
#include "runtime.cuh"

using duo::testing::error_of;
using duo::testing::DeviceVec;
using duo::testing::ScopedEmuConfig;

namespace {

// Each thread writes its slot, then reads a neighbour's after the barrier: only correct if the barrier
// really separates the phases (thread 0 runs to the barrier before thread n-1 has written anything).
__global__ void neighbour_after_barrier(int* out) {
  DUO_SHARED(int, s, 128);
  unsigned t = threadIdx.x;
  s[t] = int(t) * 10;
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[(t + 1) % blockDim.x];
}

// Tree reduction in shared memory: the canonical pattern with a barrier per level.
__global__ void block_sum(const float* x, float* out, int n) {
  DUO_DYN_SHARED(float, s);
  unsigned t = threadIdx.x;
  int i = blockIdx.x * blockDim.x + t;
  s[t] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// The same reduction with the barrier inside the loop missing: a race the schedules must expose.
__global__ void block_sum_racy(const float* x, float* out) {
  DUO_SHARED(float, s, 64);
  unsigned t = threadIdx.x;
  s[t] = x[t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2)
    if (t < stride) s[t] += s[t + stride];
  __syncthreads();
  if (t == 0) out[0] = s[0];
}

__global__ void read_uninitialised(float* out) {
  DUO_SHARED(float, s, 32);
  if (threadIdx.x == 0 && blockIdx.x == 0) s[0] = 1.0f;  // only block 0 writes, and only slot 0
  __syncthreads();
  out[blockIdx.x * 2] = s[0];
  out[blockIdx.x * 2 + 1] = s[1];
}

// Thread t writes slot t of a 32-float shared array, or of the dynamic shared memory (n floats): with 33 threads
// the last one writes one past the end. That write is deliberate (the emulator must catch it), so UBSan's array
// bounds check is off here (`make test-asan`).
__attribute__((no_sanitize("bounds"))) __global__ void fill_static_shared(int n) {
  DUO_SHARED(float, tile, 32);
  if (int(threadIdx.x) < n) tile[threadIdx.x] = 1.0f;
}
__global__ void fill_dynamic_shared(int n) {
  DUO_DYN_SHARED(float, dyn);
  if (int(threadIdx.x) < n) dyn[threadIdx.x] = 1.0f;
}

__global__ void early_exit(float* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void two_barriers(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void noop(float*) {}

__global__ void grid_index(unsigned* out) {
  unsigned b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

__global__ void count_and_max(int* counter, int* maximum, float* fsum, unsigned long long* u64) {
  int id = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(counter, 1);
  atomicMax(maximum, id);
  atomicAdd(fsum, 0.5f);
  atomicAdd(u64, 1ull);
}

// Only warp 1 shuffles; warp 0's threads exit without a sync point (they share one fiber) and warp 2 is
// partial. Legal CUDA: a warp collective needs its own warp only.
__global__ void some_warps_shuffle(float* out) {
  unsigned t = threadIdx.x;
  if (t / 32 != 1) {
    out[t] = float(t);
    return;
  }
  float v = float(t);
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  out[t] = v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emu)

BOOST_AUTO_TEST_CASE(threads_without_sync_points_share_a_fiber) {
  DeviceVec<float> d(80, -1.0f);
  DUO_LAUNCH(some_warps_shuffle, 1, 80, 0, nullptr)(d);
  const std::vector<float> out = d.host();
  const float warp1 = (32.0f + 63.0f) * 32.0f / 2.0f;
  for (int t = 0; t < 80; ++t) BOOST_TEST(out[t] == (t / 32 == 1 ? warp1 : float(t)));
}

BOOST_AUTO_TEST_CASE(configuration_from_the_environment) {
  setenv("DUO_EMU_SCHEDULE", "random:42", 1);
  setenv("DUO_EMU_THREADS", "3", 1);
  duo::emu::Config c = duo::emu::Config::from_env();
  BOOST_TEST((c.schedule == duo::emu::Schedule::Random));
  BOOST_TEST(c.seed == 42u);
  BOOST_TEST(c.threads == 3);
  setenv("DUO_EMU_SCHEDULE", "sideways", 1);
  std::string e = error_of([] { duo::emu::Config::from_env(); });
  BOOST_TEST(e.find("DUO_EMU_SCHEDULE: unknown schedule 'sideways'") != std::string::npos);
  BOOST_TEST(e.find("HINT: use forward, reverse or random:SEED") != std::string::npos);
  unsetenv("DUO_EMU_SCHEDULE");
  setenv("DUO_EMU_THREADS", "0", 1);
  BOOST_TEST(!error_of([] { duo::emu::Config::from_env(); }).empty());
  unsetenv("DUO_EMU_THREADS");
  BOOST_TEST(error_of([] { __syncthreads(); }).find("outside a kernel") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(barrier_orders_phases) {
  for (auto sched : {duo::emu::Schedule::Forward, duo::emu::Schedule::Reverse, duo::emu::Schedule::Random}) {
    ScopedEmuConfig cfg;
    cfg->schedule = sched;
    cfg->seed = 7;
    DeviceVec<int> d(3 * 128, -1);
    DUO_LAUNCH(neighbour_after_barrier, 3, 128, 0, nullptr)(d);
    const std::vector<int> out = d.host();
    for (int b = 0; b < 3; ++b)
      for (int t = 0; t < 128; ++t) BOOST_REQUIRE_EQUAL(out[b * 128 + t], (t + 1) % 128 * 10);
  }
}

BOOST_AUTO_TEST_CASE(block_reduction_in_shared_memory) {
  const int n = 1000, threads = 128, blocks = (n + threads - 1) / threads;
  float *x, *out;
  DUO_CUDA_CHECK(cudaMalloc(&x, n * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&out, blocks * sizeof(float)));
  std::vector<float> hx(n);
  for (int i = 0; i < n; ++i) hx[i] = float(i % 17) - 8.0f;
  DUO_CUDA_CHECK(cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  DUO_LAUNCH(block_sum, blocks, threads, threads * sizeof(float), nullptr)(x, out, n);
  std::vector<float> hout(blocks);
  DUO_CUDA_CHECK(cudaMemcpy(hout.data(), out, blocks * sizeof(float), cudaMemcpyDeviceToHost));
  for (int b = 0; b < blocks; ++b) {
    float want = 0;
    for (int i = b * threads; i < std::min(n, (b + 1) * threads); ++i) want += hx[i];
    BOOST_TEST(hout[b] == want);
  }
  DUO_CUDA_CHECK(cudaFree(x));
  DUO_CUDA_CHECK(cudaFree(out));
  BOOST_TEST(cudaFree(x) == cudaErrorInvalidValue);  // a double free is reported
  BOOST_TEST(cudaGetLastError() == cudaErrorInvalidValue);  // ... and left as the last error until read
  BOOST_TEST(cudaGetLastError() == cudaSuccess);
}

BOOST_AUTO_TEST_CASE(grid_and_block_indices_in_3d) {
  DeviceVec<unsigned> d(2 * 3 * 2 * 4 * 2 * 3, 0);
  DUO_LAUNCH(grid_index, dim3(2, 3, 2), dim3(4, 2, 3), 0, nullptr)(d);
  const std::vector<unsigned> out = d.host();
  for (unsigned i = 0; i < out.size(); ++i) BOOST_REQUIRE_EQUAL(out[i], i / 24 * 1000 + i % 24);
}

BOOST_AUTO_TEST_CASE(shared_memory_poisoned_and_isolated_between_blocks) {
  for (int os_threads : {1, 2}) {
    ScopedEmuConfig cfg;
    cfg->threads = os_threads;
    DeviceVec<float> d(4 * 2, 0.0f);
    DUO_LAUNCH(read_uninitialised, 4, 32, 0, nullptr)(d);
    const std::vector<float> out = d.host();
    BOOST_TEST(out[0] == 1.0f);
    BOOST_TEST(std::isnan(out[1]));  // never written: poison
    for (int b = 1; b < 4; ++b) {    // block 0's write must not leak into later blocks on the same worker
      BOOST_TEST(std::isnan(out[b * 2]));
      BOOST_TEST(std::isnan(out[b * 2 + 1]));
    }
  }
}

BOOST_AUTO_TEST_CASE(writes_past_a_shared_array_are_errors) {
  BOOST_TEST(error_of([] { DUO_LAUNCH(fill_static_shared, 1, 33, 0, nullptr)(32); }).empty());
  std::string e = error_of([] { DUO_LAUNCH(fill_static_shared, 1, 33, 0, nullptr)(33); });
  BOOST_TEST(e.find("wrote past the end of shared array DUO_SHARED(tile)") != std::string::npos, e);
  BOOST_TEST(e.find("kernel fill_static_shared") != std::string::npos, e);
  BOOST_TEST(error_of([] { DUO_LAUNCH(fill_dynamic_shared, 1, 40, 40 * sizeof(float), nullptr)(40); }).empty());
  e = error_of([] { DUO_LAUNCH(fill_dynamic_shared, 1, 40, 39 * sizeof(float), nullptr)(40); });
  BOOST_TEST(e.find("wrote past the end of the dynamic shared memory") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(divergent_barrier_is_an_error_not_a_hang) {
  DeviceVec<float> out(32, 0.0f);
  std::string e = error_of([&] { DUO_LAUNCH(early_exit, 2, 32, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("kernel early_exit") != std::string::npos);
  BOOST_TEST(e.find("block (0,0,0)") != std::string::npos);
  BOOST_TEST(e.find("divergent __syncthreads at") != std::string::npos);
  BOOST_TEST(e.find("test_emu.cpp") != std::string::npos);
  BOOST_TEST(e.find("thread (5,0,0) has exited while 31 threads wait there") != std::string::npos);
  BOOST_TEST(e.find("HINT") != std::string::npos);

  e = error_of([&] { DUO_LAUNCH(two_barriers, 1, 32, 0, nullptr)(out); });
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("divergent __syncthreads") != std::string::npos);
  BOOST_TEST(e.find("waits at __syncthreads at") != std::string::npos);

  // The emulator is usable again after a failed launch.
  DUO_LAUNCH(neighbour_after_barrier, 1, 128, 0, nullptr)(DeviceVec<int>(128, 0));
}

BOOST_AUTO_TEST_CASE(launch_limits) {
  float* p = nullptr;
  auto launch_err = [&](dim3 g, dim3 b, size_t smem) {
    return error_of([&] { DUO_LAUNCH(noop, g, b, smem, nullptr)(p); });
  };
  BOOST_TEST(launch_err(1, 1024, 0).empty());
  BOOST_TEST(launch_err(1, 1025, 0).find("has 1025 threads") != std::string::npos);
  BOOST_TEST(launch_err(1, dim3(32, 32, 2), 0).find("has 2048 threads") != std::string::npos);
  BOOST_TEST(launch_err(1, dim3(1, 1, 65), 0).find("threads") != std::string::npos);
  BOOST_TEST(launch_err(dim3(1, 65536), 32, 0).find("outside the limits") != std::string::npos);
  BOOST_TEST(launch_err(dim3(1, 1, 65536), 32, 0).find("outside the limits") != std::string::npos);
  BOOST_TEST(launch_err(dim3(0), 32, 0).find("outside the limits") != std::string::npos);
  BOOST_TEST(launch_err(1, 32, 48 << 10).empty());
  std::string e = launch_err(1, 32, (48 << 10) + 1);
  BOOST_TEST(e.find("cudaFuncSetAttribute") != std::string::npos);
  BOOST_TEST(e.find("kernel noop") != std::string::npos);
  DUO_CUDA_CHECK(cudaFuncSetAttribute(noop, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 << 10));
  BOOST_TEST(launch_err(1, 32, 100 << 10).empty());
  BOOST_TEST(!launch_err(1, 32, (100 << 10) + 16).empty());
  BOOST_TEST(cudaFuncSetAttribute(noop, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 << 10) ==
             cudaErrorInvalidValue);
  BOOST_TEST(cudaGetLastError() == cudaErrorInvalidValue);
}

BOOST_AUTO_TEST_CASE(atomics_over_several_os_threads) {
  ScopedEmuConfig cfg;
  cfg->threads = 2;
  DeviceVec<int> counter(1, 0), maximum(1, -1);
  DeviceVec<float> fsum(1, 0.0f);
  DeviceVec<unsigned long long> u64(1, 0);
  const int blocks = 64, threads = 64;
  DUO_LAUNCH(count_and_max, blocks, threads, 0, nullptr)(counter, maximum, fsum, u64);
  BOOST_TEST(counter.host()[0] == blocks * threads);
  BOOST_TEST(maximum.host()[0] == blocks * threads - 1);
  BOOST_TEST(fsum.host()[0] == 0.5f * blocks * threads);  // exact: every partial sum is a multiple of 0.5 below 2^24
  BOOST_TEST(u64.host()[0] == 4096ull);
  int v = 5;
  BOOST_TEST(atomicCAS(&v, 4, 9) == 5);
  BOOST_TEST(v == 5);
  BOOST_TEST(atomicCAS(&v, 5, 9) == 5);
  BOOST_TEST(v == 9);
}

BOOST_AUTO_TEST_CASE(schedules_expose_a_race_and_keep_correct_kernels_identical) {
  std::vector<float> hx(64);
  for (int i = 0; i < 64; ++i) hx[i] = float(i + 1);
  const DeviceVec<float> x(hx);
  const float want = 64.0f * 65.0f / 2.0f;
  auto run = [&](duo::emu::Schedule s, auto kernel, size_t smem) {
    ScopedEmuConfig cfg;
    cfg->schedule = s;
    cfg->seed = 3;
    DeviceVec<float> out(1, 0.0f);
    DUO_LAUNCH(kernel, 1, 64, smem, nullptr)(x, out);
    return out.host()[0];
  };
  float fwd = run(duo::emu::Schedule::Forward, block_sum_racy, 0);
  float rev = run(duo::emu::Schedule::Reverse, block_sum_racy, 0);
  BOOST_TEST_INFO("forward " << fwd << ", reverse " << rev);
  BOOST_TEST(fwd != rev);
  BOOST_TEST((fwd != want || rev != want));
  BOOST_TEST_MESSAGE("racy block sum: forward " << fwd << ", reverse " << rev << ", correct " << want);

  auto correct = [&](duo::emu::Schedule s) {
    ScopedEmuConfig cfg;
    cfg->schedule = s;
    cfg->seed = 11;
    DeviceVec<float> out(1, 0.0f);
    DUO_LAUNCH(block_sum, 1, 64, 64 * sizeof(float), nullptr)(x, out, 64);
    return out.host()[0];
  };
  float r1 = run(duo::emu::Schedule::Random, block_sum_racy, 0),
        r2 = run(duo::emu::Schedule::Random, block_sum_racy, 0);
  BOOST_TEST(std::memcmp(&r1, &r2, 4) == 0);  // a random schedule replays from its seed

  float a = correct(duo::emu::Schedule::Forward), b = correct(duo::emu::Schedule::Reverse),
        c = correct(duo::emu::Schedule::Random);
  BOOST_TEST(a == want);
  BOOST_TEST(std::memcmp(&a, &b, 4) == 0);
  BOOST_TEST(std::memcmp(&a, &c, 4) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
