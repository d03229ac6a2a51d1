#include "train/grad_sum.h"
#include <algorithm>
#include <cstring>
#include "core/error.h"

namespace duo {

GradientSum::GradientSum(ModelState& state, Comm& comm, int64_t micro_per_rank)
    : state_(state), comm_(comm), micro_per_rank_(micro_per_rank) {
  wide_ = state.ops().device() == Device::CPU && (micro_per_rank > 1 || comm.size() > 1);
  DUO_CHECK(!wide_ || state.dtype() == DType::F32, "training", "the float64 gradient sum takes float32 gradients",
            "train on the CPU in float32");
  if (wide_) sum_.assign((size_t)state.table().total(), 0.0);
}

GradientSum::~GradientSum() {
  if (model_) model_->on_gradient_group_done({});
}

void GradientSum::overlap_with(DiT& model, int passes, int64_t bucket_bytes) {
  if (wide_ || std::strcmp(comm_.name(), "single") == 0) return;
  DUO_CHECK(model.table().total() == state_.table().total(), "GradientSum", "the model is not the state's", "");
  float* g = static_cast<float*>(state_.grads());
  const size_t n = (size_t)state_.table().total();
  const bool sharded = state_.sharded();  // ZeRO-1: each bucket reduce-scattered onto the parts' owners
  buckets_ = std::make_unique<GradientBuckets>(
      model.gradient_groups(), std::max<int64_t>(1, bucket_bytes / (int64_t)sizeof(float)),
      [this, g, n, sharded](const ParamRange& r) {
        if (sharded) comm_.start_reduce_scatter_sum(g, n, (size_t)r.begin, (size_t)r.end);
        else comm_.start_all_reduce_sum(g + r.begin, (size_t)(r.end - r.begin));
      });
  model_ = &model;
  passes_ = passes;
  model.on_gradient_group_done([this](size_t group) { buckets_->group_done(group); });
}

void GradientSum::begin_step() {
  state_.zero_grads();
  micro_ = 0;
}

void GradientSum::begin_micro() {
  if (buckets_ && micro_ == micro_per_rank_ - 1) buckets_->arm(passes_);
}

void GradientSum::end_micro() {
  if (!wide_) {
    ++micro_;
    return;
  }
  const float* g = static_cast<const float*>(state_.grads());  // CPU backend: host memory
  const size_t n = sum_.size();
  if (micro_ == 0)
    for (size_t i = 0; i < n; ++i) sum_[i] = (double)g[i];
  else
    for (size_t i = 0; i < n; ++i) sum_[i] = sum_[i] + (double)g[i];
  ++micro_;
  state_.zero_grads();
}

void GradientSum::end_step() {
  // ZeRO-1: only the shard's sum is needed (the rest of the gradient buffer is left unspecified).
  const bool sharded = state_.sharded();
  const RankRange part = sharded ? state_.shard() : RankRange{0, state_.table().total()};
  if (wide_) {
    if (sharded) comm_.reduce_scatter_sum(sum_.data(), sum_.size());
    else comm_.all_reduce_sum(sum_.data(), sum_.size());
    float* g = static_cast<float*>(state_.grads());
    for (long long i = part.begin; i < part.end; ++i) g[i] = (float)sum_[(size_t)i];
    return;
  }
  float* g = static_cast<float*>(state_.grads());
  if (buckets_) {  // the buckets that have not started yet, then the wait
    buckets_->flush();
    comm_.finish_started_sums();
    return;
  }
  if (sharded) comm_.reduce_scatter_sum(g, (size_t)state_.table().total());
  else comm_.all_reduce_sum(g, (size_t)state_.table().total());
}

}  // namespace duo
