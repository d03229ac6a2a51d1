// PlanOps: a backend that computes nothing. It hands out address ranges instead of memory (never backed, never
// touched), keeps the live and peak bytes of its allocations, and counts what crosses to and from the host; its
// ops only run the shared argument checks and tell the observer. Running a training or sampling step on it gives
// the exact sequence of ops and tensor shapes a GPU would run, and the device memory it would hold, on a machine
// without a GPU and at any size (build/duo-roofline, duo-train --dry_run; docs/architecture.md §5).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>

#include "backend/comm.h"
#include "backend/kernel_traffic.h"
#include "backend/ops.h"
#include "backend/weight_copies.h"

namespace duo {

class PlanOps : public Ops {
 public:
  PlanOps();
  ~PlanOps() override;
  PlanOps(const PlanOps&) = delete;
  PlanOps& operator=(const PlanOps&) = delete;
  const char* name() const override { return "plan"; }
  Device device() const override { return Device::CUDA; }  // it plans the CUDA backend's tensors

  void* alloc(size_t bytes) override;  // a fresh 256-byte aligned address range; reading it is a bug
  void release(void* p) override;
  void to_host(void* dst, const Tensor& src) override;  // writes zeros (a computation's results are unknown)
  void from_host(Tensor& dst, const void* src) override;
  size_t memory_in_use() const override { return live_; }
  bool rotary_attention_uses_scratch(const Tensor& qkv, int n_heads) const override {  // CudaOps's, flash on
    if (qkv.dtype != DType::BF16 || n_heads <= 0 || qkv.ndim == 0 || qkv.dim(-1) % (3 * n_heads) != 0) return true;
    const int64_t hd = qkv.dim(-1) / 3 / n_heads;
    return hd != 32 && hd != 64;
  }
  DType activation_dtype(DType floats) const override {  // CudaOps's
    return floats == DType::F32 ? DType::BF16 : floats;
  }
  // CudaOps's bf16 working copies of frozen weights: planned as address ranges, kept by the same books.
  void begin_frozen_weights(const void* weights, size_t bytes) override { copies_.begin(weights, bytes); }
  void end_frozen_weights(const void* weights) override { copies_.end(weights); }
  size_t weight_copy_bytes() const { return copies_.bytes(); }

  size_t peak_bytes() const { return peak_; }
  size_t allocations() const { return sizes_.size(); }
  double bytes_to_host() const { return to_host_; }
  double bytes_from_host() const { return from_host_; }
  void reset_transfers() { to_host_ = from_host_ = 0; }

  int64_t sum_squares_chunk() const override { return kShardGrain; }  // CUDA's
 protected:
  WeightCopies* weight_copies() override { return &copies_; }
  void do_fill(Tensor&, double) override {}
  void do_copy(Tensor&, const Tensor&) override {}
  void do_embed_ids(Tensor&, const Tensor&, const Tensor&) override {}
  void do_embed_ids_backward(Tensor&, const Tensor&, const Tensor&) override {}
  void do_embed_soft(Tensor&, Tensor&, const Tensor&, const Tensor&) override {}
  void do_embed_soft_backward(Tensor&, const Tensor&, const Tensor&) override {}
  void do_embed_relaxed(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, double, const Philox&,
                        const Tensor&) override {}
  void do_embed_bag(Tensor&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_embed_bag_backward(Tensor&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_timestep_embedding(Tensor&, const Tensor&) override {}
  void do_linear(Tensor&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_linear_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, bool) override {}
  void do_silu(Tensor&, const Tensor&) override {}
  void do_silu_backward(Tensor&, const Tensor&, const Tensor&) override {}
  void do_gelu(Tensor&, const Tensor&) override {}
  void do_gelu_backward(Tensor&, const Tensor&, const Tensor&) override {}
  void do_linear_gelu(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_gelu_linear_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&) override {}
  void do_layernorm_modulate(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&) override {}
  void do_layernorm_modulate_backward(Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&) override {}
  void do_rotary(Tensor&, const Tensor&, int) override {}
  void do_rotary_backward(Tensor&, const Tensor&, int) override {}
  void do_attention(Tensor&, Tensor&, const Tensor&, int, bool) override {}
  void do_attention_backward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int,
                             bool) override {}
  void do_rotary_attention(Tensor&, Tensor&, Tensor&, const Tensor&, int, bool) override {}
  void do_rotary_attention_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const Tensor&, int, bool) override {}
  void do_gated_residual(Tensor&, const Tensor&, const Tensor&, const Tensor&, float, const Philox&) override {}
  void do_gated_residual_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, float,
                                  const Philox&) override {}
  void do_gated_residual_layernorm(Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   float, const Philox&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_log_softmax(Tensor&, const Tensor&) override {}
  void do_log_softmax_backward(Tensor&, const Tensor&, const Tensor&) override {}
  void do_cross_entropy(Tensor&, Tensor&, const Tensor&, const Tensor&, double) override {}
  void do_loss_head(const LossHeadArgs&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                    const Tensor&, const Tensor&, const Tensor&) override {}
  void do_kl_head(KlDirection, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&) override {}
  void do_linear_loss_head(const LossHeadArgs&, Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&) override {}
  int64_t default_vocab_chunk_rows(int64_t V, DType) const override { return cuda_vocab_chunk_rows(V); }
  void do_gaussian_relaxation(Tensor&, Tensor&, const Tensor&, const Tensor&, double, const Philox&) override {}
  void do_diffusion_step(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const DiffusionStepArgs&) override {}
  double do_sum_squares(const Tensor&) override { return 0.0; }
  std::vector<double> do_sum_squares_chunks(const Tensor& x) override {
    return std::vector<double>((size_t)((x.numel() + sum_squares_chunk() - 1) / sum_squares_chunk()), 0.0);
  }
  void do_scale(Tensor&, double) override {}
  void do_adamw(Tensor&, const Tensor&, Tensor&, Tensor&, const AdamWArgs&) override {}
  void do_ema_update(Tensor&, const Tensor&, double) override {}

 private:
  uintptr_t next_ = uintptr_t(1) << 44;  // far from anything the process maps
  std::map<uintptr_t, size_t> sizes_;     // live allocations
  size_t live_ = 0, peak_ = 0;
  double to_host_ = 0, from_host_ = 0;
  WeightCopies copies_;  // after the books above: its destructor releases through them
};

}  // namespace duo
