// The device intrinsics of CUDA C++ on the emulator: block barriers, warp shuffles/votes/reductions and
// atomics. Every sync point takes a defaulted std::source_location, so a divergence report names the line of
// the kernel that made the call.
#pragma once
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "emu/emu.h"

#define DUO_EMU_HERE(what) ::duo::emu::Site::here(what, loc)
using duo_emu_loc = std::source_location;

// ---- Block barriers.
inline void __syncthreads(duo_emu_loc loc = duo_emu_loc::current()) {
  ::duo::emu::block_barrier(DUO_EMU_HERE("__syncthreads"), 0);
}
inline int __syncthreads_count(int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::block_barrier(DUO_EMU_HERE("__syncthreads_count"), pred);
}
inline int __syncthreads_or(int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::block_barrier(DUO_EMU_HERE("__syncthreads_or"), pred) > 0;
}
inline int __syncthreads_and(int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  const auto& d = ::duo::emu::cur().block_dim;
  return ::duo::emu::block_barrier(DUO_EMU_HERE("__syncthreads_and"), pred) == int(d.x * d.y * d.z);
}
// Memory fences order this thread's writes; a fiber's writes are visible to the others as soon as it yields.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

namespace duo::emu {

// ---- Warp shuffles: the PTX shfl.sync rule. c = ((32 - width) << 8) | clamp, segmask = c[12:8], and
//   minLane = lane & segmask, maxLane = minLane | (clamp & ~segmask)
//   idx: j = minLane | (b & ~segmask), ok = j <= maxLane  |  up:   j = lane - b, ok = j >= maxLane (clamp 0)
//   down: j = lane + b, ok = j <= maxLane                  |  bfly: j = lane ^ b, ok = j <= maxLane
// When !ok the lane reads its own value. A source lane outside the active mask yields an undefined value on a
// GPU; here it yields all-ones bytes (NaN for floats) so the bug shows up.
enum class Shfl { Idx, Up, Down, Bfly };
struct ShflLane {
  uint64_t in, out;
  int b;
};
template <Shfl mode, int width>
void shfl_op(void* const lanes[32], unsigned active) {
  static_assert(width >= 1 && width <= 32 && (width & (width - 1)) == 0, "width must be a power of 2 <= 32");
  constexpr int segmask = 32 - width, clamp = mode == Shfl::Up ? 0 : 31;
  for (int lane = 0; lane < 32; ++lane) {
    if (!lanes[lane]) continue;
    auto* me = static_cast<ShflLane*>(lanes[lane]);
    const int b = me->b & 31, min_lane = lane & segmask, max_lane = min_lane | (clamp & ~segmask);
    int j = mode == Shfl::Idx    ? min_lane | (b & ~segmask)
            : mode == Shfl::Up   ? lane - b
            : mode == Shfl::Down ? lane + b
                                 : lane ^ b;
    const bool ok = mode == Shfl::Up ? j >= max_lane : j <= max_lane;
    if (!ok) j = lane;
    me->out = (active >> j & 1u) ? static_cast<ShflLane*>(lanes[j])->in : ~uint64_t(0);
  }
}
template <Shfl mode, class T>
T shfl(unsigned mask, T v, int b, int width, const Site& site) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move values of at most 8 bytes");
  ShflLane me{0, 0, b};
  std::memcpy(&me.in, &v, sizeof(T));
  // width is a run-time argument in CUDA; the rule above wants it at compile time.
  static constexpr WarpFn by_width[6] = {shfl_op<mode, 1>, shfl_op<mode, 2>,  shfl_op<mode, 4>,
                                         shfl_op<mode, 8>, shfl_op<mode, 16>, shfl_op<mode, 32>};
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail("", site.str() + ": width " + std::to_string(width) + " is not a power of 2 in 1..32",
         "pass a width of 1, 2, 4, 8, 16 or 32");
  warp_collective(mask, by_width[std::countr_zero(unsigned(width))], &me, site);
  T r;
  std::memcpy(&r, &me.out, sizeof(T));
  return r;
}

// ---- Votes and reductions over the active lanes: every lane gets op(values of the active lanes).
struct VoteLane {
  uint32_t in, out;
};
enum class Vote { Ballot, Add, Min, Max, And, Or, Xor, Sync };
template <Vote op>
void vote_op(void* const lanes[32], unsigned active) {
  uint32_t r = op == Vote::Min ? ~0u : op == Vote::And ? ~0u : 0u;
  bool first = true;
  for (int l = 0; l < 32; ++l) {
    if (!lanes[l]) continue;
    uint32_t v = static_cast<VoteLane*>(lanes[l])->in;
    switch (op) {
      case Vote::Ballot: r |= (v != 0) << l; break;
      case Vote::Add: r += v; break;
      case Vote::Min: r = first || v < r ? v : r; break;
      case Vote::Max: r = first || v > r ? v : r; break;
      case Vote::And: r &= v; break;
      case Vote::Or: r |= v; break;
      case Vote::Xor: r ^= v; break;
      case Vote::Sync: break;
    }
    first = false;
  }
  for (int l = 0; l < 32; ++l)
    if (active >> l & 1u) static_cast<VoteLane*>(lanes[l])->out = r;
}
template <Vote op>
uint32_t vote(unsigned mask, uint32_t v, const Site& site) {
  VoteLane me{v, 0};
  warp_collective(mask, vote_op<op>, &me, site);
  return me.out;
}

}  // namespace duo::emu

constexpr int warpSize = 32;

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::shfl<::duo::emu::Shfl::Idx>(mask, v, src, width, DUO_EMU_HERE("__shfl_sync"));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::shfl<::duo::emu::Shfl::Up>(mask, v, int(delta), width, DUO_EMU_HERE("__shfl_up_sync"));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::shfl<::duo::emu::Shfl::Down>(mask, v, int(delta), width, DUO_EMU_HERE("__shfl_down_sync"));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::shfl<::duo::emu::Shfl::Bfly>(mask, v, lane_mask, width, DUO_EMU_HERE("__shfl_xor_sync"));
}

inline unsigned __ballot_sync(unsigned mask, int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Ballot>(mask, pred != 0, DUO_EMU_HERE("__ballot_sync"));
}
inline int __any_sync(unsigned mask, int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Or>(mask, pred != 0, DUO_EMU_HERE("__any_sync")) != 0;
}
inline int __all_sync(unsigned mask, int pred, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::And>(mask, pred != 0, DUO_EMU_HERE("__all_sync")) != 0;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, duo_emu_loc loc = duo_emu_loc::current()) {
  ::duo::emu::vote<::duo::emu::Vote::Sync>(mask, 0, DUO_EMU_HERE("__syncwarp"));
}
// sm_80 integer warp reductions.
inline unsigned __reduce_add_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Add>(mask, v, DUO_EMU_HERE("__reduce_add_sync"));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Min>(mask, v, DUO_EMU_HERE("__reduce_min_sync"));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Max>(mask, v, DUO_EMU_HERE("__reduce_max_sync"));
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::And>(mask, v, DUO_EMU_HERE("__reduce_and_sync"));
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Or>(mask, v, DUO_EMU_HERE("__reduce_or_sync"));
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v, duo_emu_loc loc = duo_emu_loc::current()) {
  return ::duo::emu::vote<::duo::emu::Vote::Xor>(mask, v, DUO_EMU_HERE("__reduce_xor_sync"));
}

// ---- Atomics: real host atomics, because blocks may run on several OS threads (DUO_EMU_THREADS > 1).
// They return the old value, like CUDA's; the value converts to the pointee type (atomicAdd(float*, 1.0)).
template <class T>
T atomicAdd(T* p, std::type_identity_t<T> v) {
  return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <class T>
T atomicSub(T* p, std::type_identity_t<T> v) {
  return std::atomic_ref<T>(*p).fetch_sub(v, std::memory_order_relaxed);
}
template <class T>
T atomicExch(T* p, std::type_identity_t<T> v) {
  return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed);
}
template <class T>
T atomicCAS(T* p, std::type_identity_t<T> compare, std::type_identity_t<T> v) {
  std::atomic_ref<T>(*p).compare_exchange_strong(compare, v, std::memory_order_relaxed);
  return compare;  // holds the old value whether or not the exchange happened
}
template <class T>
T atomicMax(T* p, std::type_identity_t<T> v) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (old < v && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T>
T atomicMin(T* p, std::type_identity_t<T> v) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (v < old && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}
