// DeviceMemory: a first-fit allocator over one mmap'd region; each allocation's data pages follow the open scopes,
// its guard page stays inaccessible.
#include "emu/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <iterator>

#include "core/error.h"

namespace duo::emu {

namespace {
size_t page_size() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

DeviceMemory::DeviceMemory(size_t capacity, bool guard) : capacity_(round_up(capacity, page_size())), guard_(guard) {
  // NORESERVE: only pages that are touched cost memory; the rest is address space. Where the address space is
  // limited (ulimit -v), a smaller device: halve down to 256 MiB before giving up.
  constexpr size_t kSmallest = size_t(256) << 20;
  void* p = mmap(nullptr, capacity_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  while (p == MAP_FAILED && capacity_ / 2 >= kSmallest) {
    capacity_ = round_up(capacity_ / 2, page_size());
    p = mmap(nullptr, capacity_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (p == MAP_FAILED)
    fail("emulated device", str("cannot reserve ", capacity_, " bytes of address space for device memory"),
         "raise the address-space limit (ulimit -v)");
  base_ = static_cast<char*>(p);
}

DeviceMemory::~DeviceMemory() { munmap(base_, capacity_); }

void DeviceMemory::protect_locked(const Slot& s, bool accessible) {
  const int prot = accessible || !guard_ ? PROT_READ | PROT_WRITE : PROT_NONE;
  if (mprotect(base_ + s.slot, s.pages, prot) != 0)
    fail("emulated device", "mprotect of device memory failed", "the process may be out of memory mappings");
}

void* DeviceMemory::alloc(size_t bytes) {
  const size_t used = round_up(std::max<size_t>(bytes, 1), 256);  // cudaMalloc's granularity
  const size_t pages = round_up(used, page_size()), len = pages + page_size();  // data pages + a guard page
  std::lock_guard lock(mu_);
  size_t off = top_;
  auto it = free_.begin();
  for (; it != free_.end(); ++it)
    if (it->second >= len) break;
  if (it != free_.end()) {
    off = it->first;
    const size_t rest = it->second - len;
    free_.erase(it);
    if (rest) free_[off + len] = rest;
  } else {
    if (len > capacity_ - top_) return nullptr;
    top_ += len;
  }
  const Slot s{off, pages, bytes};
  if (mprotect(base_ + off, pages, PROT_READ | PROT_WRITE) != 0)
    fail("emulated device", str("mprotect of a new ", pages, "-byte allocation failed"),
         "the process may be out of memory mappings");
  std::memset(base_ + off, 0xFF, pages);  // like the GPU, fresh memory is garbage; NaN garbage shows up in results
  if (depth_ == 0) protect_locked(s, false);
  const size_t user = off + pages - used;
  live_[user] = s;
  return base_ + user;
}

bool DeviceMemory::free(void* ptr) {
  char* p = static_cast<char*>(ptr);
  std::lock_guard lock(mu_);
  if (p < base_ || p >= base_ + capacity_) return false;
  auto it = live_.find(size_t(p - base_));
  if (it == live_.end()) return false;
  const Slot s = it->second;
  live_.erase(it);
  mprotect(base_ + s.slot, s.pages, PROT_NONE);  // freed memory is out of reach of kernels too
  madvise(base_ + s.slot, s.pages, MADV_DONTNEED);  // give the pages back; a later allocation refills them
  size_t start = s.slot, len = s.pages + page_size();
  // coalesce with the free runs on either side
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + len) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = len;
  return true;
}

bool DeviceMemory::holds(const void* ptr, size_t bytes) const {
  const char* p = static_cast<const char*>(ptr);
  if (p < base_ || p >= base_ + capacity_) return false;
  const size_t off = size_t(p - base_);
  std::lock_guard lock(mu_);
  auto it = live_.upper_bound(off);
  if (it == live_.begin()) return false;
  --it;
  return off + bytes <= it->first + std::max<size_t>(it->second.bytes, 1);
}

size_t DeviceMemory::in_use() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [user, s] : live_) n += s.bytes;
  return n;
}

void DeviceMemory::open(const char* what) {
  std::lock_guard lock(mu_);
  if (depth_++ != 0) return;
  if (counting_) begin_scope_locked(what);
  else if (guard_)
    for (const auto& [user, s] : live_) protect_locked(s, true);
}

void DeviceMemory::close() {
  std::lock_guard lock(mu_);
  if (--depth_ != 0) return;
  if (counting_) end_scope_locked();
  else if (guard_)
    for (const auto& [user, s] : live_) protect_locked(s, false);
}

}  // namespace duo::emu
