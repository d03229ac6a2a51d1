#include "backend/staging_ring.h"

#include <algorithm>

#include "core/error.h"

namespace duo {

StagingRing::StagingRing(size_t capacity, Wait wait) : capacity_(capacity / kAlign * kAlign), wait_(std::move(wait)) {
  DUO_CHECK(capacity_ >= 4 * kAlign, "StagingRing", str("capacity of ", capacity, " bytes"),
            str("give it at least ", 4 * kAlign, " bytes"));
}

size_t StagingRing::reserve(size_t n) {
  DUO_CHECK(takes(n), "StagingRing::reserve", str(n, " bytes in a ring of ", capacity_),
            "upload more than a quarter of the ring synchronously (takes())");
  DUO_CHECK(!reserved_, "StagingRing::reserve", "the last reservation was not issued", "call issued() after each copy");
  const size_t rounded = (n + kAlign - 1) / kAlign * kAlign;
  const size_t begin = head_ + rounded <= capacity_ ? head_ : 0, end = begin + rounded;
  // The newest pending upload whose bytes overlap [begin, end) — or, when one does, the next quarter of the ring
  // from begin: one wait then frees the bytes of the next several uploads. Waiting for it covers every older one.
  const size_t window = std::min(capacity_, std::max(end, begin + capacity_ / 4));
  bool overlap = false;
  for (const Upload& u : pending_) overlap = overlap || (u.begin < end && begin < u.end);
  for (size_t i = pending_.size(); overlap && i-- > 0;) {
    const Upload& u = pending_[i];
    if (u.begin < window && begin < u.end) {
      retire_through(i);
      break;
    }
  }
  head_ = end == capacity_ ? 0 : end;
  reserved_ = true;
  reserved_begin_ = begin;
  reserved_end_ = end;
  return begin;
}

void StagingRing::issued(Fence fence) {
  DUO_CHECK(reserved_, "StagingRing::issued", "no reservation to issue", "call reserve() first");
  pending_.push_back({reserved_begin_, reserved_end_, fence});
  reserved_ = false;
}

StagingRing::Fence StagingRing::reusable_fence() {
  if (free_.empty()) return nullptr;
  const Fence f = free_.back();
  free_.pop_back();
  return f;
}

void StagingRing::drain() {
  if (!pending_.empty()) retire_through(pending_.size() - 1);
}

std::vector<StagingRing::Fence> StagingRing::take_fences() {
  std::vector<Fence> all = std::move(free_);
  free_.clear();
  for (const Upload& u : pending_) all.push_back(u.fence);
  pending_.clear();
  reserved_ = false;
  head_ = 0;
  return all;
}

void StagingRing::retire_through(size_t index) {
  wait_(pending_[index].fence);
  ++waits_;
  for (size_t i = 0; i <= index; ++i) {
    free_.push_back(pending_.front().fence);
    pending_.pop_front();
  }
}

}  // namespace duo
