// CudaOps: the GPU backend of the ops interface (backend/ops.h). fp32 tensors in device memory; GEMMs take bf16
// inputs with fp32 accumulation and output (cuBLASLt under nvcc, a host GEMM with the same rounding under the
// SIMT emulator); every reduction is deterministic (fixed-order, two-stage, no float atomics).
//
//   duo::CudaOps ops;                        // one stream, one cuBLASLt handle, an empty workspace
//   duo::ModelState state(cfg, ops, true);   // then use it wherever an Ops& is taken
//
// One op family per file in cuda/kernels/ (forward, backward and launcher together); cuda_ops.cu holds the
// memory ops and the workspace. F64 (gradient checks) is the CPU backend's business: CudaOps takes F32 only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/ops.h"
#include "backend/staging_ring.h"

namespace duo {

namespace cuda {
struct Gemm;  // the GEMM engine: cuBLASLt handle and cached descriptors (gemm.h)
}

class CudaOps : public Ops {
 public:
  CudaOps();
  ~CudaOps() override;
  CudaOps(const CudaOps&) = delete;
  CudaOps& operator=(const CudaOps&) = delete;

  const char* name() const override { return "cuda"; }
  Device device() const override { return Device::CUDA; }

  // cuda_ops.cu
  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void to_host(void* dst, const Tensor& src) override;
  void from_host(Tensor& dst, const void* src) override;
  void sync() override;
  double peak_flops() const override { return peak_flops_; }
  size_t memory_in_use() const override;  // the GPU's used memory (all processes), cudaMemGetInfo
  // BF16 for F32 models: the GEMM-operand activations are kept in the form the GEMMs read.
  DType activation_dtype(DType floats) const override { return floats == DType::F32 ? DType::BF16 : floats; }
  // Frozen weights get bf16 working copies (backend/weight_copies.h): each matrix rounded once a freeze, or not at all
  // when AdamW wrote the copies with the weights.
  void begin_frozen_weights(const void* weights, size_t bytes) override;
  void end_frozen_weights(const void* weights) override;
  // Bytes held by the working copies.
  size_t weight_copy_bytes() const;

  // Recorded op sequences as CUDA graphs (stream capture, cuda_graphs.cu; Ops::record). Inside a recording the ops
  // that would wait for the GPU, copy to or from the host, allocate, release or grow the scratch fail, naming the op.
  std::unique_ptr<Recording> record(const std::function<void()>& fn) override;
  bool replay(Recording& g) override;
  // Off: record() runs the ops without recording and replay() declines (tests compare the two).
  void use_graphs(bool on) { graphs_on_ = on; }
  // Graph launches so far (a recording's first run and every replay).
  int64_t graph_launches() const { return graph_launches_; }

  int64_t sum_squares_chunk() const override;
  // The stream every op runs on (a cudaStream_t): NCCL orders its collectives after the ops with events on it.
  void* stream() const { return stream_; }
  // Times the host has waited for the stream (or for an upload's copy) so far: to_host, sync, the gradient norm,
  // a release... Uploads (from_host) of up to 2 MiB wait for nothing: they go through a staging ring of page-locked
  // memory (backend/staging_ring.h). The tests count the waits of a training step.
  size_t host_waits() const { return host_waits_; }

 protected:
  WeightCopies* weight_copies() override { return weight_copies_on_ ? copies_.get() : nullptr; }
  void round_weights(void* copy, const Tensor& W) override;  // linear.cu

  // the ops (backend/ops.h: the public calls check the arguments, then call these)
  void do_fill(Tensor& t, double value) override;
  void do_copy(Tensor& dst, const Tensor& src) override;

  // kernels/embedding.cu
  void do_embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) override;
  void do_embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) override;
  void do_embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) override;
  void do_embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) override;
  void do_embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) override;
  void do_embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) override;

  // kernels/timestep.cu
  void do_timestep_embedding(Tensor& out, const Tensor& sigma) override;
  // kernels/activation.cu (SiLU, GELU)
  void do_silu(Tensor& out, const Tensor& in) override;
  void do_silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;
  void do_gelu(Tensor& out, const Tensor& in) override;
  void do_gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) override;

  // kernels/linear.cu
  void do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) override;
  void do_linear_gelu(Tensor& out, Tensor& pre, const Tensor& in, const Tensor& W, const Tensor& bias) override;
  void do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                          const Tensor& W, bool accumulate_din) override;
  void do_gelu_linear_backward(Tensor& dpre, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                               const Tensor& W, const Tensor& pre) override;

  // kernels/layernorm.cu
  void do_layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                             const Tensor& shift, const Tensor& scale) override;
  void do_layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const Tensor& dout,
                                      const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                      const Tensor& shift, const Tensor& scale) override;

  // kernels/rotary.cu; kernels/attention.cu: the flash kernels (kernels/flash_attention.cu) for head dims 32
  // and 64, the naive reference kernels otherwise or when use_flash_attention(false)
  void do_rotary(Tensor& out, const Tensor& in, int n_heads) override;
  void do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) override;
  void do_attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) override;
  void do_attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                             const Tensor& lse, int n_heads, bool causal) override;
  // rotary fused into the flash kernels (q and k rotated as they load, dQ and dK turned back as they store)
  void do_rotary_attention(Tensor& out, Tensor& lse, Tensor& rotated, const Tensor& qkv, int n_heads,
                           bool causal) override;
  void do_rotary_attention_backward(Tensor& dqkv, Tensor& drotated, Tensor& rotated, const Tensor& dout,
                                    const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads,
                                    bool causal) override;

  // kernels/residual.cu (and the gated residual fused with the next LayerNorm)
  void do_gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                         const Philox& rng) override;
  void do_gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                                  const Tensor& gate, float p, const Philox& rng) override;
  void do_gated_residual_layernorm(Tensor& out, Tensor& ln, Tensor& mean, Tensor& rstd, const Tensor& h,
                                   const Tensor& branch, const Tensor& gate, float p, const Philox& rng,
                                   const Tensor& weight, const Tensor& shift, const Tensor& scale) override;

  // kernels/softmax.cu (log-softmax, cross-entropy)
  void do_log_softmax(Tensor& out, const Tensor& logits) override;
  void do_log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) override;
  void do_cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                        double grad_scale) override;
  // kernels/loss_head.cu, kernels/kl_head.cu (the per-token loss heads, the distillation KL head)
  void do_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& x,
                    const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) override;
  void do_kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student, const Tensor& teacher,
                  const Tensor& weight) override;
  // kernels/loss_head.cu: the vocabulary head fused with the loss head, chunks of cuda_vocab_chunk_rows(V) rows
  void do_linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                           const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x, const Tensor& z,
                           const Tensor& alpha, const Tensor& dalpha, const Tensor& weight) override;
  int64_t default_vocab_chunk_rows(int64_t V, DType dt) const override;

  // kernels/relaxation.cu (and embed_relaxed: the relaxation's softmax, then embed_soft's product)
  void do_embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                        double inverse_tau, const Philox& noise, const Tensor& table) override;
  void do_gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales, double inverse_tau,
                              const Philox& noise) override;

  // kernels/sampling.cu (the diffusion samplers' step)
  void do_diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep, const Tensor& sigma,
                         const DiffusionStepArgs& a) override;

  // kernels/optim.cu
  double do_sum_squares(const Tensor& x) override;
  std::vector<double> do_sum_squares_chunks(const Tensor& x) override;
  void do_scale(Tensor& x, double s) override;
  void do_adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) override;
  void do_ema_update(Tensor& shadow, const Tensor& params, double decay) override;

 public:
  // Bytes of the device workspace now held (grows on demand, never shrinks).
  size_t workspace_bytes() const { return workspace_bytes_; }
  // GEMMs that asked for cuBLASLt's GELU or DGELU epilogue on an eligible shape and found no algorithm with it (they
  // ran as the GEMM and the separate kernel instead): 0 under the emulator; on a GPU the tests log it.
  int64_t epilogue_fallbacks() const { return epilogue_fallbacks_; }

  // Attention implementation: flash-style tensor-core kernels where supported (default), or the naive fp32
  // reference kernels everywhere (tests compare the two).
  void use_flash_attention(bool on) { flash_attention_ = on; }
  // The flash kernels rotate q and k themselves on a bf16 qkv of head dim 32 or 64: no scratch then (attention.cu).
  bool rotary_attention_uses_scratch(const Tensor& qkv, int n_heads) const override;
  // The bf16 working copies of frozen weights (default), or every weight rounded at every GEMM as without a freeze
  // (tests compare the two: the same bits). Set before the first freeze.
  void use_weight_copies(bool on) { weight_copies_on_ = on; }

 private:
  double peak_flops_ = 0;  // the device's dense bf16 peak (0 under the emulator)
  bool flash_attention_ = true;
  bool weight_copies_on_ = true;
  int64_t epilogue_fallbacks_ = 0;
  // At least `bytes` of device scratch, valid until the next workspace() call (callers carve one call's
  // buffers out of a single request). Grows by reallocation; kernels on the one stream are ordered with it.
  void* workspace(size_t bytes);
  // C[M,N] = op(A) op(B) (+ bias[N]) (+ C when accumulate) on the bf16 GEMM: the fp32 device arrays A (M,K),
  // or (K,M) when ta, and B (K,N), or (N,K) when tb, are rounded to bf16 in the workspace first (linear.cu).
  // With gelu_pre: the GELU epilogue, gelu_pre receives the result and C its GELU (linear_gelu checks
  // cuBLASLt's conditions for it first).
  // Returns false (nothing written) only when the GELU epilogue is not available for the shape.
  bool matmul(const char* op, float* C, const float* A, bool ta, const float* B, bool tb, int64_t M, int64_t N,
              int64_t K, bool accumulate, const float* bias, float* gelu_pre = nullptr);
  // The same GEMM on operands already in bf16 (A, B: __nv_bfloat16 device arrays), with cuBLASLt's scratch given
  // (Gemm::kWorkspaceBytes, carved by the caller out of its workspace request); lda, ldc: padded rows of A and C
  // (0: packed). C, bias and gelu_pre are fp32, or bf16 when c_bf16 (then C is written, never accumulated). With
  // dgelu_pre (C's type): the DGELU epilogue, C = product · gelu'(dgelu_pre); false (nothing written) when cuBLASLt
  // has no algorithm with it (linear.cu).
  bool gemm_bf16(const char* op, void* C, const void* A, bool ta, const void* B, bool tb, int64_t M, int64_t N,
                 int64_t K, bool accumulate, const void* bias, void* gelu_pre, void* gemm_workspace,
                 int64_t lda = 0, int64_t ldc = 0, bool c_bf16 = false, const void* dgelu_pre = nullptr);
  // linear_backward's GEMMs and bias sums; with dgelu_pre, din's GEMM with the DGELU epilogue where cuBLASLt has
  // it (returns whether it did: else din is the plain product) (linear.cu).
  bool linear_backward_gemms(const char* op, Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout,
                             const Tensor& in, const Tensor& W, bool accumulate_din, const Tensor* dgelu_pre);
  // The linear layer's GEMM (linear, linear_gelu): out (N, O) = in (N, I) W^T + bias, with the GELU epilogue into
  // pre when pre is given; in and out (and pre) F32 or BF16 (linear.cu). Returns false, writing nothing, only when
  // the GELU epilogue is not available for the shape.
  bool linear_gemm(const char* op, Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias, Tensor* pre);
  // The bf16 form of a GEMM operand t (F32 or BF16): t itself, or its rounding into slot, which holds
  // bf16_slot_bytes(t) bytes of the workspace (linear.cu).
  const void* bf16_operand(const Tensor& t, void* slot);
  static size_t bf16_slot_bytes(const Tensor& t);
  // The bf16 form of a weight matrix W (F32) for a GEMM: its working copy when current (the public call made it),
  // else its rounding into slot, O·I bf16 of the workspace (linear.cu).
  const void* bf16_weights(const Tensor& W, void* slot);
  // layernorm_modulate_backward's kernels for a dout of element type G: float, or the bf16 activation dtype
  // (layernorm.cu).
  template <class G>
  void layernorm_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale, const G* g, const Tensor& x,
                          const Tensor& mean, const Tensor& rstd, const Tensor& weight, const Tensor& shift,
                          const Tensor& scale);
  // out (N, D) = probs (N, V, bf16 in its first N·V·2 bytes) @ table (V, D) on the bf16 GEMM: embed_soft's and
  // embed_relaxed's product (embedding.cu).
  void soft_embedding_product(const char* op, Tensor& out, const Tensor& probs, const Tensor& table, int64_t N, int64_t V,
                              int64_t D);
  // One workspace request of a fused rotary_attention call: the flash kernels' scratch for (B, L, H heads of hd) and,
  // after it, the rotary table (L, hd/2) of (cos, sin), written on the stream: (the scratch, the table) (attention.cu).
  std::pair<void*, const void*> flash_rotary_workspace(const char* op, int64_t B, int64_t L, int64_t H, int hd);
  // The fp32 form the naive attention kernels read: t itself, or a bf16 t widened into slot (attention.cu).
  const float* as_f32(const Tensor& t, void* slot);
  // dst (n bf16) = src (n fp32) rounded to nearest even, on the stream (linear.cu).
  void to_bf16(void* dst, const float* src, int64_t n);
  // Id checks without a host round trip (embedding.cu): check_ids launches a kernel that leaves the first position of
  // ids (n, I32, device) outside [0, V), and its id, in the call's slot of id_slots_ (device); the kernels that read
  // ids take a bad one as 0 meanwhile (valid_id). The slots in use come back at the next synchronisation, in the same
  // wait (sync, to_host, sum_squares; check_id_errors when all kIdSlots are used), which fails naming the first
  // call's op, the position and the id.
  void check_ids(const char* op, const Tensor& ids, int64_t V);
  void check_id_errors();     // waits for the stream unless no check is pending
  void queue_id_readback();   // the slots in use to id_found_ and reset, on the stream (before a wait)
  void report_id_readback();  // after that wait: fails on the first bad id
  std::vector<unsigned long long> id_found_;
  static constexpr size_t kIdSlots = 64;
  struct IdCheck {
    const char* op;
    int64_t V;
  };
  void* id_slots_ = nullptr;  // kIdSlots unsigned long long, all ones when unused
  std::vector<IdCheck> id_checks_;

  // cudaStreamSynchronize, counted (host_waits). With read_id_checks, the id checks' slots come back in the same
  // wait and a bad id fails here (not from release(), which destructors call, nor from inside an op's workspace).
  void wait_for_stream(const char* op, bool read_id_checks = true);
  // from_host's ring of page-locked staging memory (made at the first upload it takes; nullptr when the host could
  // not lock the memory, and every upload is then synchronous).
  static constexpr size_t kStagingBytes = size_t(8) << 20;
  bool staging_ready();
  std::unique_ptr<StagingRing> staging_;
  void* staging_host_ = nullptr;
  bool staging_failed_ = false;
  size_t host_waits_ = 0;

  // Recordings (cuda_graphs.cu). epoch_ changes whenever a buffer a recording may use can move (the scratch is
  // reallocated, memory is released): a recording of an older epoch is stale.
  struct Graph;
  bool graphs_on_ = true;
  bool recording_ = false;
  uint64_t epoch_ = 0;
  int64_t graph_launches_ = 0;
  void refuse_while_recording(const char* op) const;  // fails inside a recording
  void graphs_unavailable(const std::string& why);    // graphs off for the run, with one warning

  void* stream_ = nullptr;  // cudaStream_t, kept opaque so that this header needs no CUDA include
  std::unique_ptr<cuda::Gemm> gemm_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::unique_ptr<WeightCopies> copies_;
};

}  // namespace duo
