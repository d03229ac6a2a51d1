#include "train/model_state.h"
#include <cmath>
#include <utility>

namespace duo {

ModelState::ModelState(const ModelConfig& cfg, Ops& ops, bool with_optimizer, DType dtype)
    : table_(cfg), ops_(ops), dtype_(dtype) {
  const size_t n = (size_t)table_.total() * dtype_size(dtype);
  params_ = ops_.alloc(n);
  if (with_optimizer) {
    grads_ = ops_.alloc(n);
    m_ = ops_.alloc(n);
    v_ = ops_.alloc(n);
    ema_ = ops_.alloc(n);
  }
}

ModelState::~ModelState() {
  for (void* p : {params_, grads_, m_, v_, ema_})
    if (p) ops_.release(p);
}

Tensor ModelState::flat(void* buffer) const {
  return Tensor(buffer, dtype_, {table_.total()}, ops_.device());
}

std::vector<float> ModelState::download(void* buffer) {
  DUO_CHECK(dtype_ == DType::F32, "ModelState", "host copies are float32", "");
  std::vector<float> host((size_t)table_.total());
  ops_.to_host(host.data(), flat(buffer));
  return host;
}

void ModelState::upload(void* buffer, const std::vector<float>& host) {
  DUO_CHECK(dtype_ == DType::F32 && (int64_t)host.size() == table_.total(), "ModelState", "host copy size", "");
  Tensor t = flat(buffer);
  ops_.from_host(t, host.data());
}

size_t ModelState::bytes() const {
  int n = 0;
  for (void* p : {params_, grads_, m_, v_, ema_}) n += p != nullptr;
  return (size_t)n * (size_t)table_.total() * dtype_size(dtype_);
}

void ModelState::zero_grads() {
  Tensor g = flat(grads_);
  ops_.fill(g, 0.0);
}

double ModelState::optimizer_step(const OptimConfig& cfg) {
  DUO_ASSERT(has_optimizer());
  Tensor p = flat(params_), g = flat(grads_), m = flat(m_), v = flat(v_), e = flat(ema_);
  const double norm = std::sqrt(ops_.sum_squares(g));
  const double coef = clip_coefficient(norm, cfg.grad_clip);
  if (coef != 1.0) ops_.scale(g, coef);
  AdamWArgs a;
  a.lr = learning_rate(cfg, step);
  a.beta1 = cfg.beta1; a.beta2 = cfg.beta2; a.eps = cfg.eps; a.weight_decay = cfg.weight_decay;
  a.step = step + 1;
  ops_.adamw(p, g, m, v, a);
  step += 1;
  if (cfg.ema > 0) {
    ema_updates += 1;
    ops_.ema_update(e, p, ema_decay(cfg.ema, ema_updates));
  }
  return norm;
}

void ModelState::reset_ema() {
  if (!ema_) return;
  Tensor e = flat(ema_), p = flat(params_);
  ops_.copy(e, p);
  ema_updates = 0;
}

void ModelState::swap_params_and_ema() {
  DUO_ASSERT(ema_ != nullptr);
  std::swap(params_, ema_);
}

}  // namespace duo
