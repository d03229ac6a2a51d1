// CpuOps: the reference backend of the ops interface (backend/ops.h), on the host.
//
// Every op is a function template over T = float (training, sampling) and double (gradient checks), chosen
// at run time from the tensors' dtype. GEMMs go to OpenBLAS; loops over rows use OpenMP. Each op family
// lives in its own file (linear.cpp, layernorm.cpp, attention.cpp, ...); cpu_common.h has the shared checks.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <vector>
#include "backend/cpu/gemm_bf16.h"
#include "backend/ops.h"

namespace duo {

class CpuOps : public Ops {
 public:
  // bf16_gemms: the GEMMs of the dense layers and attention in bf16 with fp32 accumulation (`--compute bf16`, gemm_bf16.h); the
  // caller checks that the CPU has bf16 instructions (cpu_has_bf16_gemm).
  explicit CpuOps(bool bf16_gemms = false);
  ~CpuOps() override;
  const char* name() const override { return "cpu"; }
  Device device() const override { return Device::CPU; }
  std::string describe() const override;  // gemm_kernels.cpp

  // memory.cpp
  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void to_host(void* dst, const Tensor& src) override;
  void from_host(Tensor& dst, const void* src) override;
  size_t memory_in_use() const override;  // the process's resident set
  void begin_frozen_weights(const void* weights, size_t bytes) override;  // linear.cpp
  void end_frozen_weights(const void* weights) override;

  int64_t sum_squares_chunk() const override;
 protected:
  // the ops (backend/ops.h: the public calls check the arguments, then call these)
  void do_fill(Tensor& t, double value) override;
  void do_copy(Tensor& dst, const Tensor& src) override;

  // embedding.cpp
  void do_embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) override;
  void do_embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) override;
  void do_embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) override;
  void do_embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) override;
  void do_embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) override;
  void do_embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) override;

  // timestep.cpp
  void do_timestep_embedding(Tensor& out, const Tensor& sigma) override;

  // linear.cpp, activation.cpp
  void do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) override;
  void do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                          const Tensor& W, bool accumulate_din) override;
  void do_silu(Tensor& out, const Tensor& in) override;
  void do_silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;
  void do_gelu(Tensor& out, const Tensor& in) override;
  void do_gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;

  // layernorm.cpp
  void do_layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                             const Tensor& shift, const Tensor& scale) override;
  void do_layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const Tensor& dout,
                                      const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                      const Tensor& shift, const Tensor& scale) override;

  // rotary.cpp, attention.cpp
  void do_rotary(Tensor& out, const Tensor& in, int n_heads) override;
  void do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) override;
  void do_attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) override;
  void do_attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                             const Tensor& lse, int n_heads, bool causal) override;

  // residual.cpp
  void do_gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                         const Philox& rng) override;
  void do_gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                                  const Tensor& gate, float p, const Philox& rng) override;

  // softmax.cpp
  void do_log_softmax(Tensor& out, const Tensor& logits) override;
  void do_log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) override;
  void do_cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                        double grad_scale) override;

  // loss_head.cpp
  void do_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& x,
                    const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) override;
  void do_kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student, const Tensor& teacher,
                  const Tensor& weight) override;

  // relaxation.cpp
  void do_embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                        double inverse_tau, const Philox& noise, const Tensor& table) override;
  void do_gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales, double inverse_tau,
                              const Philox& noise) override;

  // sampling.cpp
  void do_diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep, const Tensor& sigma,
                         const DiffusionStepArgs& a) override;

  // optim.cpp
  double do_sum_squares(const Tensor& x) override;
  std::vector<double> do_sum_squares_chunks(const Tensor& x) override;
  void do_scale(Tensor& x, double s) override;
  void do_adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) override;
  void do_ema_update(Tensor& shadow, const Tensor& params, double decay) override;

 private:
  // Reusable host scratch, grown on demand and kept between calls (attention's per-thread score tiles,
  // the rotary cos/sin table, sum_squares' partial sums). Returns at least `count` elements of T.
  template <class T> T* scratch(size_t count) {
    size_t words = (count * sizeof(T) + sizeof(double) - 1) / sizeof(double);
    if (scratch_.size() < words) scratch_.resize(words);
    return reinterpret_cast<T*>(scratch_.data());
  }
  std::vector<double> scratch_;  // stored as doubles so that float and double views are aligned
  std::vector<double> relaxed_;  // embed_relaxed's (B, L, V) soft logits (as doubles: aligned for either dtype)

  // --compute bf16 (linear.cpp): the GEMM, the rounded inputs of the current call, and the rounded weight
  // matrices that lie in a frozen block (begin_frozen_weights: block start -> its end and its matrices by address),
  // kept until the block's end_frozen_weights().
  const cpu::bf16_t* bf16_weights(const Tensor& W);
  std::unique_ptr<cpu::Bf16Gemm> bf16_gemm_;
  std::vector<cpu::bf16_t> bf16_x_, bf16_dy_, bf16_w_, bf16_p_;  // bf16_p_: attention's probabilities per thread
  struct FrozenBlock {
    const char* end;
    int holders = 0;  // begin_frozen_weights calls not yet ended (two runners may share one model)
    std::map<const float*, std::vector<cpu::bf16_t>> rounded;
  };
  std::map<const char*, FrozenBlock> frozen_;
};

}  // namespace duo
