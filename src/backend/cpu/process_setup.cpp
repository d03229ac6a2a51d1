#include "backend/cpu/process_setup.h"

#include <alloca.h>
#include <cblas.h>
#include <omp.h>
#include <unistd.h>
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

constexpr const char* kMarker = "DUO_SET_OMP_WAIT_POLICY=1";

// libgomp reads OMP_WAIT_POLICY once, in its constructor, from the environment the process started with (the C
// library's own initialisation, which runs after this pre-initialiser, restores that environment, so a setenv()
// here would be lost). So when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, the process executes itself
// again at once with OMP_WAIT_POLICY=passive added — before any library has initialised, so nothing runs twice
// but this function. The marker variable tells the new process (and its reports) that the engine set it.
void restart_with_passive_wait(char** argv, char** envp) {
  int n = 0;
  while (envp[n]) ++n;
  // The C library is not initialised yet: no allocator, the new environment lives on this stack frame.
  char** env = static_cast<char**>(alloca(sizeof(char*) * (size_t)(n + 3)));
  for (int i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = const_cast<char*>("OMP_WAIT_POLICY=passive");
  env[n + 1] = const_cast<char*>(kMarker);
  env[n + 2] = nullptr;
  execve("/proc/self/exe", argv, env);
  // Only reached when /proc is missing or exec is refused: run on with libgomp's default (spinning) waits.
}

// The value of NAME in envp (the environment as the process received it), or nullptr.
const char* find_env(char** envp, const char* name) {
  const size_t len = std::strlen(name);
  for (char** e = envp; *e; ++e)
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return nullptr;
}

void apply_before_libraries(int, char** argv, char** envp) {
  const char* policy = find_env(envp, "OMP_WAIT_POLICY");
  const char* spin = find_env(envp, "GOMP_SPINCOUNT");
  const char* marker = find_env(envp, "DUO_SET_OMP_WAIT_POLICY");
  if (policy && marker) {
    record_policy(policy);
  } else if (policy) {
    record_policy(policy, " (OMP_WAIT_POLICY in the environment)");
  } else if (spin) {
    record_policy("spin ", spin, " (GOMP_SPINCOUNT in the environment)");
  } else {
    restart_with_passive_wait(argv, envp);
    record_policy("spinning (libgomp's default: the engine could not restart itself with passive waiting)");
  }
  const char* denormals = find_env(envp, "DUO_DENORMALS");
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

// .preinit_array entries run in the executable before the constructors of its shared libraries: early enough to
// restart before anything has initialised, and to set the control register before any thread exists.
__attribute__((section(".preinit_array"), used)) void (*const g_preinit)(int, char**, char**) = &apply_before_libraries;

// The executable's own constructors run after every library's: libgomp has read the policy by now, so the two
// variables the restart added are removed again, and child processes (the PyTorch reference of the benchmarks,
// say) see the environment as the user gave it.
__attribute__((constructor)) void forget_added_variables() {
  if (std::getenv("DUO_SET_OMP_WAIT_POLICY")) {
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("DUO_SET_OMP_WAIT_POLICY");
  }
}

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
