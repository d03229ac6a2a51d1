// The gradient of one optimizer step summed over its micro-batches and over the ranks of a data-parallel run.
// Each micro-batch's loss is scaled by 1/(its weight · all micro-batches of the step), so the sum is the mean.
//
// CPU backend (host memory): each micro-batch's gradient is computed into zeroed buffers and added, in micro-batch
// order, to a float64 sum; the ranks' sums are added in rank order (Comm::all_reduce_sum) and rounded to float32
// once. The global micro-batch m = rank·A + k (A per rank) sees the same rows, times and noise for every world size,
// so with one micro-batch per rank (A = 1) the step's gradient is ((g0 + g1) + g2) + ... in float64 for every world
// size: R ranks give one rank's bits (with A > 1 per rank the float64 sum is associated per rank, a difference of
// order A·2⁻⁵³ relative before the float32 rounding). Cost: 12 bytes per parameter on the host.
// CUDA backend: the micro-batches accumulate in the float32 buffer (the GEMMs' β = 1), then NCCL sums the ranks.
// ZeRO-1 (a sharded state): the ranks' sum is formed only on the shard each rank updates (Comm::reduce_scatter_sum,
// the same bits there as the all-reduce), and the rest of the gradient buffer is left unspecified.
// One process with one micro-batch per step: the gradient stays where the backward wrote it.
#pragma once
#include <cstdint>
#include <vector>
#include "backend/comm.h"
#include "train/model_state.h"

namespace duo {

class GradientSum {
 public:
  GradientSum(ModelState& state, Comm& comm, int64_t micro_per_rank);
  void begin_step();              // zeroes the gradient
  void end_micro();               // after each micro-batch's backward
  void end_step();                // the summed gradient is in state.grads() (its shard), the same on every rank
  bool float64() const { return wide_; }

 private:
  ModelState& state_;
  Comm& comm_;
  bool wide_ = false;
  int64_t micro_ = 0;
  std::vector<double> sum_;
};

}  // namespace duo
