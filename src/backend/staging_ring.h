// The books of a ring of host staging memory for uploads that finish later (CudaOps::from_host). An upload copies
// the caller's bytes into the ring at once, so the caller may reuse or free its buffer as soon as the call returns,
// and the device copies them from the ring on its stream, in order with the kernels, without the host waiting.
// Bytes of the ring are written again only after the copy that read them has finished: each upload leaves a fence
// (a CUDA event recorded after its copy), and reserve() waits on the newest fence whose bytes overlap the new ones
// (the stream is in order, so every older fence has passed too); when it must wait at all, it waits for the newest
// fence within a quarter of the ring ahead, so that the next uploads find their bytes free: at most about four
// waits a lap, each for a copy issued most of a lap earlier (long finished unless the device is that far behind).
// This class keeps the books only: where the next upload goes, which fences are pending, which are free for reuse.
// The backend owns the memory and the fences.
//
//   size_t at = ring.reserve(n);          // may wait (through the callback) for old copies of these bytes
//   std::memcpy(host + at, src, n);       // then the device copy from host + at, then a fence after it:
//   ring.issued(fence);
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace duo {

class StagingRing {
 public:
  using Fence = void*;
  using Wait = std::function<void(Fence)>;  // returns once the copy the fence follows has finished

  static constexpr size_t kAlign = 64;  // every upload starts on a cache line
  StagingRing(size_t capacity, Wait wait);

  size_t capacity() const { return capacity_; }
  // Whether n bytes go through the ring: 0 < n <= capacity / 4 (larger uploads are rare — whole weights at load —
  // and are copied synchronously by the caller instead).
  bool takes(size_t n) const { return n > 0 && n <= capacity_ / 4; }
  // The offset of n bytes (takes(n)) whose earlier copies have all finished. Call issued() before the next reserve.
  size_t reserve(size_t n);
  // The copy of the last reserve()d bytes was issued, and `fence` passes once it has finished.
  void issued(Fence fence);
  // A fence no longer pending, for the caller to record again (nullptr: none; the caller makes a new one).
  Fence reusable_fence();
  // Waits for every pending copy (before the memory is freed).
  void drain();
  // Every fence, pending or free, for the caller to destroy once it knows all copies have finished (no waiting);
  // the ring is empty afterwards.
  std::vector<Fence> take_fences();

  size_t pending() const { return pending_.size(); }
  size_t waits() const { return waits_; }  // fences waited on so far

 private:
  struct Upload {
    size_t begin, end;
    Fence fence;
  };
  void retire_through(size_t index);  // waits on pending_[index]'s fence; it and every older one become free
  size_t capacity_;
  Wait wait_;
  size_t head_ = 0;  // where the next upload starts, unless it must wrap to 0
  bool reserved_ = false;
  size_t reserved_begin_ = 0, reserved_end_ = 0;
  std::deque<Upload> pending_;  // oldest first
  std::vector<Fence> free_;
  size_t waits_ = 0;
};

}  // namespace duo
