#include "backend/plan_ops.h"

#include <cstring>

#include "core/error.h"

namespace duo {

PlanOps::PlanOps()
    : copies_([this](size_t n) { return alloc(n); }, [this](void* p) { release(p); }) {}

PlanOps::~PlanOps() { copies_.clear(); }

void* PlanOps::alloc(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  const uintptr_t p = next_;
  next_ += rounded + 256;  // a gap, so that no two ranges touch
  sizes_[p] = rounded;
  live_ += rounded;
  peak_ = std::max(peak_, live_);
  return reinterpret_cast<void*>(p);
}

void PlanOps::release(void* p) {
  auto it = sizes_.find(reinterpret_cast<uintptr_t>(p));
  DUO_CHECK(it != sizes_.end(), "PlanOps::release", "not an address this backend handed out", "");
  live_ -= it->second;
  sizes_.erase(it);
  copies_.released(p);
}

void PlanOps::to_host(void* dst, const Tensor& src) {
  std::memset(dst, 0, src.nbytes());
  to_host_ += double(src.nbytes());
}

void PlanOps::from_host(Tensor& dst, const void*) {
  from_host_ += double(dst.nbytes());
  copies_.written(dst.data, dst.nbytes());
}

}  // namespace duo
