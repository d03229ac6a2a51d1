// Whole-model parity with the PyTorch reference (tools/reference/, fixtures in tests/fixtures/): the DiT's
// logits, the mean cross-entropy, every parameter gradient, and the losses of 10 AdamW steps with clipping,
// for the non-causal model (ids, soft and bag inputs) and the causal AR model. The reference computed in
// float64; our fp32 CPU backend must agree to 1e-4 relative.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "io/safetensors.h"
#include "model/dit.h"
#include "train/model_state.h"

using namespace duo;

namespace {

const std::string kFixtures = "tests/fixtures/";

ModelConfig config_from(const SafeTensorsFile& f) {
  nlohmann::json j = nlohmann::json::parse(f.meta("config"));
  ModelConfig c;
  c.vocab_size = j["vocab_size"]; c.hidden = j["hidden"]; c.n_blocks = j["n_blocks"]; c.n_heads = j["n_heads"];
  c.cond_dim = j["cond_dim"]; c.freq_dim = j["freq_dim"]; c.mlp_ratio = j["mlp_ratio"]; c.length = j["length"];
  c.dropout = j["dropout"]; c.causal = j["causal"];
  return c;
}

// ||a - b|| / ||b|| over n floats.
double rel_error(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) { num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]); den += double(b[i]) * b[i]; }
  return std::sqrt(num / (den > 0 ? den : 1e-300));
}

// A non-owning tensor over fixture bytes (the ops never write to inputs).
Tensor input(const StTensor& t) { return t.view(); }

struct Case {
  SafeTensorsFile file, params;
  ModelConfig cfg;
  CpuOps ops;
  ModelState state;
  DiT model;
  DiTInput in;
  int64_t B, L;

  explicit Case(const std::string& name)
      : file(SafeTensorsFile::open(kFixtures + name)),
        params(SafeTensorsFile::open(kFixtures + file.meta("params_file"))),
        cfg(config_from(file)),
        state(cfg, ops, true),
        model(cfg, ops, options_for(file)) {
    for (const ParamInfo& p : state.table().params()) {
      const StTensor& t = params.get(p.name, DType::F32, p.shape);
      std::memcpy(static_cast<float*>(state.params()) + p.offset, t.data, t.nbytes);
    }
    model.bind(state.params(), state.grads());
    if (file.has("input.ids")) in.ids = input(file.get("input.ids"));
    if (file.has("input.soft")) in.soft_logits = input(file.get("input.soft"));
    if (file.has("input.bag_ids")) {
      in.bag_ids = input(file.get("input.bag_ids"));
      in.bag_weights = input(file.get("input.bag_weights"));
    }
    if (file.has("input.sigma")) in.sigma = input(file.get("input.sigma"));
    const StTensor& targets = file.get("targets");
    B = targets.shape[0];
    L = targets.shape[1];
  }

  static DiTOptions options_for(const SafeTensorsFile& f) {
    DiTOptions o;
    o.max_batch = 2;
    o.soft_input = f.has("input.soft");
    o.bag_k = f.has("input.bag_ids") ? f.get("input.bag_ids").shape[2] : 0;
    return o;
  }

  // forward + mean cross-entropy + backward; returns the loss and leaves the gradients in state.grads().
  double loss_and_grads(std::vector<float>* logits_out = nullptr) {
    const int64_t N = B * L, V = cfg.vocab_size;
    state.zero_grads();
    Tensor logits = model.forward(in, B, L, /*train=*/true, Philox{1, 0});
    if (logits_out) logits_out->assign(logits.ptr<float>(), logits.ptr<float>() + N * V);
    std::vector<float> losses(N), dlogits(N * V);
    Tensor tl(losses.data(), DType::F32, {N}), td(dlogits.data(), DType::F32, {N, V});
    ops.cross_entropy(tl, td, logits.view({N, V}), input(file.get("targets")).view({N}), 1.0 / N);
    model.backward(td.view({B, L, V}));
    double sum = 0;
    for (float l : losses) sum += l;
    return sum / N;
  }
};

void check_forward_backward(const std::string& name) {
  Case c(name);
  std::vector<float> logits;
  const double loss = c.loss_and_grads(&logits);
  const StTensor& ref_logits = c.file.get("logits");
  BOOST_TEST_INFO(name);
  BOOST_TEST(rel_error(logits.data(), static_cast<const float*>(ref_logits.data), logits.size()) < 1e-4);
  const double ref_loss = *static_cast<const float*>(c.file.get("loss").data);
  BOOST_TEST(std::fabs(loss - ref_loss) / ref_loss < 1e-5);
  for (const ParamInfo& p : c.state.table().params()) {
    const StTensor& g = c.file.get("grad." + p.name, DType::F32, p.shape);
    const double err = rel_error(static_cast<const float*>(c.state.grads()) + p.offset,
                                 static_cast<const float*>(g.data), (size_t)p.numel);
    BOOST_TEST_INFO(name << ": gradient of " << p.name);
    BOOST_TEST(err < 1e-4);
  }
}

void check_adamw_steps(const std::string& name) {
  Case c(name);
  nlohmann::json a = nlohmann::json::parse(c.file.meta("adamw"));
  OptimConfig oc;
  oc.lr = a["lr"]; oc.beta1 = a["beta1"]; oc.beta2 = a["beta2"]; oc.eps = a["eps"];
  oc.weight_decay = a["weight_decay"]; oc.grad_clip = a["clip_norm"];
  oc.warmup_steps = 0;
  oc.ema = 0;
  const float* ref_losses = static_cast<const float*>(c.file.get("adamw.losses").data);
  const float* ref_norms = static_cast<const float*>(c.file.get("adamw.grad_norms").data);
  const int steps = a["steps"];
  for (int k = 0; k < steps; ++k) {
    const double loss = c.loss_and_grads();
    const double norm = c.state.grad_norm(single_process());
    c.state.optimizer_step(oc, norm);
    BOOST_TEST_INFO(name << " AdamW step " << k);
    BOOST_TEST(std::fabs(loss - ref_losses[k]) / ref_losses[k] < 1e-5);
    BOOST_TEST(std::fabs(norm - ref_norms[k]) / ref_norms[k] < 1e-4);
  }
  const double final_loss = c.loss_and_grads();
  const double ref_final = *static_cast<const float*>(c.file.get("adamw.final_loss").data);
  BOOST_TEST(std::fabs(final_loss - ref_final) / ref_final < 1e-5);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dit_parity)

BOOST_AUTO_TEST_CASE(ids_input) { check_forward_backward("dit_ids.safetensors"); }
BOOST_AUTO_TEST_CASE(soft_input) { check_forward_backward("dit_soft.safetensors"); }
BOOST_AUTO_TEST_CASE(bag_input) { check_forward_backward("dit_bag.safetensors"); }
BOOST_AUTO_TEST_CASE(causal) { check_forward_backward("dit_causal.safetensors"); }
BOOST_AUTO_TEST_CASE(adamw_ten_steps) { check_adamw_steps("dit_ids.safetensors"); }
BOOST_AUTO_TEST_CASE(adamw_ten_steps_causal) { check_adamw_steps("dit_causal.safetensors"); }

BOOST_AUTO_TEST_SUITE_END()
