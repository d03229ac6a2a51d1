// The bf16 working copies of frozen weights (backend/weight_copies.h) on the CUDA backend: a GEMM that reads a copy
// computes the same bits as one that rounds the fp32 weights itself, because the copy is that rounding. Each test
// compares the two and checks, through the observer, which one it got: Made (the copy rounded before the op), Ready
// (nothing rounded) or None (no copy).
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "algo/algorithm.h"
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "backend/weight_copies.h"
#include "cuda_test_util.h"
#include "model/dit.h"
#include "train/model_state.h"

using namespace duo;
using namespace duo::test;

namespace {

// The weights' copy state of every op that reports one (the GEMM ops and AdamW), in order.
struct CopyStates final : OpObserver {
  std::vector<WeightCopy> seen;
  void after(const OpCall& c) override {
    switch (c.kind) {
      case OpKind::Linear: case OpKind::LinearGelu: case OpKind::LinearBackward: case OpKind::GeluLinearBackward:
      case OpKind::LinearLossHead: case OpKind::EmbedSoft: case OpKind::Adamw:
        seen.push_back(c.weights);
        break;
      default: break;
    }
  }
  int count(WeightCopy w) const { return int(std::count(seen.begin(), seen.end(), w)); }
};

// A block of weights as a model's: a (O, I) matrix at the start, another after it, one flat buffer.
struct Block {
  static constexpr int64_t N = 24, I = 40, O = 32;
  CudaOps& ops;
  DeviceBuffers dev{ops};
  Tensor all, W, W2, in, bias, out;
  explicit Block(CudaOps& o) : ops(o) {
    all = dev.up(rand_f(size_t(2 * O * I), 1), {2 * O * I});
    W = Tensor(all.data, DType::F32, {O, I}, all.device);
    W2 = Tensor(static_cast<float*>(all.data) + O * I, DType::F32, {O, I}, all.device);
    in = dev.up(rand_f(size_t(N * I), 2), {N, I});
    bias = dev.up(rand_f(size_t(O), 3), {O});
    out = dev.zeros(DType::F32, {N, O});
  }
  size_t bytes() const { return all.nbytes(); }
  // in W^T + bias with the state of W's copy the op reported
  std::pair<std::vector<float>, WeightCopy> linear(const Tensor& w) {
    CopyStates s;
    ops.set_observer(&s);
    ops.linear(out, in, w, bias);
    ops.set_observer(nullptr);
    return {dev.down<float>(out), s.seen.at(0)};
  }
  void adamw(const Tensor& params, uint64_t seed) {
    const int64_t n = params.numel();
    Tensor g = dev.up(rand_f(size_t(n), seed), {n}), m = dev.zeros(DType::F32, {n}), v = dev.zeros(DType::F32, {n});
    Tensor p = params;
    AdamWArgs a;
    a.lr = 0.05;
    ops.adamw(p, g, m, v, a);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

// Frozen, a matrix is rounded once (Made) and then read (Ready); the results are those of the unfrozen op.
BOOST_AUTO_TEST_CASE(cuda_weight_copies_made_once_a_freeze) {
  CudaOps ops;
  Block b(ops);
  const auto [want, none] = b.linear(b.W);
  BOOST_TEST(int(none) == int(WeightCopy::None));
  {
    FrozenWeights f(ops, b.all.data, b.bytes());
    const auto [first, made] = b.linear(b.W);
    const auto [again, ready] = b.linear(b.W);
    BOOST_TEST(int(made) == int(WeightCopy::Made));
    BOOST_TEST(int(ready) == int(WeightCopy::Ready));
    BOOST_TEST(first == want, boost::test_tools::per_element());
    BOOST_TEST(again == want, boost::test_tools::per_element());
    BOOST_TEST(int(b.linear(b.W2).second) == int(WeightCopy::Made));  // its own copy
    BOOST_TEST(ops.weight_copy_bytes() == b.bytes() / 2);
  }
  {  // a view of W's first rows from the same address: its copy does not cover the whole of W
    FrozenWeights f(ops, b.all.data, b.bytes());
    Tensor top = b.W.rows(0, Block::O / 2), out_top = b.dev.zeros(DType::F32, {Block::N, Block::O / 2});
    ops.linear(out_top, b.in, top, b.bias.rows(0, Block::O / 2));
    const auto [whole, made] = b.linear(b.W);
    BOOST_TEST(int(made) == int(WeightCopy::Made));
    BOOST_TEST(whole == want, boost::test_tools::per_element());
  }
  {  // a new freeze after the last ended: the weights may have changed meanwhile, so the copy is made again
    FrozenWeights f(ops, b.all.data, b.bytes());
    BOOST_TEST(int(b.linear(b.W).second) == int(WeightCopy::Made));
  }
}

// AdamW over the whole block writes the copy with the weights: the next freeze rounds nothing, and computes what the
// unfrozen op computes from the updated fp32 weights.
BOOST_AUTO_TEST_CASE(cuda_weight_copies_written_by_adamw) {
  CudaOps ops;
  Block b(ops);
  { FrozenWeights f(ops, b.all.data, b.bytes()); }  // the block gets its copy
  CopyStates s;
  ops.set_observer(&s);
  b.adamw(b.all, 4);
  ops.set_observer(nullptr);
  BOOST_TEST(int(s.seen.at(0)) == int(WeightCopy::Made));
  const auto [want, none] = b.linear(b.W);  // unfrozen: rounds the updated weights itself
  FrozenWeights f(ops, b.all.data, b.bytes());
  const auto [got, ready] = b.linear(b.W);
  BOOST_TEST(int(ready) == int(WeightCopy::Ready));
  BOOST_TEST(got == want, boost::test_tools::per_element());
  BOOST_TEST(int(b.linear(b.W2).second) == int(WeightCopy::Ready));
}

// Any other write between AdamW and the next freeze makes the copy stale (the freeze rounds again, and the result is
// that of the new weights); so does AdamW over part of the block (a ZeRO-1 shard), which writes no copy.
BOOST_AUTO_TEST_CASE(cuda_weight_copies_stale_after_other_writes) {
  const char* writes[] = {"from_host", "fill", "copy", "adamw over a part"};
  for (const char* what : writes) {
    BOOST_TEST_CONTEXT(what) {
      CudaOps ops;
      Block b(ops);
      { FrozenWeights f(ops, b.all.data, b.bytes()); }
      b.adamw(b.all, 5);
      const std::string w = what;
      if (w == "from_host") {
        const std::vector<float> fresh = rand_f(size_t(Block::O * Block::I), 6);
        ops.from_host(b.W, fresh.data());
      } else if (w == "fill") {
        ops.fill(b.W2, 0.25);
      } else if (w == "copy") {
        Tensor src = b.dev.up(rand_f(size_t(Block::O * Block::I), 7), {Block::O, Block::I});
        ops.copy(b.W2, src);
      } else {
        CopyStates s;
        ops.set_observer(&s);
        b.adamw(b.W2.view({Block::O * Block::I}), 8);
        ops.set_observer(nullptr);
        BOOST_TEST(int(s.seen.at(0)) == int(WeightCopy::None));
      }
      const auto [want, none] = b.linear(b.W);
      const auto [want2, none2] = b.linear(b.W2);
      FrozenWeights f(ops, b.all.data, b.bytes());
      const auto [got, made] = b.linear(b.W);
      const auto [got2, made2] = b.linear(b.W2);
      BOOST_TEST(int(made) == int(WeightCopy::Made));
      BOOST_TEST(int(made2) == int(WeightCopy::Made));
      BOOST_TEST(got == want, boost::test_tools::per_element());
      BOOST_TEST(got2 == want2, boost::test_tools::per_element());
    }
  }
}

// Three DUO training steps (the soft input: the embedding table is a GEMM operand too) with the weights frozen over
// each step's forward and backward, as the trainer holds them: the same losses and weights, to the bit, with the
// working copies as without them; after the first step every copy comes from AdamW.
BOOST_AUTO_TEST_CASE(cuda_weight_copies_leave_training_unchanged) {
  ModelConfig cfg;
  cfg.vocab_size = 13; cfg.hidden = 16; cfg.n_blocks = 2; cfg.n_heads = 2; cfg.cond_dim = 16; cfg.freq_dim = 16;
  cfg.length = 8; cfg.dropout = 0.1f;
  const int64_t B = 2, L = 8;
  const std::string table = "/tmp/duo_weight_copies_integral_" + std::to_string(getpid()) + ".bin";
  IntegralTable::compute(DiffusionTransform(13), -6.0, 6.0, 601).write(table);
  struct Result {
    std::vector<double> losses;
    std::vector<float> params;
    size_t copy_bytes = 0;
    std::vector<CopyStates> states;
  };
  auto train = [&](bool copies) {
    CudaOps ops;
    ops.use_weight_copies(copies);
    ModelState state(cfg, ops, true);
    DiTOptions opt;
    opt.max_batch = B;
    opt.soft_input = true;
    DiT model(cfg, ops, opt);
    model.bind(state.params(), state.grads());
    std::vector<float> head = rand_f(size_t(state.table().total()), 9, -0.3f, 0.3f);
    Tensor p = state.flat(state.params());
    ops.from_host(p, head.data());  // every weight non-zero (the reference initialises the head to zero)
    state.reset_ema();
    AlgoSettings s;
    s.name = "duo";
    s.mask_id = -1;
    s.integral_path = table;
    s.curriculum.gamma_min = -2.0;
    s.curriculum.gamma_max = 1.0;
    s.curriculum.tau_log10_start = s.curriculum.tau_log10_end = -0.5;
    auto algo = make_algorithm(s, model, ops);
    OptimConfig oc;
    oc.lr = 1e-2;
    oc.warmup_steps = 0;
    oc.ema = 0.9;
    Result r;
    const std::vector<int32_t> ids = rand_ids(B * L, 80, 13);
    const std::vector<float> mask(size_t(B * L), 1.0f);
    for (int64_t step = 0; step < 3; ++step) {
      MicroBatch mb;
      mb.ids = ids.data(); mb.mask = mask.data(); mb.B = B; mb.L = L;
      mb.t = {0.3 + 0.1 * double(step), 0.8};
      mb.noise = Philox{3, uint64_t(4 + step)};
      mb.dropout = Philox{5, uint64_t(6 + step)};
      mb.step = step;
      r.states.emplace_back();
      ops.set_observer(&r.states.back());
      state.zero_grads();
      {
        FrozenWeights f(ops, state.params(), model.param_bytes());
        r.losses.push_back(algo->run(mb, true, true, 1.0 / double(B * L)).loss);
      }
      state.optimizer_step(oc, state.grad_norm(single_process()));
      ops.set_observer(nullptr);
    }
    r.params = state.download(state.params());
    r.copy_bytes = ops.weight_copy_bytes();
    return r;
  };
  const Result with = train(true), without = train(false);
  std::remove(table.c_str());
  BOOST_TEST(with.losses == without.losses, boost::test_tools::per_element());
  BOOST_TEST(with.params == without.params, boost::test_tools::per_element());
  BOOST_TEST(with.copy_bytes == size_t(ParamTable(cfg).total()) * 2);
  BOOST_TEST(without.copy_bytes == 0u);
  BOOST_TEST(without.states[1].count(WeightCopy::None) == int(without.states[1].seen.size()));
  BOOST_TEST(with.states[0].count(WeightCopy::Made) > 0);
  for (int step = 0; step < 3; ++step)
    BOOST_TEST_CONTEXT("step " << step) {
      BOOST_TEST(int(with.states[step].seen.back()) == int(WeightCopy::Made));  // AdamW wrote the copy
      if (step > 0) {  // every matrix ready from the start (or without a copy: a misaligned one)
        BOOST_TEST(with.states[step].count(WeightCopy::Made) == 1);
        BOOST_TEST(with.states[step].count(WeightCopy::Ready) > 10);
      }
    }
}

BOOST_AUTO_TEST_SUITE_END()
