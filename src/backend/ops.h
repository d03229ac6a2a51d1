// The ops interface: everything the model, the algorithms and the samplers ask of a device.
// The DiT and the algorithms are written once against this class; backends implement it and know nothing
// of algorithms. src/backend/cpu/ is the reference (fp32, and float64 for gradient checks); cuda/ is the
// GPU backend.
//
// Conventions (as llm.c's):
//  * Shapes are outermost first. N = B*L rows of a (B, L, X) activation; D = hidden size; V = vocabulary.
//  * All floating tensors of one call share one dtype (F32, or F64 on the CPU backend for gradient checks).
//    Token ids are I32. The exception is the backend's activation dtype (activation_dtype() below): the
//    activations that only GEMMs and a few elementwise ops read may be kept in it, and the ops that take them say
//    so ("act" in their comment). The CPU's is its float type; the CUDA backend's is BF16, so that those
//    activations are written once in the form its GEMMs read, never converted again.
//  * Backward: parameter gradients ACCUMULATE (+=) so micro-batches add up; activation gradients are
//    WRITTEN (=) unless the comment says "accumulates" (the residual stream does).
//  * An empty Tensor (data == nullptr) means "absent" where the comment allows it (no bias, no modulation,
//    gradient not wanted).
//  * Randomness comes from a Philox stream (core/philox.h): element i uses offset i of the stream, so every
//    backend draws the same numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "core/philox.h"
#include "core/tensor.h"
#include "backend/op_kinds.h"
#include "math/loss_kinds.h"
#include "math/sampling_step.h"

namespace duo {

class WeightCopies;

struct AdamWArgs {
  double lr = 3e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // 1-based step number, for bias correction
};

// The public calls are the same for every backend: each runs the op's shared argument checks
// (backend/shape_checks.h), then the backend's implementation (the protected do_ functions), then tells the
// observer, if one is set. A backend implements the do_ functions and adds only its own checks (dtypes, device).
class Ops {
 public:
  virtual ~Ops() = default;
  virtual const char* name() const = 0;
  virtual Device device() const = 0;
  // The compute behind the backend in one line for a run's header (the CPU: its BLAS and kernels, threads,
  // waiting and denormal handling; a GPU: the device).
  virtual std::string describe() const { return name(); }

  // The dtype in which a model may keep its GEMM-operand activations when its parameters are in `floats`: floats
  // itself (every backend accepts it), or a narrower type the backend computes with directly (CUDA: BF16 for F32).
  virtual DType activation_dtype(DType floats) const { return floats; }

  // Sees every op after it ran (nullptr: none). Not owned; it must outlive its use.
  void set_observer(OpObserver* observer) { observer_ = observer; }

  // ---- memory -------------------------------------------------------------------------------------------
  virtual void* alloc(size_t bytes) = 0;  // zero-filled; freed by release()
  virtual void release(void* p) = 0;
  virtual void to_host(void* dst, const Tensor& src) = 0;    // copies src.nbytes()
  virtual void from_host(Tensor& dst, const void* src) = 0;  // copies dst.nbytes()
  void fill(Tensor& t, double value);
  void copy(Tensor& dst, const Tensor& src);  // same dtype and element count
  virtual void sync() {}
  // The device's dense bf16 peak in FLOP/s for the MFU of the progress line (backend/device_peak.h); 0 when it
  // has none worth quoting (the CPU, the emulator).
  virtual double peak_flops() const { return 0.0; }
  // Bytes of memory in use where this backend keeps its tensors, for the progress line: the process's resident
  // memory (CPU), the GPU's used memory (CUDA), the live allocations (the emulator).
  virtual size_t memory_in_use() const = 0;
  // Promises that the `bytes` at `weights` (a model's parameter block) stay unchanged until
  // end_frozen_weights(weights). A backend that computes with a converted copy of the weights (the CPU's
  // `--compute bf16`) may keep the copy that long instead of converting at every call. The inference runner holds
  // its model's block while it lives; a training step holds it over its forward and backward. Several blocks
  // (a sampler's model and a scorer's) may be frozen at once, and one block more than once (the copies are kept
  // until the last end). Use the FrozenWeights guard below.
  virtual void begin_frozen_weights(const void* /*weights*/, size_t /*bytes*/) {}
  virtual void end_frozen_weights(const void* /*weights*/) {}

  // ---- recorded op sequences (CUDA graphs) ---------------------------------------------------------------
  // A sequence of op calls that reads and writes only device buffers (no to_host, from_host, sync, alloc or release
  // inside) can be recorded by a backend that launches work on a device, and replayed as one launch: the same kernels
  // on the same buffers with the same arguments, without the host's cost per kernel (docs/architecture.md §5.6).
  // record(fn) runs fn's ops (when it returns they have been issued, as if fn had been called) and returns the
  // recording, or nullptr when the backend keeps none (the CPU, whose ops run as they are called; a backend with an
  // observer, which must see every op). Run the sequence once unrecorded first: growing the scratch inside a
  // recording is an error, and weight copies rounded inside one would be rounded again at every replay. replay(g)
  // issues g's work again and returns true, or returns false, issuing nothing, when g is stale (a buffer it uses may
  // have moved since: scratch reallocated, memory released, weight copies remade or stale); record again then.
  // Host-side values computed inside fn (a returned tensor) are the caller's to keep: replay does not call fn.
  class Recording {
   public:
    virtual ~Recording() = default;
  };
  virtual std::unique_ptr<Recording> record(const std::function<void()>& fn) {
    fn();
    return nullptr;
  }
  virtual bool replay(Recording& /*g*/) { return false; }

  // ---- embedding ----------------------------------------------------------------------------------------
  // out[N,D] = table[ids[n], :]                                                      ids: I32 [N]
  void embed_ids(Tensor& out, const Tensor& ids, const Tensor& table);
  // dtable[V,D] += scatter of dout[N,D] by ids (deterministic: rows are summed in order of n).
  void embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout);
  // Soft input (DUO curriculum): out = softmax(logits[N,V]) @ table. probs [N,V] (the logits' dtype) keeps the
  // softmax for the backward in the backend's own form: the CPU's values; the CUDA backend's bf16 rounding of them
  // (the GEMM operand, in the buffer's first N·V·2 bytes). Only embed_soft_backward reads it.
  void embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table);
  // dtable[V,D] += probs^T @ dout, probs as embed_soft saved it. (The input logits are noise and need no gradient.)
  void embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout);
  // The soft input of DUO's curriculum in one op: gaussian_relaxation (below) of the clean tokens x (B, L) with the
  // sequences' scales (B, 2) and noise, z (B·L) = its argmax, then embed_soft of the soft logits w·inverse_tau:
  // out (B·L, D) = softmax(w·inverse_tau) @ table, probs (B·L, V) as embed_soft saves them. The (B, L, V) soft logits
  // are the backend's business: the CPU writes them to its own scratch and runs the two ops (the same bits); the
  // CUDA backend draws ε inside the softmax kernel and writes only the probabilities.
  void embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales, double inverse_tau,
                     const Philox& noise, const Tensor& table);
  // Weighted bag (efficient curriculum): out[n,:] = sum_j weights[n,j] * table[ids[n,j], :]    ids/weights [N,k]
  void embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table);
  void embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout);

  // ---- time conditioning --------------------------------------------------------------------------------
  // out[B,F] = [cos(sigma_b f_0..f_{F/2-1}), sin(sigma_b f_0..)] with f_i = exp(-ln(10000) i / (F/2)).
  // sigma is never differentiated, so there is no backward.
  void timestep_embedding(Tensor& out, const Tensor& sigma);

  // ---- dense layers -------------------------------------------------------------------------------------
  // out[N,O] = in[N,I] @ W[O,I]^T + bias[O] (bias may be empty). in, out: act.
  void linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias);
  // din[N,I] = dout @ W (written, or added when accumulate_din; skipped when din is empty);
  // dW[O,I] += dout^T @ in; dbias[O] += sum_n dout (skipped when empty). in, dout: act; din: act when written (an
  // accumulated din is the floats' dtype).
  void linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                       const Tensor& W, bool accumulate_din);
  // Elementwise activations, out = f(in); backward din = dout * f'(in). GELU is the tanh approximation.
  // gelu: in, out: act; gelu_backward: in, dout, din: act (one dtype).
  void silu(Tensor& out, const Tensor& in);
  void silu_backward(Tensor& din, const Tensor& dout, const Tensor& in);
  void gelu(Tensor& out, const Tensor& in);
  void gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in);
  // The MLP's first layer: pre[N,O] = in @ W^T + bias (kept for gelu_backward) and out = gelu(pre). This default
  // is the two ops; a backend with a fused GEMM epilogue overrides it (CUDA: cuBLASLt's GELU_AUX_BIAS).
  // in, out, pre: act.
  void linear_gelu(Tensor& out, Tensor& pre, const Tensor& in, const Tensor& W, const Tensor& bias);
  // The backward of the MLP's second layer through the GELU before it, out = in W^T + bias with in = gelu(pre):
  // dpre[N,I] = gelu'(pre) * (dout @ W) (written), dW += dout^T @ in, dbias += sum_n dout (skipped when empty).
  // The default is linear_backward then gelu_backward; a backend with a GELU-backward GEMM epilogue overrides it
  // (CUDA: cuBLASLt's DGELU). dpre, dout, in, pre: act (dpre and pre one dtype).
  void gelu_linear_backward(Tensor& dpre, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                            const Tensor& W, const Tensor& pre);

  // ---- LayerNorm (no bias, eps 1e-5) fused with adaLN modulate ----------------------------------------
  // x, out: [B,L,D]; weight [D]; shift, scale: [B,D] (may be column views of the adaLN output, i.e. strided
  // rows), or both empty for plain LN (the causal model). mean, rstd: [B*L], saved for the backward.
  // out = (norm(x) * weight) * (1 + scale[b]) + shift[b]                                              out: act
  void layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                          const Tensor& shift, const Tensor& scale);
  // dx ACCUMULATES (residual stream); dweight +=; dshift, dscale [B,D] are written (skipped when empty). dout: act.
  void layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale,
                                   const Tensor& dout, const Tensor& x, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& weight, const Tensor& shift,
                                   const Tensor& scale);

  // ---- attention ----------------------------------------------------------------------------------------
  // qkv: [B,L,3D] with feature order [q|k|v][head][dim]. Rotary (rotate-half, base 10000, position = l) is
  // applied to q and k of every head; v is copied. out may not alias in. rotary: in, out: act (one dtype);
  // rotary_backward: din: act.
  void rotary(Tensor& out, const Tensor& in, int n_heads);
  void rotary_backward(Tensor& din, const Tensor& dout, int n_heads);
  // Softmax attention with scale 1/sqrt(head_dim), no mask (bidirectional) or causal.
  // out: [B,L,D] (heads concatenated); lse: [B,H,L] log-sum-exp of each score row, saved for the backward.
  // qkv, out: act (one dtype; forward and backward).
  void attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal);
  // dqkv: [B,L,3D] written; dout: act.
  void attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& lse, int n_heads, bool causal);
  // The DiT's attention: rotary, then attention, as one op: out, lse = attention(rotary(qkv)), qkv the qkv layer's
  // output. rotated: scratch of qkv's shape and dtype where a backend may put rotary(qkv) (the default: the two ops;
  // the CUDA backend's flash kernels rotate q and k as they load them and leave it alone). qkv, rotated, out: act
  // (one dtype).
  void rotary_attention(Tensor& out, Tensor& lse, Tensor& rotated, const Tensor& qkv, int n_heads, bool causal);
  // Whether rotary_attention and its backward on a qkv of this shape and dtype use the scratch `rotated` and
  // `drotated`; where they do not (the CUDA flash kernels on bf16 qkv), a caller may pass both empty and plan no
  // memory for them. qkv's data is not read (null is fine).
  virtual bool rotary_attention_uses_scratch(const Tensor& qkv, int n_heads) const;
  // Its backward, dqkv = rotary_backward(attention_backward(dout, rotary(qkv), out, lse)), written; rotated as in the
  // forward (rotary(qkv) recomputed there by the default), drotated: (B, L, 3D) scratch in the floats' dtype for the
  // gradient at rotary(qkv) (the default's). qkv, rotated, out, dqkv, dout: act.
  void rotary_attention_backward(Tensor& dqkv, Tensor& drotated, Tensor& rotated, const Tensor& dout,
                                 const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads, bool causal);

  // ---- gated residual with dropout ----------------------------------------------------------------------
  // h[B,L,D] += gate[b] * dropout(branch), gate [B,D] (strided view allowed) or empty (= 1).
  // dropout keeps element i when rng.uniform(i) > p (i = flat index into [B,L,D]) and scales by 1/(1-p);
  // p = 0 means no dropout (rng unused). branch: act (both forms and the backward).
  void gated_residual(Tensor& h, const Tensor& branch, const Tensor& gate, float p, const Philox& rng);
  // The same out of place, out = h + gate[b] * dropout(branch), so a forward reads one call per line of the
  // equation (x_mid = x_in + gate_msa · drop(attn)). out may not alias h, branch or gate.
  void gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                      const Philox& rng);
  // The out-of-place gated residual and the LayerNorm of its result as one op (the DiT's block boundaries: the
  // residual stream after a branch, normalised for the next one): out = h + gate[b] * dropout(branch) as above, then
  // layernorm_modulate(ln, mean, rstd, out, weight, shift, scale). The default is the two ops; a backend may fuse
  // them (CUDA: one pass per row, the same bits). branch, ln: act (one dtype).
  void gated_residual_layernorm(Tensor& out, Tensor& ln, Tensor& mean, Tensor& rstd, const Tensor& h,
                                const Tensor& branch, const Tensor& gate, float p, const Philox& rng,
                                const Tensor& weight, const Tensor& shift, const Tensor& scale);
  // dbranch = gate * mask * dh / (1-p) (written); dgate[B,D] = sum_l dh * dropout(branch) (written; skipped
  // when empty). dh itself passes through to the residual unchanged. dbranch: act.
  void gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                               const Tensor& gate, float p, const Philox& rng);

  // ---- output --------------------------------------------------------------------------------------------
  // out[N,V] = log_softmax(logits) per row; backward din = dout - softmax * sum(dout).
  void log_softmax(Tensor& out, const Tensor& logits);
  void log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out);
  // losses[N] = -log softmax(logits[n])[targets[n]]; if dlogits is not empty it is written with
  // grad_scale * (softmax - onehot). targets: I32 [N].
  void cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                     double grad_scale);

  // ---- loss heads ---------------------------------------------------------------------------------------
  // For every row n of logits (N, V): losses[n] = ℓ(logits[n], x[n], z[n], alpha[n], dalpha[n]) (unweighted);
  // when dlogits is not empty, dlogits[n, :] = weight[n] · dℓ/dlogits[n, :] (written). x, z: I32 (N) clean and
  // noisy ids (AR and CE: x is the target); alpha, dalpha: F64 (N) α_t and α'_t of the token's sequence;
  // weight: F64 (N), the loss mask times the gradient scale. losses and dlogits have the dtype of logits.
  void loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits,
                 const Tensor& x, const Tensor& z, const Tensor& alpha, const Tensor& dalpha,
                 const Tensor& weight);
  // The output layer fused with the loss head (the vocabulary head of a training or validation step): per row
  // n of y (N, D), logits[n] = W y[n] + bias (W (V, D), bias (V) or empty) and losses[n] as loss_head gives them
  // for those logits; when dy is not empty, with dlogits[n] = weight[n] · dℓ/dlogits[n] as loss_head writes it:
  // dy = dlogits W (written), dW += dlogitsᵀ y, dbias += Σ_n dlogits[n] (when bias is given). The backend runs it a
  // chunk of rows at a time (vocab_chunk_rows), so the (N, V) logits and their gradient never exist at once.
  void linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                        const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x, const Tensor& z,
                        const Tensor& alpha, const Tensor& dalpha, const Tensor& weight);
  // The rows of one chunk of linear_loss_head for a vocabulary of V (the backend's choice, or set_vocab_chunk_rows).
  int64_t vocab_chunk_rows(int64_t V, DType dt) const {
    return vocab_chunk_rows_ > 0 ? vocab_chunk_rows_ : default_vocab_chunk_rows(V, dt);
  }
  // Overrides the chunk rows (0: the backend's default again); tests use it to run several chunks on small shapes.
  void set_vocab_chunk_rows(int64_t rows) { vocab_chunk_rows_ = rows; }
  // Distillation head (math in src/math/loss_distill.h): for every row n of student and teacher (N, V),
  // p = softmax(student[n]), q = softmax(teacher[n]); losses[n] = KL(p ‖ q) (Backward) or KL(q ‖ p) (Forward),
  // unweighted. When dstudent is not empty, dstudent[n, :] = weight[n] · dKL/dstudent[n, :] (written); the
  // teacher gets no gradient. weight: F64 (N), the loss mask times the gradient scale. losses and dstudent
  // have the dtype of the logits.
  void kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student,
               const Tensor& teacher, const Tensor& weight);

  // ---- DUO curriculum input -------------------------------------------------------------------------------
  // The Gaussian relaxation of the clean tokens x (I32, B·L rows; row n belongs to sequence b = n / L), the
  // soft input of DUO's curriculum (docs/curriculum.md §4; per-row maths in math/relaxation.h): for every row n
  // and id j, with
  // ε_{n,j} = noise.normal(n·V + j) and the sequence's scales (α̃_b, σ̃_b) = scales[b] (F64 (B, 2)),
  //   w_j = α̃_b·[j = x_n] + σ̃_b·ε_{n,j}     (float32, as relaxed_coordinate)
  //   soft_logits[n, j] = w_j · inverse_tau  (B, L, V), the network's input before its softmax
  //   z[n] = argmax_j w_j                    (I32 (B·L), the first maximum), the latent the loss is taken at.
  // soft_logits may be empty (null data, shape (B, L, V) still given): then only z is drawn, from the same ε
  // (distillation's z_t and z_s). No gradient: it is a draw, not a function of trained parameters.
  void gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales,
                           double inverse_tau, const Philox& noise);

  // ---- sampling -------------------------------------------------------------------------------------------
  // One step of the diffusion sampling loop where the network's output lives, so that only token ids travel
  // (docs/sampling.md §1; the maths in math/sampling_step.h): every row n of logits (B, L, V), the network's raw
  // output, is post-processed as the family's denoiser does (log-softmax for DUO and D3PM, SUBS for MDLM, SEDD's
  // log-score with the time input sigma[b]), then z[n] is updated in place by the step `a` (the posterior and its
  // draw, or the greedy tail's argmax); positions with keep[n] != 0 are left alone. z: I32 (B·L); keep: U8 (B·L) or
  // empty; sigma: F64 (B) (read by SEDD only, may be empty otherwise); status: I32 (2), written: [the tokens
  // changed, the first row whose logits are not finite or B·L if none] (a row that is not finite is not updated).
  // The draws are the host sampler's (same Philox counters); on the CPU backend the same bits.
  void diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep, const Tensor& sigma,
                      const DiffusionStepArgs& a);

  // ---- optimisation -------------------------------------------------------------------------------------
  // Sum of squares of all elements, accumulated in double in a fixed order (deterministic global norm).
  double sum_squares(const Tensor& x);
  // The sums of squares of x's chunks of sum_squares_chunk() elements (the last one may be shorter), each in
  // double, in chunk order: a part of a sharded vector that starts at a whole chunk yields the whole vector's chunk
  // sums there (ZeRO-1's gradient norm, train/model_state.h). On the CPU sum_squares adds them in chunk order.
  std::vector<double> sum_squares_chunks(const Tensor& x);
  virtual int64_t sum_squares_chunk() const = 0;
  void scale(Tensor& x, double s);
  // AdamW with decoupled weight decay and bias correction, over flat buffers of equal size (params fp32).
  void adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a);
  // shadow = shadow - (1 - decay) * (shadow - params)
  void ema_update(Tensor& shadow, const Tensor& params, double decay);

  // ---- what each backend implements: the ops above without the shared checks and the observer ---------------
 protected:
  // The backend's bf16 working copies of frozen weights (backend/weight_copies.h), or nullptr (the CPU, which keeps
  // its own rounded weights for `--compute bf16`). With copies, the public calls keep the books: before an op that
  // reads a weight matrix through a GEMM, a stale copy is made (round_weights); fill, copy, scale and the EMA update
  // make the copies of what they write stale; AdamW writes its params' copy where WeightCopies::follows gives one.
  virtual WeightCopies* weight_copies() { return nullptr; }
  // copy (W.numel() bf16) = W (F32) rounded to nearest even: a working copy made before the op that reads it.
  virtual void round_weights(void* /*copy*/, const Tensor& /*W*/) {}
  virtual void do_fill(Tensor& t, double value) = 0;
  virtual void do_copy(Tensor& dst, const Tensor& src) = 0;
  virtual void do_embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) = 0;
  virtual void do_embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) = 0;
  virtual void do_embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) = 0;
  virtual void do_embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) = 0;
  virtual void do_embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                                double inverse_tau, const Philox& noise, const Tensor& table) = 0;
  virtual void do_embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) = 0;
  virtual void do_embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights,
                                     const Tensor& dout) = 0;
  virtual void do_timestep_embedding(Tensor& out, const Tensor& sigma) = 0;
  virtual void do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) = 0;
  virtual void do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout,
                                  const Tensor& in, const Tensor& W, bool accumulate_din) = 0;
  virtual void do_silu(Tensor& out, const Tensor& in) = 0;
  virtual void do_silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) = 0;
  virtual void do_gelu(Tensor& out, const Tensor& in) = 0;
  virtual void do_gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) = 0;
  virtual void do_linear_gelu(Tensor& out, Tensor& pre, const Tensor& in, const Tensor& W, const Tensor& bias) {
    // The default is the two ops; a backend with a fused GEMM epilogue overrides it (CUDA: cuBLASLt GELU_AUX_BIAS).
    do_linear(pre, in, W, bias);
    do_gelu(out, pre);
  }
  virtual void do_gelu_linear_backward(Tensor& dpre, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                      const Tensor& W, const Tensor& pre) {
    // The default is the two ops, GELU's derivative applied to dpre in place; a backend with a GELU-backward GEMM
    // epilogue overrides it (CUDA: cuBLASLt's DGELU).
    do_linear_backward(dpre, dW, dbias, dout, in, W, false);
    do_gelu_backward(dpre, dpre, pre);
  }
  virtual void do_layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x,
                                     const Tensor& weight, const Tensor& shift, const Tensor& scale) = 0;
  virtual void do_layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale,
                                              const Tensor& dout, const Tensor& x, const Tensor& mean,
                                              const Tensor& rstd, const Tensor& weight, const Tensor& shift,
                                              const Tensor& scale) = 0;
  virtual void do_rotary(Tensor& out, const Tensor& in, int n_heads) = 0;
  virtual void do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) = 0;
  virtual void do_attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) = 0;
  virtual void do_attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                     const Tensor& lse, int n_heads, bool causal) = 0;
  virtual void do_rotary_attention(Tensor& out, Tensor& lse, Tensor& rotated, const Tensor& qkv, int n_heads,
                                   bool causal) {
    do_rotary(rotated, qkv, n_heads);  // the default: the two ops
    do_attention(out, lse, rotated, n_heads, causal);
  }
  virtual void do_rotary_attention_backward(Tensor& dqkv, Tensor& drotated, Tensor& rotated, const Tensor& dout,
                                            const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads,
                                            bool causal) {
    do_rotary(rotated, qkv, n_heads);  // the default: the three ops, the rotation recomputed
    do_attention_backward(drotated, dout, rotated, out, lse, n_heads, causal);
    do_rotary_backward(dqkv, drotated, n_heads);
  }
  // out = h + gate · dropout(branch); out is h itself for the in-place call.
  virtual void do_gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                                 const Philox& rng) = 0;
  virtual void do_gated_residual_layernorm(Tensor& out, Tensor& ln, Tensor& mean, Tensor& rstd, const Tensor& h,
                                           const Tensor& branch, const Tensor& gate, float p, const Philox& rng,
                                           const Tensor& weight, const Tensor& shift, const Tensor& scale) {
    do_gated_residual(out, h, branch, gate, p, rng);  // the default: the two ops
    do_layernorm_modulate(ln, mean, rstd, out, weight, shift, scale);
  }
  virtual void do_gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh,
                                          const Tensor& branch, const Tensor& gate, float p, const Philox& rng) = 0;
  virtual void do_log_softmax(Tensor& out, const Tensor& logits) = 0;
  virtual void do_log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) = 0;
  virtual void do_cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                double grad_scale) = 0;
  virtual void do_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits,
                            const Tensor& x, const Tensor& z, const Tensor& alpha, const Tensor& dalpha,
                            const Tensor& weight) = 0;
  // The default runs the three ops a chunk at a time (linear, loss_head, linear_backward) on two (chunk rows, V)
  // buffers in host memory it keeps between calls: a host backend's (CPU). A device backend overrides it with its
  // own kernels (CUDA: bf16 gradients straight from the loss kernel).
  virtual void do_linear_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dy, Tensor& dW, Tensor& dbias,
                                   const Tensor& y, const Tensor& W, const Tensor& bias, const Tensor& x,
                                   const Tensor& z, const Tensor& alpha, const Tensor& dalpha, const Tensor& weight);
  // The chunk rows when none are set: the backend's (rows of about a fixed number of bytes of logits).
  virtual int64_t default_vocab_chunk_rows(int64_t V, DType dt) const;
  virtual void do_kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student,
                          const Tensor& teacher, const Tensor& weight) = 0;
  virtual void do_gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales,
                                      double inverse_tau, const Philox& noise) = 0;
  virtual void do_diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep,
                                 const Tensor& sigma, const DiffusionStepArgs& a) = 0;
  virtual double do_sum_squares(const Tensor& x) = 0;
  virtual std::vector<double> do_sum_squares_chunks(const Tensor& x) = 0;
  virtual void do_scale(Tensor& x, double s) = 0;
  virtual void do_adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) = 0;
  virtual void do_ema_update(Tensor& shadow, const Tensor& params, double decay) = 0;

 private:
  void notify(const OpCall& call) { if (observer_) observer_->after(call); }
 protected:
  bool observed() const { return observer_ != nullptr; }

 private:
  void check_rotary_scratch(const char* where, const Tensor& qkv, int n_heads, const Tensor& rotated) const;
  // Before an op reads W through a GEMM: its working copy's state, the copy made first when it is stale.
  WeightCopy prepare_weights(const Tensor& W);
  // After an op wrote t (not AdamW's own update): the working copies of what it overlaps are stale.
  void weights_written(const Tensor& t);
  OpObserver* observer_ = nullptr;
  int64_t vocab_chunk_rows_ = 0;
  std::vector<double> head_scratch_;  // the default linear_loss_head's chunk buffers (doubles: aligned for F64)
};

// Holds Ops::begin_frozen_weights for its lifetime.
class FrozenWeights {
 public:
  FrozenWeights(Ops& ops, const void* weights, size_t bytes) : ops_(ops), weights_(weights) {
    ops_.begin_frozen_weights(weights, bytes);
  }
  ~FrozenWeights() { ops_.end_frozen_weights(weights_); }
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;

 private:
  Ops& ops_;
  const void* weights_;
};

}  // namespace duo
