// The emulated device's host side: configuration from the environment, the device object, and the
// memory behind cudaMalloc/cudaFree. The launch driver is in emu.cpp, next to the block scheduler it uses.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "emu/emu.h"

namespace duo::emu {

Config Config::from_env() {
  Config c;
  if (const char* s = std::getenv("DUO_EMU_THREADS")) {
    char* end;
    long v = std::strtol(s, &end, 10);
    if (*end || v < 1 || v > 1024) fail("DUO_EMU_THREADS", str("'", s, "' is not a thread count"), "use 1..1024");
    c.threads = int(v);
  }
  if (const char* s = std::getenv("DUO_EMU_SCHEDULE")) {
    std::string v = s;
    if (v == "forward")
      c.schedule = Schedule::Forward;
    else if (v == "reverse")
      c.schedule = Schedule::Reverse;
    else if (v.rfind("random:", 0) == 0 && v.size() > 7 && v.find_first_not_of("0123456789", 7) == std::string::npos) {
      c.schedule = Schedule::Random;
      c.seed = std::stoull(v.substr(7));
    } else {
      fail("DUO_EMU_SCHEDULE", str("unknown schedule '", v, "'"),
           "use forward, reverse or random:SEED (SEED a number)");
    }
  }
  if (const char* s = std::getenv("DUO_EMU_STACK_KB")) {
    char* end;
    long v = std::strtol(s, &end, 10);
    if (*end || v < 16 || v > 65536) fail("DUO_EMU_STACK_KB", str("'", s, "' is not a stack size"), "use 16..65536");
    c.stack_bytes = size_t(v) << 10;
  }
  if (const char* s = std::getenv("DUO_EMU_MEMORY_GB")) {
    char* end;
    long v = std::strtol(s, &end, 10);
    if (*end || v < 1 || v > 4096) fail("DUO_EMU_MEMORY_GB", str("'", s, "' is not a size in GiB"), "use 1..4096");
    c.memory_bytes = size_t(v) << 30;
  }
  if (const char* s = std::getenv("DUO_EMU_HOST_GUARD")) {
    const std::string v = s;
    if (v != "0" && v != "1") fail("DUO_EMU_HOST_GUARD", str("'", v, "' is not 0 or 1"), "use 0 (off) or 1 (on)");
    c.host_guard = v == "1";
  }
  return c;
}

Device& device() {
  static Device d;
  return d;
}

void Device::set_max_dyn_smem(const void* kernel, size_t bytes) {
  std::lock_guard lock(mu_);
  max_dyn_smem_[kernel] = bytes;
}

}  // namespace duo::emu
