#include "backend/cpu/process_setup.h"

#include <cblas.h>
#include <omp.h>
#if defined(__x86_64__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "core/error.h"

namespace duo::cpu {
namespace {

// Written once by the pre-initialiser, before main() and before any other thread exists; read-only after. Plain
// constant-initialised data: an object with a constructor would be constructed again, after the pre-initialiser,
// by the executable's ordinary static initialisation, erasing what it recorded.
struct Recorded {
  char wait_policy[160];
  bool flush_denormals;
};
constinit Recorded g_recorded{};

void record_policy(const char* a, const char* b = "", const char* c = "") {
  std::snprintf(g_recorded.wait_policy, sizeof g_recorded.wait_policy, "%s%s%s", a, b, c);
}

void apply_before_libraries(int, char**, char**) {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  if (policy) {
    record_policy(policy, " (OMP_WAIT_POLICY in the environment)");
  } else if (spin) {
    record_policy("spin ", spin, " (GOMP_SPINCOUNT in the environment)");
  } else {
    setenv("OMP_WAIT_POLICY", "passive", 0);
    record_policy("passive");
  }
  const char* denormals = std::getenv("DUO_DENORMALS");
#if defined(__x86_64__)
  g_recorded.flush_denormals = !(denormals && std::strcmp(denormals, "keep") == 0);
  if (g_recorded.flush_denormals) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  }
#else
  (void)denormals;  // other CPUs: subnormals are left to the hardware's default
#endif
}

// .preinit_array entries run in the executable before the constructors of its shared libraries, the only point
// at which libgomp's wait policy can still be chosen (it reads the environment once, in its constructor).
__attribute__((section(".preinit_array"), used)) void (*const g_preinit)(int, char**, char**) = &apply_before_libraries;

}  // namespace

const ProcessSetup& process_setup() {
  static const ProcessSetup setup{g_recorded.wait_policy, g_recorded.flush_denormals};
  return setup;
}

bool thread_flushes_denormals() {
#if defined(__x86_64__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON && _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
#else
  return false;
#endif
}

void set_threads(int threads, const char* option) {
  DUO_CHECK(threads >= 0, option, str("must be 0 (one per core) or a positive thread count, got ", threads), "");
  if (threads == 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int max_threads() { return omp_get_max_threads(); }

}  // namespace duo::cpu
