// The bf16 working copies of the weights, for a backend whose GEMMs read bf16 (CUDA; PlanOps plans the same memory
// and the roofline the same traffic). A weight block that is frozen (Ops::begin_frozen_weights: a model's parameter
// buffer, held over a training step's forward and backward or for a sampler's lifetime) gets one copy in its own
// layout at two bytes an element. A matrix's copy is made at its first GEMM of the freeze and read by the GEMMs after
// it, so a training step rounds each weight once instead of at every GEMM. AdamW, updating a whole block outside a
// freeze, writes the block's copy along with the fp32 weights; the next freeze then starts with every copy current
// and rounds nothing (docs/architecture.md §5.2).
//
// Only AdamW leaves a copy current across the gap between two freezes. Every other write to a block (fill, copy,
// an EMA update, from_host, a fresh allocation, AdamW over a part of it as with ZeRO-1) makes its copies stale, and a
// freeze that follows any such write rounds again. This class only keeps the books: which copies exist and which
// are current. The backend rounds and allocates (through the callbacks).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "core/tensor.h"

namespace duo {

class WeightCopies {
 public:
  using Alloc = std::function<void*(size_t)>;
  using Release = std::function<void(void*)>;
  WeightCopies(Alloc alloc, Release release) : alloc_(std::move(alloc)), release_(std::move(release)) {}
  ~WeightCopies() { clear(); }
  WeightCopies(const WeightCopies&) = delete;
  WeightCopies& operator=(const WeightCopies&) = delete;

  // Ops::begin_frozen_weights / end_frozen_weights: fp32 weights at [weights, weights + bytes).
  void begin(const void* weights, size_t bytes);
  void end(const void* weights);

  // Where the copy of W (an F32 matrix) is, and whether it holds W's current values. copy is nullptr, and the caller
  // rounds W into its own scratch, when W lies in no frozen block or its copy would not start 16-byte aligned (the
  // alignment cuBLASLt's bf16 operands need; a matrix after GPT-2's odd-sized output bias).
  struct Slot {
    void* copy = nullptr;
    bool current = false;
  };
  Slot find(const Tensor& W) const;
  // W's copy now holds W (the backend rounded it, or the op that read it did); nothing when W has no copy.
  void made(const Tensor& W);

  // The copy AdamW writes along with params: params is exactly a block that has a copy and is not frozen (nullptr:
  // none, AdamW writes only the fp32 weights).
  void* follows(const Tensor& params) const;
  // After AdamW: its params' copy was written (follows() gave it), or the bytes it updated were written without one.
  void updated(const Tensor& params, bool copy_written);
  // Anything else wrote [p, p + bytes): the copies of blocks overlapping it are stale.
  void written(const void* p, size_t bytes);
  // The memory at p was freed: a block starting there loses its copy.
  void released(const void* p);
  // Frees every copy.
  void clear();

  size_t bytes() const;  // held by the copies
  // Changes whenever the books change (a block frozen or unfrozen, a copy made, remade or dropped, a block written): a
  // recorded op sequence (Ops::record) that read copies at one version reads the same, current copies at the same.
  uint64_t version() const { return version_; }

 private:
  struct Block {
    const char* end = nullptr;
    void* copy = nullptr;  // (end - begin) / 2 bytes, the block's layout in bf16
    int holders = 0;       // begin() calls not yet ended
    bool all_current = false;  // while frozen: AdamW wrote the whole copy before this freeze began
    bool adamw_wrote = false;  // while not frozen: AdamW wrote the whole copy and nothing has written the block since
    // while frozen: the copies made, by first byte, with their element counts (a view of the same start and fewer
    // elements is covered by a longer one's copy, not the other way round)
    std::unordered_map<const char*, int64_t> current;
  };
  const Block* block_of(const char* p, size_t bytes, const char** begin) const;
  Alloc alloc_;
  Release release_;
  std::map<const char*, Block> blocks_;  // by first byte; blocks never overlap
  uint64_t version_ = 0;
};

}  // namespace duo
