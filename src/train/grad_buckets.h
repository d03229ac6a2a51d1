// The gradient of a data-parallel step summed over the ranks bucket by bucket while the backward goes on, as
// PyTorch's DDP does. The model's gradient groups (DiT::gradient_groups: the output layer, the blocks from the last
// to the first, the input; in the order a backward completes them) are joined into buckets of at least
// `bucket_elems` elements. During the step's last backward pass, a bucket starts (the caller's `start`, e.g.
// Comm::start_all_reduce_sum) as soon as its groups are complete and every earlier bucket has started, so every
// rank starts the same buckets in the same order whatever the timing; flush() starts what is left.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>
#include "model/params.h"

namespace duo {

class GradientBuckets {
 public:
  using Start = std::function<void(const ParamRange&)>;
  // groups: adjacent, descending, tiling [0, total) (checked).
  GradientBuckets(const std::vector<ParamRange>& groups, int64_t bucket_elems, Start start);
  const std::vector<ParamRange>& buckets() const { return buckets_; }

  // Before the backward of the step's last micro-batch, which makes `passes` passes through the model
  // (Algorithm::backward_passes): the groups that the last pass completes start buckets.
  void arm(int passes);
  // The model's report that group g of the current pass is complete (DiT::on_gradient_group_done). Ignored when
  // not armed.
  void group_done(size_t g);
  // After the step's backward: starts the buckets not started yet, in order, and disarms. Fails when an armed step
  // saw other than passes × groups reports, in group order (a wrong backward_passes() would start a bucket before
  // the last pass added to it).
  void flush();

 private:
  std::vector<ParamRange> buckets_;
  std::vector<size_t> last_group_;  // bucket k is complete once group last_group_[k] is
  size_t groups_ = 0;
  Start start_;
  bool armed_ = false;
  int passes_ = 0;
  size_t reports_ = 0, started_ = 0;
};

}  // namespace duo
