// Arena: one allocation per run. Callers first *plan* (reserve sizes, get offsets), then the arena allocates
// once and hands out tensors at those offsets. Nothing is freed until the arena goes away, so memory use is
// constant through a run and the plan can be printed at start-up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include "core/tensor.h"

namespace duo {

class Arena {
 public:
  static constexpr size_t kAlign = 256;  // enough for any SIMD load and for cudaMalloc-like alignment

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena();

  // Planning phase: returns a handle (offset) for a block of `bytes`; `what` names it in the plan.
  size_t reserve(size_t bytes, const std::string& what);
  // Reserve a tensor; the returned Tensor has a null data pointer until allocate() (then use resolve()).
  size_t reserve_tensor(DType t, std::initializer_list<int64_t> dims, const std::string& what);
  // Allocates the whole plan at once (zero-filled host memory). Further reserve() calls are an error.
  void allocate();
  // Same, with another allocator (e.g. a backend's device memory: Ops::alloc / Ops::release).
  void allocate(const std::function<void*(size_t)>& alloc, std::function<void(void*)> release);
  bool allocated() const { return base_ != nullptr; }
  void* at(size_t offset) const;
  Tensor tensor(size_t offset, DType t, std::initializer_list<int64_t> dims) const;
  size_t bytes() const { return size_; }
  // Human-readable memory plan: one line per reserved block, biggest first (at most max_lines, the rest summed
  // in one line), and the total.
  std::string plan(size_t max_lines = 1000) const;

 private:
  struct Entry { std::string what; size_t offset, bytes; };
  std::vector<Entry> entries_;
  size_t size_ = 0;
  char* base_ = nullptr;
  std::function<void(void*)> release_;  // empty: host memory from aligned_alloc
};

std::string human_bytes(double bytes);

}  // namespace duo
