// The traffic counter (traffic.h): DeviceMemory's counted scopes and the SIGSEGV handler that records first reads
// and writes of device pages.
#include "emu/traffic.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "emu/emu.h"

namespace duo::emu {

namespace {
constexpr uint8_t kTracked = 1, kRead = 2, kWritten = 4;
size_t page_size() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

std::atomic<DeviceMemory*> g_counted{nullptr};
struct sigaction g_previous;

void on_segv(int sig, siginfo_t* info, void* context) {
  DeviceMemory* m = g_counted.load();
#if defined(__x86_64__)
  const bool write = (static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
  const bool write = false;
#endif
  if (m && m->on_fault(info->si_addr, write)) return;  // a counted first access: retry it
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {  // default action: re-raise with it on return
    signal(sig, SIG_DFL);
  }
}
}  // namespace

void DeviceMemory::start_counting() {
#if !defined(__x86_64__)
  fail("emulated device", "traffic counting needs x86-64 Linux (the page fault's write bit)", "");
#endif
  std::lock_guard lock(mu_);
  DUO_CHECK(depth_ == 0 && !counting_, "emulated device", "traffic counting started inside a device scope or twice",
            "start one TrafficCounter between launches");
  page_bits_ = std::make_unique<std::atomic<uint8_t>[]>(capacity_ / page_size());  // zeroed
  scopes_.clear();
  counting_ = true;
}

std::vector<ScopeTraffic> DeviceMemory::stop_counting() {
  std::lock_guard lock(mu_);
  counting_ = false;
  page_bits_.reset();
  return std::move(scopes_);
}

void DeviceMemory::add_tensor_flops(double f) {
  if (counting_) flops_.fetch_add(uint64_t(f));
}

void DeviceMemory::add_fragment_bytes(uint64_t b) {
  if (counting_) fragment_bytes_.fetch_add(b);
}

void DeviceMemory::begin_scope_locked(const char* what) {
  const size_t ps = page_size();
  current_ = ScopeTraffic{what ? what : "device access"};
  flops_ = 0;
  fragment_bytes_ = 0;
  for (const auto& [user, s] : live_) {
    for (size_t p = s.slot / ps; p < (s.slot + s.pages) / ps; ++p) page_bits_[p] = kTracked;
    if (mprotect(base_ + s.slot, s.pages, PROT_NONE) != 0)
      fail("emulated device", "mprotect of device memory failed", "the process may be out of memory mappings");
  }
}

void DeviceMemory::end_scope_locked() {
  const size_t ps = page_size();
  for (const auto& [user, s] : live_) {
    const size_t lo = user, hi = user + s.bytes;  // the allocation's own bytes
    for (size_t p = s.slot / ps; p < (s.slot + s.pages) / ps; ++p) {
      const uint8_t bits = page_bits_[p].exchange(0);
      const size_t a = std::max(lo, p * ps), b = std::min(hi, (p + 1) * ps);
      if (b <= a) continue;
      if (bits & kRead) current_.read += b - a;
      if (bits & kWritten) current_.written += b - a;
    }
    protect_locked(s, false);
  }
  current_.tensor_flops = double(flops_.load());
  current_.fragment_bytes = fragment_bytes_.load();
  scopes_.push_back(std::move(current_));
}

bool DeviceMemory::on_fault(const void* addr, bool write) {
  if (!counting_ || !in_region(addr)) return false;
  const size_t ps = page_size(), page = size_t(static_cast<const char*>(addr) - base_) / ps;
  std::atomic<uint8_t>& bits = page_bits_[page];
  if (!(bits.load() & kTracked)) return false;  // a guard page or freed memory: a real fault
  bits.fetch_or(write ? kWritten : kRead);
  // A write opens the page for both; a read only for reading, so that a later write faults and is counted.
  return mprotect(base_ + page * ps, ps, write ? PROT_READ | PROT_WRITE : PROT_READ) == 0;
}

TrafficCounter::TrafficCounter() {
  DeviceMemory& m = device().memory();
  m.start_counting();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous);
  g_counted = &m;
}

std::vector<ScopeTraffic> TrafficCounter::stop() {
  if (!running_) return {};
  running_ = false;
  g_counted = nullptr;
  sigaction(SIGSEGV, &g_previous, nullptr);
  return device().memory().stop_counting();
}

TrafficCounter::~TrafficCounter() { stop(); }

}  // namespace duo::emu
