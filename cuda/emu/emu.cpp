// The block scheduler ("hub") of the SIMT emulator, its fiber stacks, and the launch driver. See emu.h for
// the model. Each Worker belongs to one OS thread and runs one block at a time: it resumes the block's
// fibers in the configured order until all are blocked, then completes warp collectives or releases the
// barrier, and reports a divergent kernel when it can do neither.
#include "emu/emu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <random>

#include "core/error.h"

namespace duo::emu {
namespace bctx = boost::context;

namespace {
// The emulated thread now running on this OS thread. Fibers never migrate between OS threads, and the hub
// sets this before every resume, so a thread_local is exactly "the current fiber's context".
thread_local ThreadCtx* g_current = nullptr;

constexpr size_t kSmemAlign = 16;  // every shared allocation is 16-byte aligned (cp.async, ldmatrix, float4)
// After the dynamic shared memory and after each static array: 16 bytes of a known pattern, checked when the
// block ends, so a write past the end of a shared array is reported (on a GPU it silently lands in the next
// array). They come out of extra arena room, not out of the kernel's shared-memory limits.
constexpr size_t kCanary = 16;
constexpr unsigned char kCanaryByte = 0xA5;
constexpr size_t kCanaryRoom = 4096;  // canaries of up to 255 shared arrays per block
size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
std::string dims(uint3 d) { return str("(", d.x, ",", d.y, ",", d.z, ")"); }
}  // namespace

ThreadCtx& cur() {
  if (!g_current)
    fail("SIMT emulator",
         "a device intrinsic (threadIdx, __syncthreads, __shfl_sync, shared memory…) was called "
         "outside a kernel",
         "call kernels through DUO_LAUNCH(kernel, grid, block, smem, stream)(args...)");
  return *g_current;
}

std::string Site::str() const { return duo::str(what, " at ", file, ":", line); }
std::string ThreadCtx::name() const { return str("thread ", dims(thread_idx)); }

// ---- Fiber stacks: fixed size with a guard page (an overflow faults instead of corrupting a neighbour),
// allocated once per worker and reused by every block and launch.
class StackPool {
 public:
  explicit StackPool(size_t bytes) : alloc_(bytes), bytes_(bytes) { free_.reserve(1024); }
  ~StackPool() {
    for (auto& s : free_) alloc_.deallocate(s);
  }
  size_t bytes() const { return bytes_; }
  bctx::stack_context take() {
    if (free_.empty()) return alloc_.allocate();
    bctx::stack_context s = free_.back();
    free_.pop_back();
    return s;
  }
  // At most 1024 stacks (one block) are ever out, and the reserve above covers them: push_back cannot throw.
  void give(const bctx::stack_context& s) noexcept { free_.push_back(s); }

 private:
  bctx::protected_fixedsize_stack alloc_;
  size_t bytes_;
  std::vector<bctx::stack_context> free_;
};

// The StackAllocator interface boost::context::fiber asks for, drawing from a pool.
struct PooledStack {
  StackPool* pool;
  bctx::stack_context allocate() { return pool->take(); }
  void deallocate(bctx::stack_context& s) noexcept { pool->give(s); }
};

struct LaunchInfo {
  const char* name;
  std::source_location at;
  dim3 grid, block;
  size_t dyn_smem;
  const std::function<void()>* body;
  Config cfg;
  std::string where() const { return str("kernel ", name, " (launched at ", at.file_name(), ":", at.line(), ")"); }
};

struct Thread {
  ThreadCtx ctx;
  bctx::fiber fiber;  // the suspended kernel thread; empty before it starts and after it exits
  bctx::fiber hub;    // inside the fiber: the way back to the hub
  bool started = false;
  std::exception_ptr error;
};

struct Block {
  const LaunchInfo* launch = nullptr;
  uint3 idx{};
  uint64_t linear = 0;
  unsigned n = 0;
  Thread* threads = nullptr;
  unsigned char* smem = nullptr;      // the worker's arena: dynamic shared memory first, then the static arrays
  size_t used = 0, static_bytes = 0;  // arena bytes handed out (canaries included); bytes of them that are static
  size_t canary_bytes = 0;            // of `used`
  std::vector<std::pair<const void*, void*>> statics;  // declaration key -> its array in this block
  std::vector<std::pair<size_t, std::string>> canaries;  // arena offset of each canary, and whose end it guards
  ThreadCtx& th(unsigned i) { return threads[i].ctx; }
};

namespace {
// Suspends the calling fiber; returns when the hub resumes it (its wait has been completed).
void suspend(ThreadCtx& t) { t.self->hub = std::move(t.self->hub).resume(); }
}  // namespace

int block_barrier(Site site, int pred) {
  ThreadCtx& t = cur();
  t.wait = Wait::Barrier;
  t.site = site;
  t.pred = pred != 0;
  suspend(t);
  return t.result;
}

void warp_collective(unsigned mask, WarpFn fn, void* data, Site site) {
  ThreadCtx& t = cur();
  if (!(mask >> t.lane() & 1u))
    fail("", str(site.str(), ": lane ", t.lane(), " calls it with mask 0x", std::hex, mask, " that excludes itself"),
         "the mask of a *_sync intrinsic must include the calling lane (use __activemask() or 0xffffffff)");
  t.wait = Wait::Warp;
  t.site = site;
  t.mask = mask;
  t.fn = fn;
  t.data = data;
  suspend(t);
}

void* shared_dynamic() { return cur().block->smem; }

// A canary right after the last byte handed out, unaligned, so that a write one element past the end hits it
// (the arena has kCanaryRoom beyond the largest shared memory).
static void add_canary(Block& b, std::string guarded) {
  const size_t off = b.used;
  if (off + kCanary > b.launch->cfg.max_smem + kCanaryRoom) return;  // out of canary room: unguarded
  std::memset(b.smem + off, kCanaryByte, kCanary);
  b.canaries.emplace_back(off, std::move(guarded));
  b.canary_bytes += off + kCanary - b.used;
  b.used = off + kCanary;
}

void* shared_static(const void* key, size_t bytes, Site site) {
  Block& b = *cur().block;
  for (auto& [k, p] : b.statics)
    if (k == key) return p;
  const Config& cfg = b.launch->cfg;
  size_t off = align_up(b.used, kSmemAlign);
  b.static_bytes += bytes;
  if (b.static_bytes > cfg.max_static_smem || off + bytes - b.canary_bytes > cfg.max_smem)
    fail("",
         str(site.str(), ": static shared memory reaches ", b.static_bytes, " bytes (", b.launch->dyn_smem,
             " dynamic); the limits are ", cfg.max_static_smem, " static and ", cfg.max_smem, " in all"),
         "move large buffers to dynamic shared memory (DUO_DYN_SHARED) and raise the kernel's limit with "
         "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes)");
  void* p = b.smem + off;
  std::memset(p, 0xFF, bytes);  // poison: an uninitialised float reads as NaN
  b.used = off + bytes;
  add_canary(b, str("shared array ", site.str()));
  b.statics.emplace_back(key, p);
  return p;
}

// ---- One OS thread's resources, and the hub that runs a block on them.
struct Worker {
  explicit Worker(const Config& cfg) : stacks(cfg.stack_bytes), arena(cfg.max_smem + kCanaryRoom) {}
  StackPool stacks;
  std::vector<unsigned char> arena;  // the running block's shared memory (new[] gives 16-byte alignment)
  std::vector<Thread> threads;

  void run_block(const LaunchInfo& L, uint64_t linear);

 private:
  // The current round: threads are resumed in order[0..n); pos is the one running now. A fiber whose thread
  // exits without a sync point goes straight on with the next thread of the round if that one has not
  // started yet ("lazy fibers": a kernel without barriers runs a whole block on one fiber, in the same order
  // as if each thread had its own). running = the thread the fiber is executing now.
  std::vector<unsigned> order;
  size_t pos = 0;
  Thread* running = nullptr;
  Thread* adopt_next();
  void resume(Block& b, Thread& t);
  bool complete_warp_ops(Block& b);
  bool release_barrier(Block& b);
  [[noreturn]] void fail_stuck(Block& b);
  [[noreturn]] void fail_block(Block& b, const std::string& what, const std::string& hint);
  void abandon(Block& b);
};

void Worker::run_block(const LaunchInfo& L, uint64_t linear) {
  const dim3 g = L.grid, d = L.block;
  Block b;
  b.launch = &L;
  b.idx = {unsigned(linear % g.x), unsigned(linear / g.x % g.y), unsigned(linear / (uint64_t(g.x) * g.y))};
  b.linear = linear;
  b.n = d.x * d.y * d.z;
  b.smem = arena.data();
  if (threads.size() < b.n) threads.resize(b.n);
  b.threads = threads.data();
  for (unsigned i = 0; i < b.n; ++i) {
    Thread& t = threads[i];
    ThreadCtx& c = t.ctx;
    c.thread_idx = {i % d.x, i / d.x % d.y, i / (d.x * d.y)};
    c.block_idx = b.idx;
    c.block_dim = d;
    c.grid_dim = g;
    c.linear = i;
    c.wait = Wait::Ready;
    c.copies.clear();
    c.group_ends.clear();
    c.block = &b;
    c.self = &t;
    t.started = false;
    t.error = nullptr;
  }
  std::memset(b.smem, 0xFF, L.dyn_smem);  // poison: uninitialised shared memory reads as NaN
  b.used = L.dyn_smem;
  if (L.dyn_smem) add_canary(b, "the dynamic shared memory");

  order.resize(b.n);
  for (uint64_t round = 0;; ++round) {
    std::iota(order.begin(), order.end(), 0u);
    if (L.cfg.schedule == Schedule::Reverse) std::reverse(order.begin(), order.end());
    if (L.cfg.schedule == Schedule::Random) {  // a fresh permutation per block and round, replayable by seed
      std::mt19937_64 rng(L.cfg.seed ^ (linear * 0x9E3779B97F4A7C15ull) ^ (round * 0xBF58476D1CE4E5B9ull));
      std::shuffle(order.begin(), order.end(), rng);
    }
    for (pos = 0; pos < b.n; ++pos)
      if (threads[order[pos]].ctx.wait == Wait::Ready) resume(b, threads[order[pos]]);
    if (complete_warp_ops(b)) continue;
    bool all_done =
        std::all_of(threads.begin(), threads.begin() + b.n, [](const Thread& t) { return t.ctx.wait == Wait::Done; });
    if (all_done) {
      for (const auto& [off, guarded] : b.canaries)
        for (size_t i = 0; i < kCanary; ++i)
          if (b.smem[off + i] != kCanaryByte)
            fail_block(b, str("a thread wrote past the end of ", guarded, " (", i, " bytes after it)"),
                       "check the shared-memory indexing: on a GPU the write lands in the next array");
      return;
    }
    if (!release_barrier(b)) fail_stuck(b);
  }
}

Thread* Worker::adopt_next() {
  for (size_t k = pos + 1; k < order.size(); ++k) {
    Thread& t = threads[order[k]];
    if (t.ctx.wait != Wait::Ready) continue;
    if (t.started) return nullptr;  // it has its own fiber: the hub must resume it
    pos = k;
    return &t;
  }
  return nullptr;
}

void Worker::resume(Block& b, Thread& t) {
  running = &t;
  if (!t.started) {
    t.started = true;
    const std::function<void()>* body = b.launch->body;
    t.fiber = bctx::fiber(std::allocator_arg, PooledStack{&stacks}, [this, body](bctx::fiber&& hub) {
      Thread* me = running;
      me->hub = std::move(hub);
      for (;;) {
        try {
          (*body)();
        } catch (const bctx::detail::forced_unwind&) {
          throw;  // the hub is abandoning this fiber: let Boost unwind its stack
        } catch (...) {
          me->error = std::current_exception();
        }
        me->ctx.wait = Wait::Done;
        Thread* next = me->error ? nullptr : adopt_next();
        if (!next) break;
        next->started = true;
        next->hub = std::move(me->hub);
        me = running = next;
        g_current = &me->ctx;
      }
      return std::move(me->hub);
    });
  }
  g_current = &t.ctx;
  bctx::fiber f = std::move(t.fiber).resume();
  g_current = nullptr;
  running->fiber = std::move(f);  // the fiber belongs to the thread it ran last
  Thread& last = *running;
  if (last.error) {
    std::string what = "unknown exception", hint;
    try {
      std::rethrow_exception(last.error);
    } catch (const Error& e) {
      what = e.where().empty() ? e.problem() : e.where() + ": " + e.problem();
      hint = e.hint();
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    fail_block(b, str(last.ctx.name(), ": ", what), hint);
  }
}

// Completes every warp collective whose lanes have all arrived at the same operation with the same mask.
bool Worker::complete_warp_ops(Block& b) {
  bool any = false;
  for (unsigned base = 0; base < b.n; base += 32) {
    unsigned lanes = std::min(32u, b.n - base);
    unsigned exist = lanes == 32 ? ~0u : (1u << lanes) - 1;  // a partial last warp has no lanes above n
    for (unsigned l = 0; l < lanes; ++l) {
      ThreadCtx& t = b.th(base + l);
      if (t.wait != Wait::Warp) continue;
      unsigned active = t.mask & exist;
      bool arrived = true;
      for (unsigned j = 0; j < lanes && arrived; ++j) {
        const ThreadCtx& o = b.th(base + j);
        if (active >> j & 1u) arrived = o.wait == Wait::Warp && o.fn == t.fn && o.mask == t.mask && o.site == t.site;
      }
      if (!arrived) continue;
      void* data[32] = {};
      for (unsigned j = 0; j < lanes; ++j)
        if (active >> j & 1u) data[j] = b.th(base + j).data;
      try {  // a collective may reject its inputs (e.g. mma.sync in a partial warp)
        t.fn(data, active);
      } catch (const Error& e) {
        fail_block(b, str(t.site.str(), ": ", e.problem()), e.hint());
      }
      for (unsigned j = 0; j < lanes; ++j)
        if (active >> j & 1u) b.th(base + j).wait = Wait::Ready;
      any = true;
    }
  }
  return any;
}

// Releases __syncthreads when every thread of the block waits at the same one.
bool Worker::release_barrier(Block& b) {
  int count = 0;
  for (unsigned i = 0; i < b.n; ++i) {
    const ThreadCtx& t = b.th(i);
    if (t.wait != Wait::Barrier || !(t.site == b.th(0).site)) return false;
    count += t.pred;
  }
  for (unsigned i = 0; i < b.n; ++i) {
    b.th(i).wait = Wait::Ready;
    b.th(i).result = count;
  }
  return true;
}

// Every live thread is blocked and nothing can complete: explain why, naming the sites.
void Worker::fail_stuck(Block& b) {
  auto state = [&](const ThreadCtx& o) -> std::string {
    switch (o.wait) {
      case Wait::Done: return "has exited";
      case Wait::Barrier: return "waits at " + o.site.str();
      default: return str("waits at ", o.site.str(), " with mask 0x", std::hex, o.mask);
    }
  };
  for (unsigned i = 0; i < b.n; ++i) {  // a warp collective missing a lane
    const ThreadCtx& t = b.th(i);
    if (t.wait != Wait::Warp) continue;
    unsigned base = i / 32 * 32;
    for (unsigned j = 0; j < 32 && base + j < b.n; ++j) {
      const ThreadCtx& o = b.th(base + j);
      if ((t.mask >> j & 1u) && !(o.wait == Wait::Warp && o.fn == t.fn && o.mask == t.mask && o.site == t.site))
        fail_block(b,
                   str("divergent warp operation: ", t.name(), " (warp ", t.warp(), ", lane ", t.lane(), ") waits at ",
                       t.site.str(), " with mask 0x", std::hex, t.mask, std::dec, ", but lane ", j, " ", state(o)),
                   "every lane named in the mask must reach the same *_sync call; build the mask from the lanes "
                   "that really get there (e.g. __ballot_sync over the loop condition)");
    }
  }
  const ThreadCtx* waiting = nullptr;  // a barrier with a thread missing
  for (unsigned i = 0; i < b.n && !waiting; ++i)
    if (b.th(i).wait == Wait::Barrier) waiting = &b.th(i);
  DUO_ASSERT(waiting != nullptr);
  unsigned n_wait = 0;
  for (unsigned i = 0; i < b.n; ++i) n_wait += b.th(i).wait == Wait::Barrier && b.th(i).site == waiting->site;
  for (unsigned i = 0; i < b.n; ++i) {
    const ThreadCtx& o = b.th(i);
    if (o.wait == Wait::Barrier && o.site == waiting->site) continue;
    fail_block(b,
               str("divergent __syncthreads at ", waiting->site.file, ":", waiting->site.line, ": ", o.name(), " ",
                   state(o), " while ", n_wait, " threads wait there"),
               "every thread of a block must reach the same __syncthreads: do not return early before a barrier "
               "(guard the work with an if instead) and keep barriers out of thread-dependent branches");
  }
  DUO_ASSERT(false);
  std::abort();
}

void Worker::fail_block(Block& b, const std::string& what, const std::string& hint) {
  abandon(b);
  throw Error(str(b.launch->where(), ", block ", dims(b.idx)), what, hint);
}

// Destroys the block's suspended fibers (Boost unwinds their stacks) so the worker is clean for the next block.
void Worker::abandon(Block& b) {
  for (unsigned i = 0; i < b.n; ++i) {
    g_current = &threads[i].ctx;
    threads[i].fiber = bctx::fiber();
  }
  g_current = nullptr;
}

// ---- The device's launch driver (its memory and configuration are in device.cpp).
Device::Device() : cfg_(Config::from_env()), memory_(cfg_.memory_bytes, cfg_.host_guard) {}
Device::~Device() = default;

void Device::launch(const void* kernel, const char* name, dim3 grid, dim3 block, size_t dyn_smem,
                    const std::function<void()>& body, std::source_location at) {
  LaunchInfo L{name, at, grid, block, dyn_smem, &body, cfg_};
  const std::string where = L.where();
  if (g_current)
    fail(where, "launched from inside a kernel", "dynamic parallelism is not emulated; launch from host code");
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    fail(where, str("block ", dims(block), " has ", threads, " threads"),
         "a block has 1..1024 threads (x, y <= 1024, z <= 64); loop over the remaining elements inside the kernel");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    fail(where, str("grid ", dims(grid), " is outside the limits"),
         "grid.x <= 2^31-1 and grid.y, grid.z <= 65535: put the large dimension in grid.x or use a grid-stride loop");
  size_t max_dyn = cfg_.default_dyn_smem;
  {
    std::lock_guard lock(mu_);
    if (auto it = max_dyn_smem_.find(kernel); it != max_dyn_smem_.end()) max_dyn = it->second;
  }
  if (dyn_smem > max_dyn || dyn_smem > cfg_.max_smem)
    fail(where,
         str(dyn_smem, " bytes of dynamic shared memory exceed the kernel's limit of ",
             std::min(max_dyn, cfg_.max_smem)),
         str("above 48 KiB call cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) "
             "first; a block has at most ",
             cfg_.max_smem, " bytes"));

  std::lock_guard launch_lock(launch_mu_);  // one launch at a time, as on a single stream
  const uint64_t n_blocks = uint64_t(grid.x) * grid.y * grid.z;
  const int n_workers = int(std::min<uint64_t>(uint64_t(cfg_.threads), n_blocks));
  if (int(workers_.size()) < n_workers) workers_.resize(n_workers);
  for (int w = 0; w < n_workers; ++w)  // (re)build a worker whose stacks or arena no longer fit the config
    if (!workers_[w] || workers_[w]->stacks.bytes() != cfg_.stack_bytes ||
        workers_[w]->arena.size() != cfg_.max_smem + kCanaryRoom)
      workers_[w] = std::make_unique<Worker>(cfg_);

  HostAccess access(memory_, name);  // kernels may touch device memory; host code may not (memory.h)
  if (n_workers == 1) {
    for (uint64_t b = 0; b < n_blocks; ++b) workers_[0]->run_block(L, b);
    return;
  }
  std::atomic<bool> stop{false};
  std::mutex err_mu;
  std::exception_ptr err;
  uint64_t err_block = n_blocks;
#pragma omp parallel for schedule(dynamic) num_threads(n_workers)
  for (int64_t b = 0; b < int64_t(n_blocks); ++b) {
    if (stop.load(std::memory_order_relaxed)) continue;
    try {
      workers_[omp_get_thread_num()]->run_block(L, uint64_t(b));
    } catch (...) {
      std::lock_guard lock(err_mu);
      if (uint64_t(b) < err_block) err_block = uint64_t(b), err = std::current_exception();
      stop = true;
    }
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace duo::emu
