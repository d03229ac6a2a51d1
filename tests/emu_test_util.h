// Helpers of the tests that drive the SIMT emulator directly (suite cuda_emu): scoped emulator settings and
// the message of an expected duo::Error.
#pragma once
#include <string>

#include "runtime.cuh"

namespace duo::testing {

// Sets emulator options for one scope and restores them afterwards:
//   ScopedEmuConfig cfg;  cfg->schedule = duo::emu::Schedule::Reverse;  cfg->threads = 2;
struct ScopedEmuConfig {
  duo::emu::Config saved = duo::emu::device().config();
  ScopedEmuConfig() = default;
  ScopedEmuConfig(const ScopedEmuConfig&) = delete;
  ScopedEmuConfig& operator=(const ScopedEmuConfig&) = delete;
  ~ScopedEmuConfig() { duo::emu::device().config() = saved; }
  duo::emu::Config* operator->() { return &duo::emu::device().config(); }
};

// Runs f and returns the duo::Error message it throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const duo::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace duo::testing
