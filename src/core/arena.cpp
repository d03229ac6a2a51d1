#include "core/arena.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace duo {

Arena::~Arena() {
  if (release_) release_(base_);
  else std::free(base_);
}

size_t Arena::reserve(size_t bytes, const std::string& what) {
  DUO_ASSERT(base_ == nullptr);
  size_t off = (size_ + kAlign - 1) / kAlign * kAlign;
  entries_.push_back({what, off, bytes});
  size_ = off + bytes;
  return off;
}

size_t Arena::reserve_tensor(DType t, std::initializer_list<int64_t> dims, const std::string& what) {
  size_t n = 1;
  for (int64_t d : dims) n *= (size_t)d;
  return reserve(n * dtype_size(t), what);
}

void Arena::allocate() {
  DUO_ASSERT(base_ == nullptr);
  size_t total = (size_ + kAlign - 1) / kAlign * kAlign;
  if (total == 0) total = kAlign;
  base_ = static_cast<char*>(std::aligned_alloc(kAlign, total));
  if (!base_)
    fail("memory", str("cannot allocate ", human_bytes((double)total), " for the run"),
         "use a smaller --loader.batch_size or model; the plan was:\n" + plan());
  std::memset(base_, 0, total);
}

void Arena::allocate(const std::function<void*(size_t)>& alloc, std::function<void(void*)> release) {
  DUO_ASSERT(base_ == nullptr);
  size_t total = (size_ + kAlign - 1) / kAlign * kAlign;
  base_ = static_cast<char*>(alloc(total ? total : kAlign));
  if (!base_) fail("memory", str("cannot allocate ", human_bytes((double)total)), "the plan was:\n" + plan());
  release_ = std::move(release);
}

void* Arena::at(size_t offset) const {
  DUO_ASSERT(base_ != nullptr && offset <= size_);
  return base_ + offset;
}

Tensor Arena::tensor(size_t offset, DType t, std::initializer_list<int64_t> dims) const {
  return Tensor(at(offset), t, dims);
}

std::string Arena::plan(size_t max_lines) const {
  std::vector<Entry> e = entries_;
  std::stable_sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) { return a.bytes > b.bytes; });
  std::string s;
  char line[256];
  size_t rest = 0, n_rest = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    if (i >= max_lines) { rest += e[i].bytes; ++n_rest; continue; }
    std::snprintf(line, sizeof line, "  %-40s %12s\n", e[i].what.c_str(), human_bytes((double)e[i].bytes).c_str());
    s += line;
  }
  if (n_rest) {
    std::snprintf(line, sizeof line, "  %-40s %12s\n", str(n_rest, " smaller blocks").c_str(), human_bytes((double)rest).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line, "  %-40s %12s\n", "total", human_bytes((double)size_).c_str());
  return s + line;
}

std::string human_bytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) { b /= 1024.0; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
  return buf;
}

}  // namespace duo
