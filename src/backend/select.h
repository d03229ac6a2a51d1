// Chooses the backend of a run from --device: auto | cpu | cuda.
#pragma once
#include <memory>
#include <string>
#include "backend/ops.h"

namespace duo {

// auto = cuda when this build has the CUDA backend and a GPU answers, else cpu. Throws duo::Error with a HINT
// for cuda in a build without it. threads > 0 sets the CPU threads (--threads; the host side of a GPU run too),
// 0 keeps one per core. compute (--compute): the precision of the GEMMs (dense layers, attention), "auto" (fp32 on the CPU,
// bf16 tensor cores on a GPU), "fp32" (CPU only) or "bf16" (on the CPU: needs AVX512-BF16 or AMX).
std::unique_ptr<Ops> make_backend(const std::string& device, int threads = 0, const std::string& compute = "auto");

// The --compute option's help line, shared by the executables.
inline const char* compute_option_help() {
  return "GEMM precision (dense layers, attention): auto (fp32 on the CPU, bf16 on a GPU), fp32, or bf16 (CPU: bf16 inputs, fp32 "
         "sums; needs AVX512-BF16 or AMX; about 2x faster GEMMs, docs/cpu_performance.md)";
}

}  // namespace duo
