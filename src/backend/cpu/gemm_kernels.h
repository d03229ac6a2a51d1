// Which GEMM kernels the CPU backend runs, chosen from what the CPU can do (docs/cpu_performance.md §1).
//
// Debian's OpenBLAS is built for every x86-64 core family and picks one at start from the CPU's model number; a
// CPU newer than the library gets its oldest kernels (SSE3 "Prescott", 3-4x slower GEMMs). Before the first
// GEMM we compare the library's pick with the best family the CPU's feature flags allow and switch when the
// library's is weaker. A family set by OPENBLAS_CORETYPE in the environment is always kept.
#pragma once
#include <string>

namespace duo::cpu {

// Vector instruction levels that decide which GEMM kernels a CPU can run, weakest first.
enum class SimdLevel { Sse, Avx, Avx2, Avx512, Avx512Bf16 };
const char* simd_level_name(SimdLevel level);

// The best level this CPU (and its operating system) supports.
SimdLevel cpu_simd_level();
// The level an OpenBLAS core family's kernels use ("SkylakeX" -> Avx512; unknown or older families -> Sse).
SimdLevel openblas_family_level(const std::string& family);
// The OpenBLAS family to ask for on a CPU of this level ("" for Sse: the library's own pick is as good).
std::string openblas_family_for(SimdLevel level, bool amd);

struct GemmKernels {
  std::string library;    // "OpenBLAS 0.3.21 ... (OpenMP)"
  std::string family;     // the core family the library runs now, e.g. "SkylakeX"
  std::string chosen_by;  // "the library", "the CPU's flags (the library picked Prescott)", "OPENBLAS_CORETYPE"
  SimdLevel cpu = SimdLevel::Sse;
};

// Chooses the kernels on the first call (thread-safe; every GEMM of the backend calls it first), then returns
// the choice.
const GemmKernels& gemm_kernels();

// One line for a run's header: the BLAS, its kernels and why, threads, OpenMP waiting, denormal handling.
std::string cpu_compute_summary();

}  // namespace duo::cpu
