// GPT-2 for inference over the ops interface: the generative-perplexity scorer (gpt2-large in the paper).
//
//   h = wte[ids] + wpe[positions]                              (B, N, d)
//   per layer:  h += c_proj(attn_causal(c_attn(LN_1 h)))       c_attn d -> 3d ([q|k|v][head][dim]), c_proj d -> d
//               h += mlp.c_proj(gelu_tanh(mlp.c_fc(LN_2 h)))   d -> 4d -> d
//   logits = LN_f(h) · wteᵀ                                    (B, N, V), tied LM head
// LayerNorms have weight and bias (eps 1e-5); every projection has a bias; no rotary, no dropout.
//
// Weights come from a Hugging Face GPT-2 folder: config.json + model.safetensors, F32, names bare
// (`wte.weight`, `h.0.attn.c_attn.weight`, …) or prefixed (`transformer.wte.weight`, …). HF stores the
// projections as Conv1D weights [in, out]; they are transposed to our [out, in] at load. The causal-mask
// buffers (`h.{i}.attn.bias`, `h.{i}.attn.masked_bias`) and a tied `lm_head.weight` are ignored.
//
// Memory: one device allocation for the parameters, one for the activations of (max_batch, n_positions).
// The LM head runs n_positions rows at a time, so the logits buffer is (n_positions, V) whatever the batch
// (206 MB for gpt2-large instead of 1.6 GB for a batch of 8).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include "backend/device_buffer.h"
#include "backend/ops.h"
#include "core/arena.h"
#include "eval/scorer.h"
#include "io/safetensors.h"

namespace duo {

struct GPT2Config {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;  // context: learned position embeddings
  int64_t n_embd = 768;        // d
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_inner = 3072;      // MLP width (HF: null means 4 d)
  double layer_norm_epsilon = 1e-5;

  int64_t head_dim() const { return n_embd / n_head; }
  // Throws duo::Error naming `where` and the field when the sizes do not fit together.
  void validate(const std::string& where) const;
};

// Reads a Hugging Face GPT-2 config.json: n_embd, n_layer, n_head, n_positions, vocab_size required;
// n_inner (null = 4 n_embd), layer_norm_epsilon (must be 1e-5, the ops' LayerNorm), activation_function (must
// be a tanh GELU), model_type (gpt2) optional. Settings that change the math and that this model does not
// implement (scale_attn_by_inverse_layer_idx, scale_attn_weights = false) are errors naming the field.
GPT2Config read_gpt2_config(const std::string& path);

// The parameters of one block, as device views in our [out, in] layout.
struct GPT2Layer {
  Tensor ln1_w, ln1_b;    // (d)
  Tensor qkv_w, qkv_b;    // (3d, d), (3d)   attn.c_attn
  Tensor proj_w, proj_b;  // (d, d), (d)     attn.c_proj
  Tensor ln2_w, ln2_b;    // (d)
  Tensor fc_w, fc_b;      // (n_inner, d), (n_inner)   mlp.c_fc
  Tensor out_w, out_b;    // (d, n_inner), (d)         mlp.c_proj
};

class GPT2 final : public Scorer {
 public:
  // Copies the weights to the device; activations are planned for (max_batch, n_positions). See load_gpt2
  // for a Hugging Face folder.
  GPT2(Ops& ops, const GPT2Config& cfg, const SafeTensorsFile& weights, int64_t max_batch);
  GPT2(const GPT2&) = delete;
  GPT2& operator=(const GPT2&) = delete;
  ~GPT2() override = default;

  const GPT2Config& config() const { return cfg_; }
  std::string memory_plan() const { return arena_.plan(); }

  // Scorer
  std::string name() const override { return "gpt2"; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t context() const override { return cfg_.n_positions; }
  int64_t max_batch() const override { return max_batch_; }
  void target_nll(std::span<const int32_t> ids, std::span<const int64_t> lengths, int64_t B, int64_t N,
                  std::vector<float>& nll) override;

  // Logits (B, N, V) of ids (B, N), copied to the host (for tests and inspection; the scorer path never
  // materialises them all).
  void logits(std::span<const int32_t> ids, int64_t B, int64_t N, std::vector<float>& out);

 private:
  void load(const SafeTensorsFile& weights);
  void plan_activations();
  Tensor act(size_t offset, DType dtype, std::initializer_list<int64_t> dims) const;
  // Runs the transformer; leaves LN_f(h) in the activation `lnf_` (B, N, d).
  void forward(std::span<const int32_t> ids, int64_t B, int64_t N);
  // LayerNorm with weight and bias over (B, N, d) rows.
  void layernorm(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, int64_t B);

  GPT2Config cfg_;
  Ops& ops_;
  int64_t max_batch_;
  DeviceBuffer params_;  // one device buffer holding every parameter
  Tensor wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<GPT2Layer> layers_;
  Arena arena_;
  // activation offsets; R = max_batch * n_positions rows
  size_t ids_, pos_, targets_;   // I32 (R)
  size_t h_, ln_, mean_, rstd_;  // (R, d), (R, d), (R), (R)
  size_t qkv_, att_, lse_;       // (R, 3d), (R, d), (B, H, n_positions)
  size_t branch_;                // (R, d) attention or MLP branch output before the residual add
  size_t fc_, gelu_;             // (R, n_inner)
  size_t lnf_;                   // (R, d) final LayerNorm output
  size_t zeros_;                 // (d) zeros: the "scale" of a LayerNorm with bias
  size_t logits_, losses_;       // (n_positions, V), (n_positions): the LM head, one chunk of rows at a time
};

// Loads a Hugging Face GPT-2 folder: `<folder>/config.json`, then `<folder>/model.safetensors`.
std::unique_ptr<GPT2> load_gpt2(Ops& ops, const std::string& folder, int64_t max_batch);

}  // namespace duo
