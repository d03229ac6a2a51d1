// Stream capture under the emulator: see capture.h.
#include "emu/capture.h"

#include "emu/emu.h"

namespace duo::emu {

std::vector<Stream*>& thread_captures() {
  thread_local std::vector<Stream*> streams;
  return streams;
}

void invalidate_thread_captures() {
  for (Stream* s : thread_captures()) s->invalidated = true;
}

Enqueued enqueue(Stream* s, Work work) {
  if (s && s->capture) {
    s->capture->work.push_back(std::move(work));
    return Enqueued::Recorded;
  }
  if (!s && thread_captures_any()) {
    invalidate_thread_captures();
    return Enqueued::Implicit;
  }
  work();
  return Enqueued::Ran;
}

void pin(const void* p, size_t bytes) { device().pin(p, bytes); }
void unpin(const void* p) { device().unpin(p); }
bool pinned(const void* p, size_t bytes) { return device().pinned(p, bytes); }

void Device::pin(const void* p, size_t bytes) {
  std::lock_guard lock(mu_);
  pinned_[static_cast<const char*>(p)] = bytes;
}

void Device::unpin(const void* p) {
  std::lock_guard lock(mu_);
  pinned_.erase(static_cast<const char*>(p));
}

bool Device::pinned(const void* p, size_t bytes) {
  std::lock_guard lock(mu_);
  const char* c = static_cast<const char*>(p);
  auto it = pinned_.upper_bound(c);  // the first allocation starting after p
  if (it == pinned_.begin()) return false;
  --it;
  return c + bytes <= it->first + it->second;
}

}  // namespace duo::emu
