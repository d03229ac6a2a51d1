#include "backend/cpu/gemm_kernels.h"

#include <cblas.h>
#include <strings.h>

#include <cstdlib>
#include <sstream>
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/process_setup.h"
#include "core/error.h"

// Dynamic-architecture builds of OpenBLAS export these: drop the current core table, then pick one again (from
// OPENBLAS_CORETYPE when set). Weak, so a BLAS without them still links (the kernels then stay the library's).
extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace duo::cpu {

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Sse: return "SSE";
    case SimdLevel::Avx: return "AVX";
    case SimdLevel::Avx2: return "AVX2+FMA";
    case SimdLevel::Avx512: return "AVX-512";
    case SimdLevel::Avx512Bf16: return "AVX-512 with BF16";
  }
  return "?";
}

SimdLevel cpu_simd_level() {
#if defined(__x86_64__)
  // libgcc's CPU detection also checks that the OS saves the wide registers (XGETBV), so a flag means usable.
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (avx512) return __builtin_cpu_supports("avx512bf16") ? SimdLevel::Avx512Bf16 : SimdLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::Avx2;
  if (__builtin_cpu_supports("avx")) return SimdLevel::Avx;
#endif
  return SimdLevel::Sse;
}

SimdLevel openblas_family_level(const std::string& family) {
  auto is = [&](const char* name) { return strcasecmp(family.c_str(), name) == 0; };
  if (is("Cooperlake") || is("SapphireRapids")) return SimdLevel::Avx512Bf16;
  if (is("SkylakeX")) return SimdLevel::Avx512;
  if (is("Haswell") || is("Zen") || is("Excavator")) return SimdLevel::Avx2;
  if (is("Sandybridge") || is("Bulldozer") || is("Piledriver") || is("Steamroller")) return SimdLevel::Avx;
  return SimdLevel::Sse;
}

std::string openblas_family_for(SimdLevel level, bool amd) {
  switch (level) {
    case SimdLevel::Avx512Bf16: return "Cooperlake";
    case SimdLevel::Avx512: return "SkylakeX";
    case SimdLevel::Avx2: return amd ? "Zen" : "Haswell";
    case SimdLevel::Avx: return "Sandybridge";
    case SimdLevel::Sse: return "";
  }
  return "";
}

namespace {

std::string library_name() {
  std::istringstream config(openblas_get_config());  // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64"
  std::string name, version;
  config >> name >> version;
  const int parallel = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
  return name + " " + version + (parallel == 2 ? " (OpenMP)" : parallel == 1 ? " (pthreads)" : " (sequential)");
}

GemmKernels choose() {
  GemmKernels k;
  k.library = library_name();
  k.cpu = cpu_simd_level();
  const std::string picked = openblas_get_corename();
  if (const char* env = std::getenv("OPENBLAS_CORETYPE")) {
    k.family = picked;
    k.chosen_by = std::string("OPENBLAS_CORETYPE=") + env + " in the environment";
    return k;
  }
  const std::string want = openblas_family_for(k.cpu,
#if defined(__x86_64__)
                                               __builtin_cpu_is("amd")
#else
                                               false
#endif
  );
  if (want.empty() || openblas_family_level(picked) >= k.cpu || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) {
    k.family = picked;
    k.chosen_by = "the library";
    if (!want.empty() && openblas_family_level(picked) < k.cpu)
      k.chosen_by += str(" (weaker than the CPU's ", simd_level_name(k.cpu), "; this OpenBLAS cannot switch kernels)");
    return k;
  }
  // No GEMM has run yet (every GEMM of the backend asks for the kernels first), so the switch is safe. The
  // variable is removed again, so child processes and later reports see the environment as the user left it.
  setenv("OPENBLAS_CORETYPE", want.c_str(), 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  k.family = openblas_get_corename();
  k.chosen_by = str("duo.cu from the CPU's flags, ", simd_level_name(k.cpu), " (the library picked ", picked, ")");
  return k;
}

}  // namespace

const GemmKernels& gemm_kernels() {
  static const GemmKernels k = choose();
  return k;
}

std::string cpu_compute_summary() {
  const GemmKernels& k = gemm_kernels();
  const ProcessSetup& s = process_setup();
  return str(k.library, ", ", k.family, " kernels chosen by ", k.chosen_by, "; ", max_threads(),
             " threads, waiting ", s.wait_policy, "; subnormals ",
             s.flush_denormals ? "flushed to zero" : "kept (DUO_DENORMALS=keep)");
}

}  // namespace duo::cpu

namespace duo {
std::string CpuOps::describe() const {
  return "cpu: " + cpu::cpu_compute_summary() + (bf16_gemm_ ? "; " + cpu::bf16_gemm_summary() : std::string());
}
}  // namespace duo
