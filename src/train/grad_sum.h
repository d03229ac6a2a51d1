// The gradient of one optimizer step summed over its micro-batches and over the ranks of a data-parallel run.
// Each micro-batch's loss is scaled by 1/(its weight · all micro-batches of the step), so the sum is the mean.
//
// CPU backend (host memory): each micro-batch's gradient is computed into zeroed buffers and added, in micro-batch
// order, to a float64 sum; the ranks' sums are added in rank order (Comm::all_reduce_sum) and rounded to float32
// once. The global micro-batch m = rank·A + k (A per rank) sees the same rows, times and noise for every world size,
// so with one micro-batch per rank (A = 1) the step's gradient is ((g0 + g1) + g2) + ... in float64 for every world
// size: R ranks give one rank's bits (with A > 1 per rank the float64 sum is associated per rank, a difference of
// order A·2⁻⁵³ relative before the float32 rounding). Cost: 12 bytes per parameter on the host.
// CUDA backend: the micro-batches accumulate in the float32 buffer (the GEMMs' β = 1), then NCCL sums the ranks,
// bucket by bucket while the last micro-batch's backward goes on (overlap_with, train/grad_buckets.h; with ZeRO-1
// each bucket is reduce-scattered).
// ZeRO-1 (a sharded state): the ranks' sum is formed only on the shard each rank updates (Comm::reduce_scatter_sum,
// the same bits there as the all-reduce), and the rest of the gradient buffer is left unspecified.
// One process with one micro-batch per step: the gradient stays where the backward wrote it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "backend/comm.h"
#include "model/dit.h"
#include "train/grad_buckets.h"
#include "train/model_state.h"

namespace duo {

// Buckets of at least this many bytes of gradient (PyTorch DDP's default, 25 MiB): a GPT-2-small block is one.
constexpr int64_t kGradientBucketBytes = 25 << 20;

class GradientSum {
 public:
  GradientSum(ModelState& state, Comm& comm, int64_t micro_per_rank);
  ~GradientSum();
  GradientSum(const GradientSum&) = delete;
  GradientSum& operator=(const GradientSum&) = delete;

  // Sums over the ranks in buckets while the backward of each step's last micro-batch runs, where the ranks' sum
  // is the device's float32 all-reduce or ZeRO-1's reduce-scatter (NCCL; not the CPU's float64 sum: otherwise
  // nothing changes). `model` reports its completed gradient groups; `passes`: Algorithm::backward_passes.
  void overlap_with(DiT& model, int passes, int64_t bucket_bytes = kGradientBucketBytes);
  bool bucketed() const { return buckets_ != nullptr; }
  size_t bucket_count() const { return buckets_ ? buckets_->buckets().size() : 0; }

  void begin_step();              // zeroes the gradient
  void begin_micro();             // before each micro-batch's forward and backward
  void end_micro();               // after each micro-batch's backward
  void end_step();                // the summed gradient is in state.grads() (its shard), the same on every rank
  bool float64() const { return wide_; }

 private:
  ModelState& state_;
  Comm& comm_;
  int64_t micro_per_rank_ = 1;
  bool wide_ = false;
  int64_t micro_ = 0;
  std::vector<double> sum_;
  DiT* model_ = nullptr;  // while bucketed
  int passes_ = 1;
  std::unique_ptr<GradientBuckets> buckets_;
};

}  // namespace duo
