// Global-memory traffic of emulated kernels, for the GPU traffic model (src/backend/kernel_traffic.h, tested
// against these counts in tests/test_emu_traffic.cpp).
//
//   duo::emu::TrafficCounter counter;      // from here on every device-side scope is counted
//   ops.linear(out, in, W, bias);           // ... kernels, the emulated GEMM, cudaMemcpy/cudaMemset
//   for (const auto& s : counter.stop()) std::printf("%s %lu %lu\n", s.what.c_str(), s.read, s.written);
//
// How: while counting, every allocation is inaccessible at the start of a scope; the first read of a 4 KiB page
// faults (a SIGSEGV handler records it and makes the page readable), the first write faults again (recorded,
// page writable). At the end of the scope each allocation contributes the bytes of its own range on the pages
// read and on the pages written. So a count is the scope's footprint: what a GPU moves from and to DRAM when
// re-reads within a launch hit its caches, to a page's granularity at a buffer's ends (a buffer's bytes are
// exact when the scope reads or writes all of it). Tensor-core FLOPs are 2·16·8·16 per mma.sync and 2·M·N·K
// per emulated GEMM; fragment bytes are 128 per 8 × 8 matrix an ldmatrix loads from shared memory. x86-64 Linux
// only (the fault's read/write bit); one counter at a time.
#pragma once
#include <vector>

#include "emu/memory.h"

namespace duo::emu {

class TrafficCounter {
 public:
  TrafficCounter();   // installs the fault handler (chaining to the one before it) and starts counting
  ~TrafficCounter();  // stops, if stop() was not called, and restores the handler
  TrafficCounter(const TrafficCounter&) = delete;
  TrafficCounter& operator=(const TrafficCounter&) = delete;
  // The scopes since construction, in order; counting ends.
  std::vector<ScopeTraffic> stop();

 private:
  bool running_ = true;
};

}  // namespace duo::emu
