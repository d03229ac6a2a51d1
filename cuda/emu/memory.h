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
#include <cstddef>
#include <map>
#include <mutex>

namespace duo::emu {

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

  void open();   // device-side access begins (nests); the allocations become readable and writable
  void close();  // ... ends; at depth 0 host code is locked out again

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
};

// Device-side access for a scope: DeviceMemory::open() now, close() at the end.
class HostAccess {
 public:
  explicit HostAccess(DeviceMemory& m) : m_(m) { m_.open(); }
  ~HostAccess() { m_.close(); }
  HostAccess(const HostAccess&) = delete;
  HostAccess& operator=(const HostAccess&) = delete;

 private:
  DeviceMemory& m_;
};

}  // namespace duo::emu
