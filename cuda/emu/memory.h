// The emulated device's global memory: one reserved range of the address space, out of reach of host code.
//
// On a GPU, host code that dereferences a cudaMalloc pointer crashes; on the host, emulated device memory is
// ordinary memory, so such a bug would pass every emulated test and only fail on a real GPU. To keep the two
// alike, every allocation comes from one region that is PROT_NONE while host code runs, and readable and
// writable only while something device-side uses it: a kernel launch, cudaMemcpy/cudaMemset, the emulated
// cuBLASLt (a HostAccess scope each). A host dereference is then a segfault at an address inside the region
// (Boost.Test reports "memory access violation ... invalid permissions"). DUO_EMU_HOST_GUARD=0 leaves the
// allocations always accessible (for a debugger session).
//
// Out-of-bounds accesses: each allocation ends (rounded up to cudaMalloc's 256 bytes) at a page boundary followed by
// a guard page that is never accessible, so a kernel that reads or writes past the end of its buffer faults, where
// on a GPU it would silently touch a neighbour (compute-sanitizer's memcheck, for the most common case).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace duo::emu {

// The global-memory traffic of one device-side scope (a kernel launch, a cudaMemcpy/cudaMemset, the emulated
// cuBLASLt GEMM), as a TrafficCounter (traffic.h) records it: the bytes of each allocation on the 4 KiB pages
// the scope first read (read) and the pages it wrote (written; a page read and then written counts in both),
// the tensor-core FLOPs it ran, and the shared-memory bytes its ldmatrix instructions loaded into fragments
// (128 per 8 × 8 matrix: the operand traffic between shared memory and the tensor cores).
struct ScopeTraffic {
  std::string what;  // the kernel's name as launched, "cudaMemcpy", "cudaMemset", "gemm"
  uint64_t read = 0, written = 0;
  double tensor_flops = 0;
  uint64_t fragment_bytes = 0;
};

class DeviceMemory {
 public:
  explicit DeviceMemory(size_t capacity, bool guard);  // reserves capacity bytes of address space
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  // 256-byte aligned, 0xFF-filled; nullptr when the region is full (cudaErrorMemoryAllocation)
  void* alloc(size_t bytes);
  bool free(void* p);         // false: p is not the start of a live allocation
  // Whether [p, p + bytes) lies inside one live allocation (bytes = 0: p inside any).
  bool holds(const void* p, size_t bytes) const;
  // Whether p points into the reserved region at all (live, freed or never handed out).
  bool in_region(const void* p) const {
    const char* c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + capacity_;
  }
  size_t capacity() const { return capacity_; }
  size_t in_use() const;

  // Device-side access begins (nests); the allocations become readable and writable. `what` names the scope
  // for traffic counting.
  void open(const char* what = "device access");
  void close();  // ... ends; at depth 0 host code is locked out again

  // Traffic counting (traffic.h): while on, each outermost open()/close() scope starts with every allocation
  // inaccessible, a fault handler records each page's first read and first write and opens the page, and
  // close() turns the pages into bytes per allocation. Slow (a fault per page and scope): tests only.
  void start_counting();
  std::vector<ScopeTraffic> stop_counting();
  bool counting() const { return counting_; }
  void add_tensor_flops(double f);  // counted into the open scope (mma.sync, the emulated GEMM)
  void add_fragment_bytes(uint64_t b);  // likewise (ldmatrix)
  // The fault handler's part (traffic.cpp): true when addr was a tracked page, now opened for the access.
  bool on_fault(const void* addr, bool write);

 private:
  // One allocation: `pages` bytes of data pages starting at offset `slot`, then one guard page; the caller's
  // pointer is `user` (its 256-rounded end is the end of the data pages).
  struct Slot {
    size_t slot = 0, pages = 0, bytes = 0;
  };
  void protect_locked(const Slot& s, bool accessible);  // mprotect of the data pages, under mu_

  char* base_ = nullptr;
  size_t capacity_ = 0;
  bool guard_ = true;
  mutable std::mutex mu_;
  int depth_ = 0;                     // open scopes
  size_t top_ = 0;                    // high-water offset: [base, base + top) has been handed out at some point
  std::map<size_t, Slot> live_;       // user offset -> its slot
  std::map<size_t, size_t> free_;     // offset -> length of a free run below top_ (page multiples, coalesced)
  // traffic counting: per page of the region, kTracked | kRead | kWritten bits during a counted scope
  bool counting_ = false;
  std::unique_ptr<std::atomic<uint8_t>[]> page_bits_;
  std::vector<ScopeTraffic> scopes_;
  ScopeTraffic current_;
  std::atomic<uint64_t> flops_{0}, fragment_bytes_{0};
  void begin_scope_locked(const char* what);
  void end_scope_locked();
};

// Device-side access for a scope: DeviceMemory::open() now, close() at the end.
class HostAccess {
 public:
  explicit HostAccess(DeviceMemory& m, const char* what = "device access") : m_(m) { m_.open(what); }
  ~HostAccess() { m_.close(); }
  HostAccess(const HostAccess&) = delete;
  HostAccess& operator=(const HostAccess&) = delete;

 private:
  DeviceMemory& m_;
};

}  // namespace duo::emu
