// The DiT of the reference (docs/model.md): forward and backward written once over the ops interface,
// for both variants (adaLN-conditioned bidirectional, and causal AR without conditioning).
//
//   h = embed(x)                                          (B, L, D)   ids, soft softmax(w)·E, or weighted bag
//   c = SiLU(MLP(sinusoid(σ)))                            (B, cond)   not in the causal model
//   per block:  (shift, scale, gate) x2 = adaLN(c)        (B, 6D)
//               h += gate_msa · drop(W_o attn(rope(W_qkv mod(LN1 h))))
//               h += gate_mlp · drop(W_2 gelu(W_1 mod(LN2 h) + b_1) + b_2)
//   logits = W_out mod(LN_f h) + b_out                    (B, L, V)
//
// Parameters and gradients are buffers laid out by the ParamTable and owned by the caller (the trainer keeps
// params, grads, Adam moments and EMA in that one layout). Activations live in one allocation made at
// construction for the largest batch and length.
#pragma once
#include <functional>
#include <vector>
#include "backend/ops.h"
#include "core/arena.h"
#include "model/dit_tensors.h"
#include "model/params.h"

namespace duo {

struct DiTOptions {
  int64_t max_batch = 1;
  int64_t max_length = 0;   // 0 = the config's length
  bool training = true;     // keep per-block activations for backward (false: inference, much less memory)
  bool soft_input = false;  // allow the soft (B, L, V) input (DUO curriculum); reserves the softmax copy
  int64_t bag_k = 0;        // allow the weighted-bag input with k ids per position (efficient curriculum)
  DType dtype = DType::F32; // parameters and activations (F64 for gradient checks on the CPU backend)
  bool full_logits = true;  // reserve the (B, L, V) logits forward() returns; false: only forward_features() (a loss
                            // head fused with the output layer, Ops::linear_loss_head, never needs them)
};

// The output layer logits = W y + b (W (V, D), b (V)) and its gradient buffers (empty without gradients).
struct OutputLayer {
  Tensor w, b, dw, db;
};

// DUO's curriculum input drawn by the backend (Ops::embed_relaxed): the soft input softmax(w/τ) of the Gaussian
// relaxation w of the clean ids x, whose (B, L, V) logits never exist outside the op.
struct RelaxedInput {
  Tensor x;                 // (B, L) I32 clean ids
  Tensor scales;            // (B, 2) F64 (α̃, σ̃) of each sequence
  Tensor z;                 // (B·L) I32, written: the latent z_t = argmax w
  double inverse_tau = 1;   // 1/τ
  Philox noise;             // ε's stream
};

// One of four input kinds, plus σ. Tensors are views; they must stay alive until backward().
struct DiTInput {
  Tensor ids;          // (B, L) I32
  Tensor soft_logits;  // (B, L, V): the embedding takes softmax over V
  RelaxedInput relaxed;  // present when relaxed.x is: the soft input drawn inside the embedding
  Tensor bag_ids;      // (B, L, k) I32
  Tensor bag_weights;  // (B, L, k)
  Tensor sigma;        // (B): conditioning σ = -log α_t; unused by the causal model
};

class DiT {
 public:
  DiT(const ModelConfig& cfg, Ops& ops, const DiTOptions& opt);
  DiT(const DiT&) = delete;
  DiT& operator=(const DiT&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  const DiTOptions& options() const { return opt_; }
  // Points the model at its parameter buffer and (for training) its gradient buffer (may be null).
  void bind(void* params, void* grads);
  const void* params() const { return params_; }
  size_t param_bytes() const { return (size_t)table_.total() * dtype_size(opt_.dtype); }
  // Fills the bound parameters as the reference initialises them (docs/model.md §10), from a seeded Philox stream.
  void init_parameters(uint64_t seed);

  // logits (B, L, V), a view into activation memory valid until the next forward. `train` turns dropout on;
  // dropout draws from stream `dropout_rng` (one per step: the model derives a sub-stream per block/branch).
  Tensor forward(const DiTInput& in, int64_t B, int64_t L, bool train, const Philox& dropout_rng);
  // Backpropagates dlogits (B, L, V) through the last forward; parameter gradients accumulate (+=).
  void backward(const Tensor& dlogits);

  // The forward without its output layer: the final layer's modulated LayerNorm y (B, L, D), the output layer's
  // input, for a loss head fused with that layer (Ops::linear_loss_head). Valid until the next forward.
  Tensor forward_features(const DiTInput& in, int64_t B, int64_t L, bool train, const Philox& dropout_rng);
  OutputLayer output_layer() const { return {P_.out_w, P_.out_b, G_.out_w, G_.out_b}; }
  // Where dL/dy (B·L, D) of the last forward goes (a buffer of the model's), and the backward from it: parameter
  // gradients accumulate (+=); the output layer's own gradient is the fused head's business.
  Tensor features_grad() const;
  void backward_features(const Tensor& dy);
  // The parameter ranges whose gradients a backward completes one after the other, in that order: the output layer,
  // block n−1, …, block 0, then the input (the embedding and the time conditioning). Adjacent, in descending order,
  // together [0, table().total()): a data-parallel run sums them over the ranks bucket by bucket while the backward
  // goes on (train/grad_buckets.h).
  std::vector<ParamRange> gradient_groups() const;
  // Called on the host, with the group's index, as soon as a backward has issued the last op that writes that
  // group's gradient (every group, in order, in each backward); empty (the default): nothing is called.
  void on_gradient_group_done(std::function<void(size_t)> f) { group_done_ = std::move(f); }
  // Memory plan of the activations (printed at start-up by the executables).
  std::string memory_plan(size_t max_lines = 8) const { return arena_.plan(max_lines); }
  size_t activation_bytes() const { return arena_.bytes(); }

 private:
  // Offsets (into arena_) of one block's saved activations; with training == false all blocks share one set.
  struct BlockActs {
    // ln1, qkv, att, proj, ln2, f1, g and f2, which only GEMMs, GELU, attention and the gated residual read, are in
    // the backend's activation dtype (operand()), as are the rotary scratch and the gradients that only GEMMs,
    // LayerNorm and the attention's backward read (dqkv, datt, dproj, df1, df2, dln).
    size_t ln1, mean1, rstd1;    // (B, L, D), (B*L), (B*L)
    size_t qkv;                  // (B, L, 3D) the qkv layer's output (rotary_attention rotates q and k itself)
    size_t att, lse;             // (B, L, D), (B, H, L)
    size_t proj;                 // (B, L, D) attention branch before gate and dropout
    size_t x_mid;                // (B, L, D) residual stream between the two branches
    size_t ln2, mean2, rstd2;
    size_t f1, g;                // (B, L, 4D) MLP pre- and post-GELU
    size_t f2;                   // (B, L, D) MLP branch before gate and dropout
  };
  Tensor act(size_t off, std::initializer_list<int64_t> dims) const;
  // The same for the activations kept in the backend's activation dtype (Ops::activation_dtype: bf16 on CUDA).
  Tensor operand(size_t off, std::initializer_list<int64_t> dims) const;
  void plan_activations();

  ModelConfig cfg_;
  ParamTable table_;
  Ops& ops_;
  DiTOptions opt_;
  DiTTensors P_, G_;  // parameter and gradient views
  void* params_ = nullptr;
  bool has_grads_ = false;
  Arena arena_;
  std::function<void(size_t)> group_done_;
  void group_done(size_t g) const {
    if (group_done_) group_done_(g);
  }
  // saved by forward for backward
  DiTInput in_;
  int64_t B_ = 0, L_ = 0;
  bool train_ = false, forward_done_ = false;
  Philox rng_;
  // activation offsets
  std::vector<BlockActs> blocks_;
  std::vector<size_t> xs_;  // residual stream entering block i (xs_[n_blocks] enters the final layer)
  std::vector<size_t> mods_;  // block i's (B, 6D) adaLN output: shift, scale, gate (attention), then (MLP)
  size_t tfreq_, c1_, c1a_, c2_, c_;  // time conditioning (B, F), (B, cond) x4
  size_t soft_probs_ = 0;             // (B, L, V) softmax of the soft input
  size_t modf_, y_, meanf_, rstdf_, logits_;
  size_t rotated_ = 0;  // (B, L, 3D) rotary_attention's scratch for rotary(qkv), planned when the backend uses it
  bool rotary_scratch_ = true;
  // The scratch as rotary_attention takes it for (B, L): the planned one, or empty (the backend uses none).
  Tensor rotary_scratch(int64_t B, int64_t L) const;
  // backward scratch (drotated_: rotary_attention_backward's, the gradient at rotary(qkv), in the floats' dtype)
  size_t dh_, dy_, dln_, drotated_, dqkv_, datt_, dproj_, df1_, df2_, dmod_, dc_, dc2_, dc1a_, dc1_;
};

}  // namespace duo
