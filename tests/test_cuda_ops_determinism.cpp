// CudaOps determinism and coverage (under the emulator in `make test`, on the GPU in `make test-cuda`).
//
// Determinism: every op with a cross-thread reduction (the scatter backwards, LayerNorm's dweight/dshift/
// dscale, dgate, dbias, attention backward, the block reductions of softmax heads, sum_squares, the
// relaxation's argmax) must give
// bit-identical results run after run and whatever the emulator's thread schedule (forward, reverse,
// random) and number of OS threads running blocks (on a GPU: over repeated runs): a race or a float atomic
// would show as a difference.
//
// Coverage: every virtual of the ops interface (parsed from src/backend/ops.h) must be listed below with the
// cuda_emu test case that checks it against the CPU backend, and that case must exist.
#include <boost/test/tree/traverse.hpp>
#include <boost/test/tree/visitor.hpp>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cuda_test_util.h"

using namespace duo;
using namespace duo::test;

namespace {

// Runs the reduction-heavy ops once on fixed inputs and returns every output, concatenated bitwise.
std::vector<float> reduction_outputs() {
  CudaOps ops;
  DeviceBuffers dev(ops);
  std::vector<float> all;
  auto keep = [&](const Tensor& t) {
    std::vector<float> v = dev.down<float>(t);
    all.insert(all.end(), v.begin(), v.end());
  };
  const int64_t B = 2, L = 37, D = 24, V = 11, N = B * L, K = 3, H = 2;
  // embeddings: 74 ids and a bag of 222 (both beyond one placement chunk with the bag)
  std::vector<int32_t> ids = rand_ids(N, 80, V), bag = rand_ids(N * K, 81, V);
  Tensor dt = dev.zeros(DType::F32, {V, D}), gdout = dev.up(rand_f(N * D, 82), {N, D});
  ops.embed_ids_backward(dt, dev.up(ids, {N}), gdout);
  ops.embed_bag_backward(dt, dev.up(bag, {N, K}), dev.up(rand_f(N * K, 83), {N, K}), gdout);
  keep(dt);
  // LayerNorm + adaLN backward
  Tensor x = dev.up(rand_f(N * D, 84), {N, D}), w = dev.up(rand_f(D, 85), {D});
  Tensor mod = dev.up(rand_f(B * 6 * D, 86), {B, 6 * D});
  Tensor out = dev.zeros(DType::F32, {N, D}), mean = dev.zeros(DType::F32, {N}), rstd = dev.zeros(DType::F32, {N});
  ops.layernorm_modulate(out, mean, rstd, x, w, mod.cols(0, D), mod.cols(D, D));
  Tensor dx = dev.zeros(DType::F32, {N, D}), dw = dev.zeros(DType::F32, {D}), dmod = dev.zeros(DType::F32, {B, 6 * D});
  Tensor dsh = dmod.cols(0, D), dsc = dmod.cols(D, D);
  ops.layernorm_modulate_backward(dx, dw, dsh, dsc, gdout, x, mean, rstd, w, mod.cols(0, D), mod.cols(D, D));
  keep(out), keep(dx), keep(dw), keep(dmod);
  // gated residual dgate with dropout, linear dbias
  Tensor dgate = dmod.cols(2 * D, D), dbranch = dev.zeros(DType::F32, {N, D});
  ops.gated_residual_backward(dbranch, dgate, gdout.view({B, L, D}), x, mod.cols(2 * D, D), 0.2f, Philox{9, 9});
  Tensor db = dev.zeros(DType::F32, {D}), none;
  ops.linear_backward(none, none, db, gdout, x, dev.up(rand_f(D * D, 87), {D, D}), false);
  keep(dmod), keep(dbranch), keep(db);
  // attention forward/backward
  Tensor qkv = dev.up(rand_f(N * 3 * D, 88), {B, L, 3 * D}), att = dev.zeros(DType::F32, {B, L, D});
  Tensor lse = dev.zeros(DType::F32, {B, H, L}), dqkv = dev.zeros(DType::F32, {B, L, 3 * D});
  ops.attention(att, lse, qkv, (int)H, true);
  ops.attention_backward(dqkv, gdout.view({B, L, D}), qkv, att, lse, (int)H, true);
  keep(att), keep(lse), keep(dqkv);
  // softmax heads (block reductions over a row longer than the block) and the global norm
  const int64_t R = 3, W = 700;
  Tensor logits = dev.up(rand_f(R * W, 89, -5.0f, 5.0f), {R, W}), ls = dev.zeros(DType::F32, {R, W});
  Tensor losses = dev.zeros(DType::F32, {R}), dl = dev.zeros(DType::F32, {R, W});
  ops.log_softmax(ls, logits);
  ops.cross_entropy(losses, dl, logits, dev.up(rand_ids(R, 90, W), {R}), 0.5);
  keep(ls), keep(losses), keep(dl);
  // the loss heads (DUO's NELBO: four row sums) and the distillation KL on the same long rows
  LossHeadArgs duo_head;
  duo_head.kind = LossKind::DUO;
  const std::vector<double> alpha(R, 0.4), dalpha(R, -1.3), weight(R, 0.7);
  Tensor ga = dev.up(alpha, {R}), gda = dev.up(dalpha, {R}), gw = dev.up(weight, {R});
  ops.loss_head(duo_head, losses, dl, logits, dev.up(rand_ids(R, 93, W), {R}), dev.up(rand_ids(R, 94, W), {R}), ga,
                gda, gw);
  keep(losses), keep(dl);
  ops.kl_head(KlDirection::Backward, losses, dl, logits, ls, gw);
  keep(losses), keep(dl);
  all.push_back(float(ops.sum_squares(dev.up(rand_f(30001, 91), {30001}))));
  // the curriculum's relaxation: a block argmax per row of 1500 ids
  Tensor soft = dev.zeros(DType::F32, {B, L, 1500}), z = dev.zeros(DType::I32, {N});
  const std::vector<double> scales = {0.3, 0.95, 0.2, 0.98};
  ops.gaussian_relaxation(soft, z, dev.up(rand_ids(N, 92, 1500), {B, L}), dev.up(scales, {B, 2}), 3.0, Philox{4, 4});
  keep(soft);
  for (int32_t id : dev.down<int32_t>(z)) all.push_back(float(id));
  return all;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The ops of the interface, each with the cuda_emu test case that compares it with the CPU backend.
const std::map<std::string, std::string> kCoverage = {
    {"name", "cuda_ops_memory"},
    {"device", "cuda_ops_memory"},
    {"alloc", "cuda_ops_memory"},
    {"release", "cuda_ops_memory"},
    {"to_host", "cuda_ops_memory"},
    {"from_host", "cuda_ops_memory"},
    {"fill", "cuda_ops_memory"},
    {"copy", "cuda_ops_memory"},
    {"sync", "cuda_ops_memory"},
    {"peak_flops", "cuda_ops_memory"},
    {"memory_in_use", "cuda_ops_memory"},
    {"embed_ids", "cuda_ops_embedding_ids_and_bag"},
    {"embed_ids_backward", "cuda_ops_embedding_ids_and_bag"},
    {"embed_bag", "cuda_ops_embedding_ids_and_bag"},
    {"embed_bag_backward", "cuda_ops_embedding_ids_and_bag"},
    {"embed_soft", "cuda_ops_embed_soft"},
    {"embed_soft_backward", "cuda_ops_embed_soft"},
    {"timestep_embedding", "cuda_ops_timestep_embedding"},
    {"linear", "cuda_ops_linear"},
    {"linear_backward", "cuda_ops_linear"},
    {"linear_gelu", "cuda_ops_linear_gelu"},
    {"gelu_linear_backward", "cuda_ops_gelu_linear_backward"},
    {"silu", "cuda_ops_activations"},
    {"silu_backward", "cuda_ops_activations"},
    {"gelu", "cuda_ops_activations"},
    {"gelu_backward", "cuda_ops_activations"},
    {"layernorm_modulate", "cuda_ops_layernorm_modulate"},
    {"layernorm_modulate_backward", "cuda_ops_layernorm_modulate"},
    {"rotary", "cuda_ops_rotary"},
    {"rotary_backward", "cuda_ops_rotary"},
    {"attention", "cuda_ops_attention"},
    {"attention_backward", "cuda_ops_attention"},
    {"rotary_attention", "cuda_ops_rotary_attention"},
    {"rotary_attention_backward", "cuda_ops_rotary_attention"},
    {"gated_residual", "cuda_ops_gated_residual"},
    {"gated_residual_backward", "cuda_ops_gated_residual"},
    {"gated_residual_layernorm", "cuda_ops_gated_residual"},
    {"log_softmax", "cuda_ops_softmax_and_cross_entropy"},
    {"log_softmax_backward", "cuda_ops_softmax_and_cross_entropy"},
    {"cross_entropy", "cuda_ops_softmax_and_cross_entropy"},
    {"loss_head", "cuda_ops_loss_heads"},
    {"linear_loss_head", "cuda_ops_linear_loss_head"},
    {"kl_head", "cuda_ops_kl_head"},
    {"gaussian_relaxation", "cuda_ops_gaussian_relaxation"},
    {"embed_relaxed", "cuda_ops_gaussian_relaxation"},
    {"diffusion_step", "cuda_diffusion_step_draws_the_cpu_draws"},
    {"sum_squares", "cuda_ops_optimiser"},
    {"sum_squares_chunks", "cuda_ops_optimiser"},
    {"scale", "cuda_ops_optimiser"},
    {"adamw", "cuda_ops_optimiser"},
    {"ema_update", "cuda_ops_optimiser"},
};

// Names of all test cases of the module.
struct CaseNames : boost::unit_test::test_tree_visitor {
  using boost::unit_test::test_tree_visitor::visit;
  std::set<std::string> names;
  void visit(const boost::unit_test::test_case& tc) override { names.insert(tc.p_name.get()); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

BOOST_AUTO_TEST_CASE(cuda_ops_deterministic_across_runs_and_schedules) {
  const std::vector<float> first = reduction_outputs();
#if defined(DUO_CUDA_EMU)
  BOOST_TEST(bit_identical(reduction_outputs(), first));
  {
    testing::ScopedEmuConfig cfg;
    cfg->schedule = emu::Schedule::Reverse;
    BOOST_TEST(bit_identical(reduction_outputs(), first), "schedule reverse");
  }
  {
    testing::ScopedEmuConfig cfg;
    cfg->schedule = emu::Schedule::Random;
    cfg->seed = 17;
    cfg->threads = 2;  // blocks on two OS threads: the integer atomics really interleave
    BOOST_TEST(bit_identical(reduction_outputs(), first), "schedule random:17 on 2 threads");
  }
#else
  // On a GPU the hardware picks the order: a race or a float atomic shows as a difference between runs.
  for (int run = 1; run <= 8; ++run) BOOST_TEST(bit_identical(reduction_outputs(), first), "run " << run);
#endif
}

BOOST_AUTO_TEST_CASE(cuda_ops_coverage_of_the_ops_interface) {
  // The ops: every OpKind (backend/op_kinds.h) and the memory calls. Cross-check against ops.h: every backend hook
  // "virtual ... do_<name>(" is an OpKind, so an op cannot be added without its kind (and so without a test here).
  std::set<std::string> ops = {"name", "device", "alloc", "release", "to_host", "from_host", "sync", "peak_flops",
                               "memory_in_use"};
  std::set<std::string> kinds;
  for (int k = 0; k < (int)OpKind::Count; ++k) kinds.insert(op_name((OpKind)k));
  BOOST_TEST(kinds.size() == (size_t)OpKind::Count);  // names are distinct
  ops.insert(kinds.begin(), kinds.end());
  std::ifstream f("src/backend/ops.h");
  BOOST_REQUIRE_MESSAGE(f, "run the tests from the repository root (src/backend/ops.h not found)");
  std::stringstream text;
  text << f.rdbuf();
  const std::string src = text.str();
  const std::regex hook(R"(virtual\s+[^;(]*[\s*&]do_(\w+)\s*\()");
  int hooks = 0;
  for (auto it = std::sregex_iterator(src.begin(), src.end(), hook); it != std::sregex_iterator(); ++it, ++hooks)
    BOOST_TEST(kinds.count((*it)[1]) == 1u, "Ops::do_" << (*it)[1] << " has no OpKind (backend/op_kinds.h)");
  BOOST_TEST(hooks == (int)OpKind::Count);
  CaseNames cases;
  boost::unit_test::traverse_test_tree(boost::unit_test::framework::master_test_suite(), cases, true);
  for (const std::string& op : ops) {
    auto it = kCoverage.find(op);
    const bool listed = it != kCoverage.end();
    BOOST_TEST(listed, "Ops::" << op << " has no CudaOps test: add one and list it in kCoverage");
    if (listed)
      BOOST_TEST(cases.names.count(it->second) == 1u, "test case " << it->second << " for Ops::" << op << " not found");
  }
  for (const auto& [op, test] : kCoverage) BOOST_TEST(ops.count(op) == 1u, "kCoverage lists " << op << ", no op");
}

BOOST_AUTO_TEST_SUITE_END()
