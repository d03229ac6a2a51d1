// The ranks' gradient sum in buckets overlapped with the backward (train/grad_buckets.h, GradientSum::overlap_with):
// the bucket plan and its order, the DiT's reports that a gradient group is complete (checked against the finished
// gradient), and a whole training micro-batch through GradientSum with a communicator that records what each
// bucket held when it started. NCCL itself (its own stream, the events) needs a GPU: bench/gpu_check.sh.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <string>
#include <vector>
#include "algo/algorithm.h"
#include "algo/algorithms.h"
#include "backend/comm.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "error_util.h"
#include "core/philox.h"
#include "model/dit.h"
#include "train/grad_buckets.h"
#include "train/grad_sum.h"
#include "train/model_state.h"

using namespace duo;

namespace {

// One process that a bucketed sum would use (name not "single"): a sum of one is the data itself; each start
// records the range and the values it held at that moment.
class RecordingComm final : public Comm {
 public:
  struct Start {
    int64_t begin, n;
    std::vector<float> values;
    int phase;
    bool scatter;  // start_reduce_scatter_sum (ZeRO-1), else start_all_reduce_sum
  };
  const float* base = nullptr;
  int phase = 0;  // set by the test: 0 during the backward, 1 after it
  std::vector<Start> starts;
  int finishes = 0;
  size_t starts_at_finish = 0;

  const char* name() const override { return "recording"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(double*, size_t) override {}
  void all_reduce_sum(float*, size_t) override { BOOST_FAIL("a bucketed sum calls no blocking all-reduce"); }
  void reduce_scatter_sum(double*, size_t) override {}
  void reduce_scatter_sum(float*, size_t) override {}
  void all_gather(float*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  void start_all_reduce_sum(float* data, size_t n) override {
    starts.push_back({data - base, (int64_t)n, std::vector<float>(data, data + n), phase, false});
  }
  void start_reduce_scatter_sum(float* data, size_t, size_t begin, size_t end) override {
    starts.push_back({(int64_t)begin, (int64_t)(end - begin), std::vector<float>(data + begin, data + end), phase, true});
  }
  void finish_started_sums() override {
    ++finishes;
    starts_at_finish = starts.size();
  }
};

using testing::error_of;

ModelConfig tiny_config(bool causal) {
  ModelConfig c;
  c.vocab_size = 11; c.hidden = 16; c.n_blocks = 3; c.n_heads = 2; c.cond_dim = 8; c.freq_dim = 8;
  c.length = 8; c.dropout = 0.0f; c.causal = causal;
  return c;
}

// A model with non-zero weights everywhere (the reference's init zeroes adaLN and the head, whose gradients would
// then hide mistakes).
struct Tiny {
  CpuOps ops;
  ModelConfig cfg;
  ModelState state;
  DiT model;
  std::vector<int32_t> ids;
  std::vector<float> mask;
  static constexpr int64_t B = 2, L = 8;

  explicit Tiny(bool causal, bool sharded = false)
      : cfg(tiny_config(causal)),
        state(cfg, ops, true, DType::F32, sharded ? RankRange{0, ParamTable(cfg).total() / 2} : RankRange{}),
        model(cfg, ops, options()) {
    model.bind(state.params(), state.grads());
    float* p = static_cast<float*>(state.params());
    Philox r{5, 1};
    for (int64_t i = 0; i < state.table().total(); ++i) p[i] = float(0.5 * (2 * r.uniform_double(i) - 1));
    for (int64_t i = 0; i < B * L; ++i) ids.push_back((int32_t)(i * 7 % 10));  // id 10 = mask
    mask.assign(B * L, 1.0f);
  }
  static DiTOptions options() {
    DiTOptions o;
    o.max_batch = B;
    return o;
  }
  MicroBatch batch() const {
    MicroBatch mb;
    mb.ids = ids.data(); mb.mask = mask.data(); mb.B = B; mb.L = L;
    mb.t = {0.3, 0.8};
    mb.noise = Philox{77, 3};
    mb.dropout = Philox{1, 0};
    return mb;
  }
  std::vector<float> grads() const {
    const float* g = static_cast<const float*>(const_cast<ModelState&>(state).grads());
    return std::vector<float>(g, g + state.table().total());
  }
};

std::unique_ptr<Algorithm> algorithm(const std::string& name, DiT& model, Ops& ops) {
  AlgoSettings s;
  s.name = name;
  s.mask_id = 10;
  if (name == "d3pm") s.T = 1000;
  return make_algorithm(s, model, ops);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(grad_buckets)

// Groups join into buckets of at least the size asked for; during the armed step's last pass a bucket starts once
// its last group is reported, in order; flush starts the rest; reports out of order or in the wrong number fail.
BOOST_AUTO_TEST_CASE(buckets_start_in_order_when_complete) {
  const std::vector<ParamRange> groups = {{90, 100}, {60, 90}, {30, 60}, {0, 30}};
  std::vector<std::pair<ParamRange, int>> started;
  int now = 0;
  GradientBuckets b(groups, 35, [&](const ParamRange& r) { started.push_back({r, now}); });
  BOOST_REQUIRE(b.buckets().size() == 2u);
  BOOST_TEST(b.buckets()[0].begin == 60);
  BOOST_TEST(b.buckets()[0].end == 100);
  BOOST_TEST(b.buckets()[1].begin == 0);
  BOOST_TEST(b.buckets()[1].end == 60);

  for (size_t g = 0; g < 4; ++g) b.group_done(g);  // not armed (an earlier micro-batch): nothing starts
  BOOST_TEST(started.empty());
  b.arm(2);
  for (size_t g = 0; g < 4; ++g) b.group_done(g);  // the first of two passes
  BOOST_TEST(started.empty());
  for (size_t g = 0; g < 4; ++g) {
    now = (int)g;
    b.group_done(g);
  }
  b.flush();
  BOOST_REQUIRE(started.size() == 2u);
  BOOST_TEST(started[0].second == 1);  // after group 1 of the last pass
  BOOST_TEST(started[1].second == 3);

  started.clear();
  b.flush();  // a step without a backward (nothing armed): every bucket, in order
  BOOST_REQUIRE(started.size() == 2u);
  BOOST_TEST(started[0].first.begin == 60);

  b.arm(1);
  b.group_done(0);
  const std::string order = error_of([&] { b.group_done(2); });
  BOOST_TEST(order.find("reported group 2 where group 1 was due") != std::string::npos, order);
  b.arm(1);
  b.group_done(0);
  const std::string count = error_of([&] { b.flush(); });
  BOOST_TEST(count.find("reported 1 completed gradient groups, not 1 x 4") != std::string::npos, count);
  BOOST_TEST(error_of([&] { GradientBuckets({{10, 20}, {5, 9}, {0, 5}}, 4, [](const ParamRange&) {}); })
                 .find("does not adjoin") != std::string::npos);
}

// The DiT's groups tile the parameters, and when it reports a group the group's gradient is already what the whole
// backward leaves there (so a bucket started then sums the finished gradient).
BOOST_AUTO_TEST_CASE(every_group_is_final_when_reported) {
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      Tiny t(causal);
      const std::vector<ParamRange> groups = t.model.gradient_groups();
      BOOST_REQUIRE(groups.size() == size_t(t.cfg.n_blocks + 2));
      BOOST_TEST(groups.front().end == t.state.table().total());
      BOOST_TEST(groups.back().begin == 0);
      for (size_t g = 1; g < groups.size(); ++g) BOOST_TEST(groups[g].end == groups[g - 1].begin);
      std::vector<size_t> order;
      std::vector<std::vector<float>> seen;
      t.model.on_gradient_group_done([&](size_t g) {
        order.push_back(g);
        const std::vector<float> all = t.grads();
        seen.emplace_back(all.begin() + groups[g].begin, all.begin() + groups[g].end);
      });
      t.state.zero_grads();
      auto algo = algorithm(causal ? "ar" : "mdlm", t.model, t.ops);
      algo->run(t.batch(), true, true, 0.1);
      t.model.on_gradient_group_done({});
      const std::vector<float> final_grads = t.grads();
      BOOST_REQUIRE(order.size() == groups.size());
      for (size_t g = 0; g < groups.size(); ++g) {
        BOOST_TEST(order[g] == g);
        const bool same = std::memcmp(seen[g].data(), final_grads.data() + groups[g].begin,
                                      seen[g].size() * sizeof(float)) == 0;
        BOOST_TEST(same, "group " << g << " changed after it was reported");
        bool nonzero = false;
        for (float v : seen[g]) nonzero = nonzero || v != 0.0f;
        BOOST_TEST(nonzero, "group " << g << " has no gradient at all");
      }
    }
  }
}

// A training micro-batch through GradientSum: buckets start during the backward (the last pass of D3PM's two),
// each with the finished gradient of its range, together covering every parameter once; then one finish. An
// algorithm that understates its passes is caught at the end of the step.
BOOST_AUTO_TEST_CASE(a_micro_batch_starts_finished_buckets_during_its_backward) {
  for (const std::string name : {"mdlm", "d3pm", "mdlm ZeRO-1"}) {
    BOOST_TEST_CONTEXT(name) {
      const bool zero1 = name == "mdlm ZeRO-1";
      Tiny t(false, zero1);
      BOOST_REQUIRE(t.state.sharded() == zero1);
      RecordingComm comm;
      comm.base = static_cast<const float*>(t.state.grads());
      GradientSum sum(t.state, comm, 1);
      auto algo = algorithm(zero1 ? "mdlm" : name, t.model, t.ops);
      const int64_t block_bytes = 4 * (t.model.gradient_groups()[1].end - t.model.gradient_groups()[1].begin);
      sum.overlap_with(t.model, algo->backward_passes(), block_bytes);  // about a bucket a block
      BOOST_REQUIRE(sum.bucketed());
      sum.begin_step();
      sum.begin_micro();
      algo->run(t.batch(), true, true, 0.1);
      comm.phase = 1;
      sum.end_micro();
      sum.end_step();
      const std::vector<float> g = t.grads();
      BOOST_TEST(comm.starts.size() >= 3u);
      BOOST_TEST(comm.finishes == 1);
      BOOST_TEST(comm.starts_at_finish == comm.starts.size());
      int64_t covered = 0, at = t.state.table().total();
      for (const auto& s : comm.starts) {
        BOOST_TEST(s.phase == 0, "every bucket starts inside the backward");
        BOOST_TEST(s.scatter == zero1, "ZeRO-1 reduce-scatters each bucket, else it is all-reduced");
        BOOST_TEST(s.begin + s.n == at);  // descending, adjacent
        at = s.begin;
        covered += s.n;
        BOOST_TEST(std::memcmp(s.values.data(), g.data() + s.begin, (size_t)s.n * sizeof(float)) == 0,
                   "the bucket at " << s.begin << " started before its gradient was complete");
      }
      BOOST_TEST(covered == t.state.table().total());

      if (name == "d3pm") {  // told one pass where there are two: the step fails instead of summing half a gradient
        RecordingComm wrong;
        wrong.base = comm.base;
        GradientSum bad(t.state, wrong, 1);
        bad.overlap_with(t.model, 1, block_bytes);
        bad.begin_step();
        bad.begin_micro();
        algo->run(t.batch(), true, true, 0.1);
        bad.end_micro();
        const std::string m = error_of([&] { bad.end_step(); });
        BOOST_TEST(m.find("not 1 x 5") != std::string::npos, m);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
