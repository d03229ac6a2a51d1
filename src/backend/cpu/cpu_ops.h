// CpuOps: the reference backend of the ops interface (backend/ops.h), on the host.
//
// Every op is a function template over T = float (training, sampling) and double (gradient checks), chosen
// at run time from the tensors' dtype. GEMMs go to OpenBLAS; loops over rows use OpenMP. Each op family
// lives in its own file (linear.cpp, layernorm.cpp, attention.cpp, ...); cpu_common.h has the shared checks.
#pragma once
#include <cstddef>
#include <vector>
#include "backend/ops.h"

namespace duo {

class CpuOps : public Ops {
 public:
  CpuOps() = default;
  const char* name() const override { return "cpu"; }
  Device device() const override { return Device::CPU; }

  // memory.cpp
  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void to_host(void* dst, const Tensor& src) override;
  void from_host(Tensor& dst, const void* src) override;
  void fill(Tensor& t, double value) override;
  void copy(Tensor& dst, const Tensor& src) override;
  size_t memory_in_use() const override;  // the process's resident set

  // embedding.cpp
  void embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) override;
  void embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) override;
  void embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) override;
  void embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) override;
  void embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) override;
  void embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) override;

  // timestep.cpp
  void timestep_embedding(Tensor& out, const Tensor& sigma) override;

  // linear.cpp, activation.cpp
  void linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) override;
  void linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                       const Tensor& W, bool accumulate_din) override;
  void silu(Tensor& out, const Tensor& in) override;
  void silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;
  void gelu(Tensor& out, const Tensor& in) override;
  void gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;

  // layernorm.cpp
  void layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                          const Tensor& shift, const Tensor& scale) override;
  void layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const Tensor& dout,
                                   const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                   const Tensor& shift, const Tensor& scale) override;

  // rotary.cpp, attention.cpp
  void rotary(Tensor& out, const Tensor& in, int n_heads) override;
  void rotary_backward(Tensor& din, const Tensor& dout, int n_heads) override;
  void attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) override;
  void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& lse, int n_heads, bool causal) override;

  // residual.cpp
  void gated_residual(Tensor& h, const Tensor& branch, const Tensor& gate, float p, const Philox& rng) override;
  void gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                               const Tensor& gate, float p, const Philox& rng) override;

  // softmax.cpp
  void log_softmax(Tensor& out, const Tensor& logits) override;
  void log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) override;
  void cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                     double grad_scale) override;

  // loss_head.cpp
  void loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& x,
                 const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) override;
  void kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student, const Tensor& teacher,
               const Tensor& weight) override;

  // relaxation.cpp
  void gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales, double inverse_tau,
                           const Philox& noise) override;

  // optim.cpp
  double sum_squares(const Tensor& x) override;
  void scale(Tensor& x, double s) override;
  void adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) override;
  void ema_update(Tensor& shadow, const Tensor& params, double decay) override;

 private:
  // Reusable host scratch, grown on demand and kept between calls (attention's per-thread score tiles,
  // the rotary cos/sin table, sum_squares' partial sums). Returns at least `count` elements of T.
  template <class T> T* scratch(size_t count) {
    size_t words = (count * sizeof(T) + sizeof(double) - 1) / sizeof(double);
    if (scratch_.size() < words) scratch_.resize(words);
    return reinterpret_cast<T*>(scratch_.data());
  }
  std::vector<double> scratch_;  // stored as doubles so that float and double views are aligned
};

}  // namespace duo
