#include "train/grad_buckets.h"
#include "core/error.h"

namespace duo {

GradientBuckets::GradientBuckets(const std::vector<ParamRange>& groups, int64_t bucket_elems, Start start)
    : groups_(groups.size()), start_(std::move(start)) {
  DUO_CHECK(!groups.empty() && groups.back().begin == 0 && bucket_elems > 0, "gradient buckets",
            "the groups must end at the start of the parameters", "DiT::gradient_groups lists them");
  ParamRange open{groups[0].end, groups[0].end};
  for (size_t g = 0; g < groups.size(); ++g) {
    DUO_CHECK(groups[g].end == open.begin && groups[g].begin <= groups[g].end, "gradient buckets",
              str("group ", g, " [", groups[g].begin, ", ", groups[g].end, ") does not adjoin the one before it"),
              "DiT::gradient_groups lists adjacent ranges in descending order");
    open.begin = groups[g].begin;
    if (open.end - open.begin >= bucket_elems || g + 1 == groups.size()) {
      buckets_.push_back(open);
      last_group_.push_back(g);
      open = {open.begin, open.begin};
    }
  }
}

void GradientBuckets::arm(int passes) {
  DUO_ASSERT(passes >= 1);
  armed_ = true;
  passes_ = passes;
  reports_ = 0;
}

void GradientBuckets::group_done(size_t g) {
  if (!armed_) return;
  DUO_CHECK(g == reports_ % groups_, "gradient buckets",
            str("the backward reported group ", g, " where group ", reports_ % groups_, " was due"),
            "a backward completes the groups in DiT::gradient_groups' order");
  ++reports_;
  if (reports_ <= (size_t)(passes_ - 1) * groups_) return;  // an earlier pass: the gradient is not complete yet
  while (started_ < buckets_.size() && last_group_[started_] <= g) start_(buckets_[started_++]);
}

void GradientBuckets::flush() {
  DUO_CHECK(!armed_ || reports_ == (size_t)passes_ * groups_, "gradient buckets",
            str("the step's last micro-batch reported ", reports_, " completed gradient groups, not ", passes_, " x ",
                groups_),
            "an algorithm whose run() makes several backward passes says so in backward_passes()");
  while (started_ < buckets_.size()) start_(buckets_[started_++]);
  armed_ = false;
  reports_ = 0;
  started_ = 0;
}

}  // namespace duo
