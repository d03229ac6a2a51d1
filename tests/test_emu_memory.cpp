// The emulated device memory (cuda/emu/memory.h): out of reach of host code except through the runtime and
// kernels, and kernels out of reach of host memory, as on a GPU; cudaMemcpy kinds checked against where the
// pointers are; the allocator's reuse.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <vector>

#include "emu_test_util.h"
#include "runtime.cuh"

namespace {

__global__ void add_one(const float* x, float* y, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = x[i] + 1.0f;
}

// Runs f in a child process and returns the signal that ended it (0 if it exited normally).
template <class F>
int signal_of_child(F&& f) {
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL);  // not Boost.Test's handler: let the child die of it
    signal(SIGBUS, SIG_DFL);
    f();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emu)

// Host code that dereferences a cudaMalloc pointer crashes, as on a GPU; kernels and cudaMemcpy reach it.
BOOST_AUTO_TEST_CASE(device_memory_out_of_reach_of_host_code) {
  const int n = 100;
  float *x, *y;
  DUO_CUDA_CHECK(cudaMalloc(&x, n * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&y, n * sizeof(float)));
  std::vector<float> hx(n), hy(n);
  for (int i = 0; i < n; ++i) hx[i] = float(i);
  DUO_CUDA_CHECK(cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  DUO_LAUNCH(add_one, 2, 64, 0, nullptr)(x, y, n);
  DUO_CUDA_CHECK(cudaMemcpy(hy.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) BOOST_REQUIRE_EQUAL(hy[i], float(i) + 1.0f);

  const int sig_read = signal_of_child([&] {
    volatile float v = x[3];
    (void)v;
  });
  const int sig_write = signal_of_child([&] { y[0] = 0.0f; });
  BOOST_TEST(sig_read == SIGSEGV);
  BOOST_TEST(sig_write == SIGSEGV);
  // host memory is untouched by the guard, and the device memory is intact after the children
  BOOST_TEST(signal_of_child([&] { hy[0] = 1.0f; }) == 0);
  DUO_CUDA_CHECK(cudaMemcpy(hy.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
  BOOST_TEST(hy[0] == 1.0f);
  // and a kernel handed a host pointer is refused at the launch (on a GPU it would fault inside the kernel)
  const std::string e = duo::testing::error_of([&] { DUO_LAUNCH(add_one, 2, 64, 0, nullptr)(hx.data(), y, n); });
  BOOST_TEST(e.find("kernel add_one") != std::string::npos, e);
  BOOST_TEST(e.find("argument 1 is a host pointer") != std::string::npos, e);
  BOOST_TEST(e.find("HINT") != std::string::npos, e);
  DUO_CUDA_CHECK(cudaFree(x));
  DUO_CUDA_CHECK(cudaFree(y));
}

// A copy whose kind does not match the pointers, or that runs past an allocation, is an error (on a GPU it is
// undefined behaviour); cudaMemcpyDefault takes either side.
BOOST_AUTO_TEST_CASE(memcpy_kind_checked_against_the_pointers) {
  float* d;
  DUO_CUDA_CHECK(cudaMalloc(&d, 16 * sizeof(float)));
  std::vector<float> h(32, 2.0f);
  BOOST_TEST(cudaMemcpy(h.data(), d, 64, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // swapped
  BOOST_TEST(cudaMemcpy(d, h.data(), 64, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  BOOST_TEST(cudaMemcpy(d, h.data(), 65, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // past the end
  BOOST_TEST(cudaMemcpy(d + 1, d, 64, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue);
  BOOST_TEST(cudaMemcpy(h.data(), h.data() + 16, 64, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue);
  BOOST_TEST(cudaMemset(h.data(), 0, 64) == cudaErrorInvalidValue);  // cudaMemset takes device memory only
  BOOST_TEST(cudaMemcpy(d, h.data(), 64, cudaMemcpyDefault) == cudaSuccess);
  BOOST_TEST(cudaMemcpy(d + 8, d, 32, cudaMemcpyDeviceToDevice) == cudaSuccess);
  BOOST_TEST(cudaMemset(d, 0, 4) == cudaSuccess);
  std::vector<float> back(16);
  BOOST_TEST(cudaMemcpy(back.data(), d, 64, cudaMemcpyDeviceToHost) == cudaSuccess);
  BOOST_TEST(back[0] == 0.0f);
  BOOST_TEST(back[1] == 2.0f);
  BOOST_TEST(back[15] == 2.0f);
  DUO_CUDA_CHECK(cudaFree(d));
  BOOST_TEST(cudaFree(h.data()) == cudaErrorInvalidValue);  // not device memory
  // every failed call left its error as CUDA's last error: peeked without clearing, read once
  BOOST_TEST(cudaPeekAtLastError() == cudaErrorInvalidValue);
  BOOST_TEST(cudaGetLastError() == cudaErrorInvalidValue);
  BOOST_TEST(cudaGetLastError() == cudaSuccess);
}

// Layout: each allocation's 256-rounded end meets a guard page (a: 100 bytes at the last 256 of its page, then
// a guard page, then b's three pages). First fit with coalescing: freed slots are reused and merge back; fresh
// memory is poison; a request larger than the region fails (cudaErrorMemoryAllocation) without taking anything.
BOOST_AUTO_TEST_CASE(device_memory_allocator) {
  duo::emu::DeviceMemory mem(1 << 20, true);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  char* a = static_cast<char*>(mem.alloc(100));
  char* b = static_cast<char*>(mem.alloc(3 * page));
  char* c = static_cast<char*>(mem.alloc(1));
  BOOST_REQUIRE(a && b && c);
  BOOST_TEST(size_t(a) % 256 == 0u);
  BOOST_TEST(size_t(a + 256) % page == 0u);
  BOOST_TEST((b == a + 256 + page));  // (parenthesised: BOOST_TEST would compare char* as C strings, reading them)
  BOOST_TEST((c == b + 3 * page + page + page - 256));
  BOOST_TEST(mem.in_use() == 100 + 3 * page + 1);
  BOOST_TEST(mem.holds(a, 100));
  BOOST_TEST(!mem.holds(a, 101));
  BOOST_TEST(mem.holds(b + page, page));
  BOOST_TEST(!mem.holds(a + 200, 0));  // the allocation's page padding is not part of it
  {
    duo::emu::HostAccess open(mem);
    BOOST_TEST((unsigned char)a[99] == 0xFFu);
    a[0] = 1;
  }
  BOOST_TEST(mem.free(b));
  BOOST_TEST(!mem.free(b));      // double free
  BOOST_TEST(!mem.free(a + 1));  // not the start of an allocation
  char* d = static_cast<char*>(mem.alloc(page));  // first fit: in b's old run
  BOOST_TEST((d == b));
  BOOST_TEST(mem.free(a));
  BOOST_TEST(mem.free(d));
  char* e = static_cast<char*>(mem.alloc(4 * page));  // a's, d's and the rest of b's slots merged
  BOOST_TEST((e == a + 256 - page));
  BOOST_TEST(mem.alloc(size_t(2) << 20) == nullptr);
  BOOST_TEST(mem.in_use() == 4 * page + 1);
  BOOST_TEST(mem.free(e));
  BOOST_TEST(mem.free(c));
  BOOST_TEST(mem.in_use() == 0u);
  // without the guard (DUO_EMU_HOST_GUARD=0) host code may read it
  duo::emu::DeviceMemory open_mem(1 << 16, false);
  char* f = static_cast<char*>(open_mem.alloc(10));
  BOOST_TEST((unsigned char)f[9] == 0xFFu);
}

// A kernel that writes or reads one element past the end of its buffer hits the guard page: the emulator's memcheck
// for overruns (a GPU would quietly touch whatever lies behind the buffer).
__global__ void write_at(float* y, int i) {
  if (threadIdx.x == 0) y[i] = 1.0f;
}
__global__ void read_at(const float* x, int i, float* out) {
  if (threadIdx.x == 0) out[0] = x[i];
}

BOOST_AUTO_TEST_CASE(kernel_overruns_hit_a_guard_page) {
  float *y, *out;
  DUO_CUDA_CHECK(cudaMalloc(&y, 64 * sizeof(float)));  // 256 bytes: the guard page starts right after y[63]
  DUO_CUDA_CHECK(cudaMalloc(&out, sizeof(float)));
  DUO_LAUNCH(write_at, 1, 32, 0, nullptr)(y, 63);     // the last element is fine
  DUO_LAUNCH(read_at, 1, 32, 0, nullptr)(y, 63, out);
  BOOST_TEST(signal_of_child([&] { DUO_LAUNCH(write_at, 1, 32, 0, nullptr)(y, 64); }) == SIGSEGV);
  BOOST_TEST(signal_of_child([&] { DUO_LAUNCH(read_at, 1, 32, 0, nullptr)(y, 64, out); }) == SIGSEGV);
  DUO_CUDA_CHECK(cudaFree(y));
  // freed memory is out of reach too (a use after free)
  BOOST_TEST(signal_of_child([&] { DUO_LAUNCH(write_at, 1, 32, 0, nullptr)(y, 0); }) == SIGSEGV);
  DUO_CUDA_CHECK(cudaFree(out));
}

BOOST_AUTO_TEST_CASE(device_memory_settings_from_the_environment) {
  setenv("DUO_EMU_MEMORY_GB", "2", 1);
  setenv("DUO_EMU_HOST_GUARD", "0", 1);
  duo::emu::Config c = duo::emu::Config::from_env();
  BOOST_TEST(c.memory_bytes == size_t(2) << 30);
  BOOST_TEST(!c.host_guard);
  setenv("DUO_EMU_HOST_GUARD", "off", 1);
  BOOST_CHECK_THROW(duo::emu::Config::from_env(), duo::Error);
  unsetenv("DUO_EMU_HOST_GUARD");
  setenv("DUO_EMU_MEMORY_GB", "0", 1);
  BOOST_CHECK_THROW(duo::emu::Config::from_env(), duo::Error);
  unsetenv("DUO_EMU_MEMORY_GB");
  BOOST_TEST(duo::emu::Config::from_env().host_guard);
}

BOOST_AUTO_TEST_SUITE_END()
