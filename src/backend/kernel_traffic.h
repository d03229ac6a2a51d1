// The traffic model of the CUDA backend: for one call of an op, the kernels CudaOps (cuda/) launches for it, in
// order, each with the global-memory bytes it reads and writes and the FLOPs it runs, from the shapes of the call
// alone. It is how GPU speed is measured on a machine without a GPU (build/duo-roofline, docs/architecture.md §5):
// time ≥ max(FLOPs / peak, bytes / bandwidth) per kernel, summed over a training step.
//
// Bytes are each launch's footprint: every byte of global memory the launch reads (or writes) counted once, what a
// GPU moves from and to DRAM when re-reads inside one launch hit its caches. Multi-pass row kernels (a softmax over
// V = 50258 columns reads its row two or three times) may re-read from DRAM when the rows in flight exceed the L2
// cache, so for them the model is a lower bound. Gathers and scatters of embedding rows count every row once
// (distinct ids assumed: the upper bound). The formulas are tested against the SIMT emulator's counts of the same
// launches (tests/test_emu_traffic.cpp, cuda/emu/traffic.h), so they follow the code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/op_kinds.h"

namespace duo {

struct KernelTraffic {
  std::string kernel;         // the launch as the emulator names it: DUO_LAUNCH's first argument, or "gemm"
                              // (cuBLASLt), "cudaMemcpy", "cudaMemset"
  double read = 0;            // bytes of global memory read (footprint)
  double written = 0;         // bytes written (footprint)
  double tensor_flops = 0;    // on tensor cores: the GEMMs and the flash-attention mma.sync
  double flops = 0;           // other arithmetic (CUDA cores), the op's cost constants (op_kinds.h)
  double fragment_bytes = 0;  // shared memory loaded into tensor-core fragments (ldmatrix: the flash kernels)
};

struct OpTraffic {
  std::vector<KernelTraffic> kernels;
  size_t workspace = 0;  // bytes of CudaOps's scratch the call needs (cuBLASLt's 32 MiB included for GEMMs)
};

// cuBLASLt's per-call scratch, as CudaOps requests it on a GPU (cuda/gemm.h).
constexpr size_t kCublasLtWorkspaceBytes = size_t(32) << 20;

// The rows of one chunk of CudaOps::linear_loss_head (PlanOps plans the same): logits of about 512 MiB in fp32, in
// multiples of 64 rows, at least 64 (every chunk reads all of W once).
inline int64_t cuda_vocab_chunk_rows(int64_t V) {
  const int64_t rows = (int64_t(512) << 20) / (4 * (V > 0 ? V : 1));
  return rows < 64 ? 64 : rows / 64 * 64;
}

// The leading dimension of the fused vocabulary head's chunk rows (logits and their bf16 gradient): V padded to a
// multiple of 64 (50304 for GPT-2's 50258), so every row starts 16-byte aligned in bf16 and fp32.
inline int64_t cuda_vocab_ld(int64_t V) { return (V + 63) / 64 * 64; }

// What CudaOps runs for this call. Pointer alignment matters where the backend branches on it (a bias that is not
// 16-byte aligned takes a separate pass), so the tensors' data pointers must be the call's real (or planned) ones.
OpTraffic cuda_op_traffic(const OpCall& call);

}  // namespace duo
