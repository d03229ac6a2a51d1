// The SIMT emulator's core: what one emulated GPU thread is, and the one object that plays the device.
//
// Model (cuda/emu/README.md): a launch runs its blocks one after another (or spread over DUO_EMU_THREADS OpenMP
// threads); each block runs its threads as cooperative fibers. A fiber runs until it reaches a sync point
// (__syncthreads, a warp collective) or exits, then hands control back to the block's scheduler (the
// "hub", emu.cpp). When every live thread is blocked, the hub completes the warp collectives whose lanes
// have all arrived, or releases the barrier when the whole block waits at the same __syncthreads; if neither
// is possible the kernel is divergent and the launch throws a duo::Error naming the site. Nothing hangs.
//
// Kernels never touch this header directly: they include cuda/runtime.cuh.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <source_location>
#include <string>
#include <unordered_map>
#include <vector>

#include "emu/memory.h"
#include "emu/types.h"

namespace duo::emu {

// A place in the kernel source, recorded at every sync point so that a divergence report can name it.
struct Site {
  const char* what = "";  // the operation: "__syncthreads", "__shfl_sync", …
  const char* file = "";
  unsigned line = 0;
  static Site here(const char* what, const std::source_location& l) { return {what, l.file_name(), l.line()}; }
  bool operator==(const Site& o) const {  // the same literal is usually the same pointer: compare that first
    return line == o.line && (file == o.file || std::string_view(file) == o.file);
  }
  std::string str() const;  // "__shfl_sync at file:line"
};

// A warp collective: each participating lane hands over a pointer to its own in/out record; when the last
// lane named in the mask has arrived, the hub calls fn once with every lane's pointer (nullptr for lanes
// outside `active`, which is the mask minus lanes that do not exist in a partial last warp).
using WarpFn = void (*)(void* const lanes[32], unsigned active);

enum class Wait : uint8_t { Ready, Barrier, Warp, Done };

// A cp.async copy issued but not yet landed: the source bytes are captured at issue, written at the wait.
struct CopyInFlight {
  void* dst;
  unsigned char bytes[16];
  unsigned size;
};

struct Block;
struct Thread;

// One emulated GPU thread, as kernel code and the intrinsics see it.
struct ThreadCtx {
  uint3 thread_idx{}, block_idx{};
  dim3 block_dim, grid_dim;
  unsigned linear = 0;  // x + y·Bx + z·Bx·By; warp = linear / 32, lane = linear % 32 (as on the GPU)

  // The sync point this thread waits at; written just before it suspends, read by the hub.
  Wait wait = Wait::Ready;
  Site site;
  int pred = 0, result = 0;  // __syncthreads_count/and/or: own predicate in, block count out
  unsigned mask = 0;         // warp collective: the mask given by the kernel
  WarpFn fn = nullptr;
  void* data = nullptr;

  // cp.async state: copies in issue order; group_ends[g] = number of copies in groups 0..g once committed.
  std::vector<CopyInFlight> copies;
  std::vector<size_t> group_ends;

  Block* block = nullptr;
  Thread* self = nullptr;
  unsigned lane() const { return linear % 32; }
  unsigned warp() const { return linear / 32; }
  std::string name() const;  // "thread (x,y,z) of block (x,y,z)"
};

// The emulated thread running now on this OS thread (the hub switches it at every resume).
ThreadCtx& cur();

// Sync points, called by the intrinsics. Both suspend the calling fiber until the hub releases it.
int block_barrier(Site site, int pred);  // returns the number of threads whose pred was non-zero
void warp_collective(unsigned mask, WarpFn fn, void* data, Site site);

// Shared memory of the running block. A static allocation is keyed by its declaration (the address of a
// static tag object), so every thread of the block that executes the declaration gets the same pointer.
void* shared_static(const void* key, size_t bytes, Site site);
void* shared_dynamic();

enum class Schedule { Forward, Reverse, Random };

// Settings, read once from the environment; tests may change them between launches.
struct Config {
  int threads = 1;                        // DUO_EMU_THREADS: OS threads running blocks
  Schedule schedule = Schedule::Forward;  // DUO_EMU_SCHEDULE=forward|reverse|random:SEED
  uint64_t seed = 0;
  size_t stack_bytes = 64 << 10;       // DUO_EMU_STACK_KB: fiber stack (plus a guard page)
  size_t max_smem = 227 << 10;         // static + dynamic shared memory per block (sm_90 opt-in limit)
  size_t default_dyn_smem = 48 << 10;  // dynamic shared memory allowed without cudaFuncSetAttribute
  size_t max_static_smem = 48 << 10;
  size_t memory_bytes = size_t(80) << 30;  // DUO_EMU_MEMORY_GB: device memory (address space, touched pages only)
  bool host_guard = true;                  // DUO_EMU_HOST_GUARD=0: host code may read device memory (memory.h)
  static Config from_env();
};

struct Worker;  // one OS thread's fiber-stack pool and shared-memory arena (emu.cpp)

// The emulated device: the only global mutable state of the emulator, as the CUDA driver's context is the
// only one of a real GPU program. It holds the configuration, the device memory behind cudaMalloc, the
// per-kernel attributes (cudaFuncSetAttribute) and the workers that run blocks.
class Device {
 public:
  Device();
  ~Device();
  Config& config() { return cfg_; }

  // Runs body (one kernel thread) for every thread of every block. kernel identifies the kernel for
  // cudaFuncSetAttribute; name and launched_at are for error messages. Throws duo::Error on a bad launch
  // configuration or a divergent kernel.
  void launch(const void* kernel, const char* name, dim3 grid, dim3 block, size_t dyn_smem,
              const std::function<void()>& body, std::source_location launched_at);

  void* alloc(size_t bytes) { return memory_.alloc(bytes); }
  bool free(void* p) { return memory_.free(p); }  // false: p did not come from alloc
  DeviceMemory& memory() { return memory_; }
  void set_max_dyn_smem(const void* kernel, size_t bytes);
  // Page-locked host allocations (cudaMallocHost), by first byte: the host memory a captured copy may use (capture.h).
  void pin(const void* p, size_t bytes);
  void unpin(const void* p);
  bool pinned(const void* p, size_t bytes);

 private:
  Config cfg_;
  DeviceMemory memory_;
  std::mutex mu_;         // guards max_dyn_smem_ (host code may call the runtime from several threads)
  std::mutex launch_mu_;  // one launch at a time, as on a single stream; guards workers_
  std::unordered_map<const void*, size_t> max_dyn_smem_;
  std::map<const char*, size_t> pinned_;  // guarded by mu_
  std::vector<std::unique_ptr<Worker>> workers_;
};

Device& device();

}  // namespace duo::emu
