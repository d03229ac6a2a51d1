#include "backend/weight_copies.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace duo {

namespace {

bool overlaps(const char* a0, const char* a1, const char* b0, const char* b1) { return a0 < b1 && b0 < a1; }

}  // namespace

void WeightCopies::begin(const void* weights, size_t bytes) {
  const char* p = static_cast<const char*>(weights);
  DUO_ASSERT(bytes % sizeof(float) == 0);
  ++version_;
  auto it = blocks_.find(p);
  if (it == blocks_.end() || it->second.end != p + bytes) {
    // A new block. The blocks it overlaps were weights in memory since freed (or resized): their copies go.
    for (auto j = blocks_.begin(); j != blocks_.end();) {
      if (!overlaps(j->first, j->second.end, p, p + bytes)) {
        ++j;
        continue;
      }
      DUO_ASSERT(j->second.holders == 0);
      void* copy = j->second.copy;
      j = blocks_.erase(j);
      release_(copy);
    }
    Block b;
    b.end = p + bytes;
    b.copy = alloc_(bytes / 2);
    it = blocks_.emplace(p, b).first;
  }
  Block& b = it->second;
  if (b.holders++ == 0) {
    b.all_current = b.adamw_wrote;
    b.adamw_wrote = false;
    b.current.clear();
  }
}

void WeightCopies::end(const void* weights) {
  auto it = blocks_.find(static_cast<const char*>(weights));
  DUO_ASSERT(it != blocks_.end() && it->second.holders > 0);
  ++version_;
  Block& b = it->second;
  if (--b.holders == 0) {  // unfrozen: the weights may change from now on
    b.all_current = false;
    b.current.clear();
  }
}

const WeightCopies::Block* WeightCopies::block_of(const char* p, size_t bytes, const char** begin) const {
  auto it = blocks_.upper_bound(p);  // the first block starting after p
  if (it == blocks_.begin()) return nullptr;
  --it;
  if (p + bytes > it->second.end) return nullptr;
  *begin = it->first;
  return &it->second;
}

WeightCopies::Slot WeightCopies::find(const Tensor& W) const {
  if (W.dtype != DType::F32 || W.empty() || !W.is_contiguous()) return {};
  const char* p = static_cast<const char*>(W.data);
  const char* begin = nullptr;
  const Block* b = block_of(p, W.nbytes(), &begin);
  if (!b || b->holders == 0) return {};
  char* copy = static_cast<char*>(b->copy) + (p - begin) / 2;
  if (reinterpret_cast<uintptr_t>(copy) % 16 != 0) return {};
  const auto made = b->current.find(p);
  return {copy, b->all_current || (made != b->current.end() && made->second >= W.numel())};
}

void WeightCopies::made(const Tensor& W) {
  if (!find(W).copy) return;
  const char* begin = nullptr;
  block_of(static_cast<const char*>(W.data), W.nbytes(), &begin);
  int64_t& n = blocks_.at(begin).current[static_cast<const char*>(W.data)];
  n = std::max(n, W.numel());
  ++version_;
}

void* WeightCopies::follows(const Tensor& params) const {
  if (params.dtype != DType::F32 || params.empty()) return nullptr;
  auto it = blocks_.find(static_cast<const char*>(params.data));
  if (it == blocks_.end() || it->second.end != static_cast<const char*>(params.data) + params.nbytes() ||
      it->second.holders > 0)
    return nullptr;
  return it->second.copy;
}

void WeightCopies::updated(const Tensor& params, bool copy_written) {
  if (!copy_written) {
    written(params.data, params.nbytes());
    return;
  }
  blocks_.at(static_cast<const char*>(params.data)).adamw_wrote = true;
  ++version_;
}

void WeightCopies::written(const void* p, size_t bytes) {
  const char* q = static_cast<const char*>(p);
  for (auto& [begin, b] : blocks_)
    if (overlaps(begin, b.end, q, q + bytes)) {
      ++version_;
      b.adamw_wrote = false;
      b.all_current = false;
      b.current.clear();
    }
}

void WeightCopies::released(const void* p) {
  auto it = blocks_.find(static_cast<const char*>(p));
  if (it == blocks_.end()) return;
  ++version_;
  void* copy = it->second.copy;
  blocks_.erase(it);  // first: releasing the copy may call back into released()
  release_(copy);
}

void WeightCopies::clear() {
  while (!blocks_.empty()) released(blocks_.begin()->first);
}

size_t WeightCopies::bytes() const {
  size_t n = 0;
  for (const auto& [begin, b] : blocks_) n += size_t(b.end - begin) / 2;
  return n;
}

}  // namespace duo
