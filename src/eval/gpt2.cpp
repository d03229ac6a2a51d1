#include "eval/gpt2.h"
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include "core/error.h"
#include "io/weights.h"

namespace duo {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The ops' LayerNorm has eps fixed at 1e-5 (PyTorch's default, and every released GPT-2's).
constexpr double kOpsLayerNormEps = 1e-5;

void GPT2Config::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* field) {
    DUO_CHECK(v > 0, where, str("'", field, "' must be positive, got ", v), "check the GPT-2 config.json");
  };
  positive(vocab_size, "vocab_size");
  positive(n_positions, "n_positions");
  positive(n_embd, "n_embd");
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_inner, "n_inner");
  DUO_CHECK(n_embd % n_head == 0, where, str("n_embd ", n_embd, " is not a multiple of n_head ", n_head),
            "check the GPT-2 config.json");
  DUO_CHECK(vocab_size < (int64_t(1) << 31), where, "vocab_size does not fit 32-bit token ids", "");
  DUO_CHECK(std::fabs(layer_norm_epsilon - kOpsLayerNormEps) <= 1e-12, where,
            str("layer_norm_epsilon ", layer_norm_epsilon, " is not supported"),
            "the ops' LayerNorm uses eps = 1e-5, as every released GPT-2 does");
}

GPT2Config read_gpt2_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open", "a Hugging Face GPT-2 folder holds config.json and model.safetensors");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double
    fail(path, str("not valid JSON (", e.what(), ")"), "re-download the GPT-2 model folder");
  }
  if (!j.is_object()) fail(path, "not a JSON object", "re-download the GPT-2 model folder");
  const char* hint = "expected a Hugging Face GPT-2 config.json (gpt2, gpt2-medium, gpt2-large, gpt2-xl)";

  auto integer = [&](const char* key) -> int64_t {
    if (!j.contains(key)) fail(path, str("has no '", key, "'"), hint);
    if (!j[key].is_number_integer()) fail(path, str("'", key, "' must be an integer, got ", j[key].dump()), hint);
    return j[key].get<int64_t>();
  };
  // A setting this model does not implement must keep the value that matches our math (or be absent).
  auto require = [&](const char* key, const json& wanted) {
    if (j.contains(key) && j[key] != wanted)
      fail(path, str("'", key, "' is ", j[key].dump(), "; only ", wanted.dump(), " is supported"), hint);
  };

  if (j.contains("model_type") && j["model_type"] != "gpt2")
    fail(path, str("model_type is ", j["model_type"].dump(), ", not \"gpt2\""), hint);
  GPT2Config c;
  c.n_embd = integer("n_embd");
  c.n_layer = integer("n_layer");
  c.n_head = integer("n_head");
  c.n_positions = integer("n_positions");
  c.vocab_size = integer("vocab_size");
  c.n_inner = 4 * c.n_embd;
  if (j.contains("n_inner") && !j["n_inner"].is_null()) c.n_inner = integer("n_inner");
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number()) fail(path, "'layer_norm_epsilon' must be a number", hint);
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
  }
  // gelu_new / gelu_pytorch_tanh are the tanh approximation the ops implement; exact "gelu" is not.
  if (j.contains("activation_function") && j["activation_function"] != "gelu_new" &&
      j["activation_function"] != "gelu_pytorch_tanh")
    fail(path, str("activation_function ", j["activation_function"].dump(), " is not supported"),
         "the ops implement the tanh GELU (HF \"gelu_new\"), which every released GPT-2 uses");
  require("scale_attn_weights", true);
  require("scale_attn_by_inverse_layer_idx", false);
  c.validate(path);
  return c;
}

std::unique_ptr<GPT2> load_gpt2(Ops& ops, const std::string& folder, int64_t max_batch) {
  const GPT2Config cfg = read_gpt2_config((fs::path(folder) / "config.json").string());
  const SafeTensorsFile weights = SafeTensorsFile::open((fs::path(folder) / "model.safetensors").string());
  return std::make_unique<GPT2>(ops, cfg, weights, max_batch);
}

GPT2::GPT2(Ops& ops, const GPT2Config& cfg, const SafeTensorsFile& weights, int64_t max_batch)
    : cfg_(cfg), ops_(ops), max_batch_(max_batch) {
  cfg_.validate("GPT2");
  DUO_CHECK(max_batch >= 1, "GPT2", str("max_batch must be positive, got ", max_batch), "");
  load(weights);
  plan_activations();
}

// ---- weights ---------------------------------------------------------------------------------------------

namespace {

// One tensor to load: its HF name (without prefix), the shape in the file, and whether it is a Conv1D
// weight stored [in, out] that we keep [out, in].
struct WeightSpec {
  std::string name;
  std::vector<int64_t> file_shape;
  bool conv1d;
  Tensor* dst;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

void GPT2::load(const SafeTensorsFile& file) {
  const std::string& path = file.path();
  const int64_t V = cfg_.vocab_size, T = cfg_.n_positions, d = cfg_.n_embd, M = cfg_.n_inner;

  // HF GPT2Model files use bare names; GPT2LMHeadModel files prefix them with "transformer.".
  std::string prefix;
  if (file.has("wte.weight")) prefix = "";
  else if (file.has("transformer.wte.weight")) prefix = "transformer.";
  else
    fail(path, "has neither 'wte.weight' nor 'transformer.wte.weight'",
         "expected the model.safetensors of a Hugging Face GPT-2 (e.g. gpt2-large); `duo-inspect` lists the file");

  layers_.resize((size_t)cfg_.n_layer);
  std::vector<WeightSpec> specs = {{"wte.weight", {V, d}, false, &wte_}, {"wpe.weight", {T, d}, false, &wpe_}};
  for (int64_t i = 0; i < cfg_.n_layer; ++i) {
    GPT2Layer& l = layers_[(size_t)i];
    const std::string p = str("h.", i, ".");
    specs.push_back({p + "ln_1.weight", {d}, false, &l.ln1_w});
    specs.push_back({p + "ln_1.bias", {d}, false, &l.ln1_b});
    specs.push_back({p + "attn.c_attn.weight", {d, 3 * d}, true, &l.qkv_w});
    specs.push_back({p + "attn.c_attn.bias", {3 * d}, false, &l.qkv_b});
    specs.push_back({p + "attn.c_proj.weight", {d, d}, true, &l.proj_w});
    specs.push_back({p + "attn.c_proj.bias", {d}, false, &l.proj_b});
    specs.push_back({p + "ln_2.weight", {d}, false, &l.ln2_w});
    specs.push_back({p + "ln_2.bias", {d}, false, &l.ln2_b});
    specs.push_back({p + "mlp.c_fc.weight", {d, M}, true, &l.fc_w});
    specs.push_back({p + "mlp.c_fc.bias", {M}, false, &l.fc_b});
    specs.push_back({p + "mlp.c_proj.weight", {M, d}, true, &l.out_w});
    specs.push_back({p + "mlp.c_proj.bias", {d}, false, &l.out_b});
  }
  specs.push_back({"ln_f.weight", {d}, false, &lnf_w_});
  specs.push_back({"ln_f.bias", {d}, false, &lnf_b_});

  // Every tensor of the file must be one we load or one we knowingly ignore: anything else means the
  // config and the weights disagree (e.g. more layers) or the file is another architecture.
  std::set<std::string> wanted;
  for (const WeightSpec& s : specs) wanted.insert(prefix + s.name);
  for (const StTensor& t : file.tensors()) {
    if (wanted.count(t.name) || ends_with(t.name, ".attn.bias") || ends_with(t.name, ".attn.masked_bias") ||
        t.name == "lm_head.weight")  // tied to wte in every GPT-2; the head uses wte
      continue;
    fail(path, str("tensor '", t.name, "' is not part of a GPT-2 with n_layer ", cfg_.n_layer),
         "config.json does not match model.safetensors (or the file is not a GPT-2); use the folder's own config");
  }

  // Shapes and dtypes first, so a bad file fails before any device memory is touched.
  int64_t total = 0;
  for (const WeightSpec& s : specs) {
    const StTensor& t = file.get(prefix + s.name);
    DUO_CHECK(t.dtype == DType::F32, path,
              str("tensor '", t.name, "' has dtype ", dtype_name(t.dtype), ", expected F32"),
              "the GPT-2 scorer loads float32 weights (the Hugging Face gpt2* releases are F32)");
    file.get(prefix + s.name, DType::F32, s.file_shape);  // throws, showing both shapes, on a mismatch
    total += t.numel();
  }

  params_.ops = &ops_;
  params_.ptr = ops_.alloc((size_t)total * sizeof(float));
  int64_t offset = 0;
  std::vector<float> host, transposed;
  for (const WeightSpec& s : specs) {
    const StTensor& t = file.get(prefix + s.name);
    host.resize((size_t)t.numel());
    std::memcpy(host.data(), t.data, t.nbytes);  // memcpy: file offsets need not be float-aligned
    check_finite(host.data(), t.numel(), t.name, path);  // a NaN weight would make every Gen PPL NaN
    Tensor& dst = *s.dst;
    float* where = static_cast<float*>(params_.ptr) + offset;
    if (s.conv1d) {  // [in, out] -> [out, in]
      const int64_t I = s.file_shape[0], O = s.file_shape[1];
      transposed.resize(host.size());
      for (int64_t i = 0; i < I; ++i)
        for (int64_t o = 0; o < O; ++o) transposed[(size_t)(o * I + i)] = host[(size_t)(i * O + o)];
      dst = Tensor(where, DType::F32, {O, I}, ops_.device());
      ops_.from_host(dst, transposed.data());
    } else {
      dst = s.file_shape.size() == 2 ? Tensor(where, DType::F32, {s.file_shape[0], s.file_shape[1]}, ops_.device())
                                     : Tensor(where, DType::F32, {s.file_shape[0]}, ops_.device());
      ops_.from_host(dst, host.data());
    }
    offset += t.numel();
  }
}

// ---- activations -----------------------------------------------------------------------------------------

void GPT2::plan_activations() {
  const int64_t T = cfg_.n_positions, R = max_batch_ * T, d = cfg_.n_embd, M = cfg_.n_inner;
  const int64_t H = cfg_.n_head, V = cfg_.vocab_size;
  auto f32 = [&](int64_t n, const char* what) { return arena_.reserve((size_t)n * sizeof(float), what); };
  auto i32 = [&](int64_t n, const char* what) { return arena_.reserve((size_t)n * sizeof(int32_t), what); };
  ids_ = i32(R, "ids");
  pos_ = i32(R, "positions");
  targets_ = i32(T, "targets (one chunk)");
  h_ = f32(R * d, "residual");
  ln_ = f32(R * d, "layernorm");
  mean_ = f32(R, "layernorm mean");
  rstd_ = f32(R, "layernorm rstd");
  qkv_ = f32(R * 3 * d, "qkv");
  att_ = f32(R * d, "attention");
  lse_ = f32(max_batch_ * H * T, "attention lse");
  branch_ = f32(R * d, "branch");
  fc_ = f32(R * M, "mlp fc");
  gelu_ = f32(R * M, "mlp gelu");
  lnf_ = f32(R * d, "final layernorm");
  zeros_ = f32(d, "zero scale");
  logits_ = f32(T * V, "logits (one chunk)");
  losses_ = f32(T, "losses (one chunk)");
  Ops* ops = &ops_;
  arena_.allocate([ops](size_t n) { return ops->alloc(n); }, [ops](void* p) { ops->release(p); });
  Tensor zeros = act(zeros_, DType::F32, {d});
  ops_.fill(zeros, 0.0);
}

Tensor GPT2::act(size_t offset, DType dtype, std::initializer_list<int64_t> dims) const {
  Tensor t = arena_.tensor(offset, dtype, dims);
  t.device = ops_.device();
  return t;
}

void GPT2::layernorm(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, int64_t B) {
  // The ops' LayerNorm+modulate computes (norm(x)·w)·(1 + scale[b]) + shift[b]: a bias is a shift that is
  // the same for every sequence (row stride 0), with a zero scale.
  const int64_t d = cfg_.n_embd, rows = x.numel() / d;
  Tensor shift = b.view({1, d}), scale = act(zeros_, DType::F32, {1, d});
  shift.shape[0] = scale.shape[0] = B;
  shift.stride[0] = scale.stride[0] = 0;
  Tensor mean = act(mean_, DType::F32, {rows}), rstd = act(rstd_, DType::F32, {rows});
  ops_.layernorm_modulate(out, mean, rstd, x, w, shift, scale);
}

// ---- forward ---------------------------------------------------------------------------------------------

void GPT2::forward(std::span<const int32_t> ids, int64_t B, int64_t N) {
  const int64_t d = cfg_.n_embd, M = cfg_.n_inner, R = B * N;
  const int H = (int)cfg_.n_head;
  DUO_CHECK(B >= 1 && B <= max_batch_ && N >= 1 && N <= cfg_.n_positions, "GPT2",
            str("batch ", B, " x length ", N, " exceeds the planned ", max_batch_, " x ", cfg_.n_positions),
            "score at most max_batch sequences of at most n_positions tokens per call (chunk longer ones)");
  DUO_CHECK((int64_t)ids.size() == R, "GPT2", str("got ", ids.size(), " ids for a (", B, ", ", N, ") batch"), "");
  std::vector<int32_t> pos((size_t)R);
  for (int64_t r = 0; r < R; ++r) {
    DUO_CHECK(ids[(size_t)r] >= 0 && ids[(size_t)r] < cfg_.vocab_size, "GPT2",
              str("token id ", ids[(size_t)r], " at (", r / N, ", ", r % N, ") is outside the vocabulary [0, ",
                  cfg_.vocab_size, ")"),
              "the samples must be re-tokenised with the scorer's own (GPT-2) tokenizer");
    pos[(size_t)r] = (int32_t)(r % N);
  }
  Ops& o = ops_;
  Tensor none;
  const Philox no_dropout{};

  // h = wte[ids] + wpe[positions]                                            (B, N, d)
  Tensor ids_t = act(ids_, DType::I32, {R}), pos_t = act(pos_, DType::I32, {R});
  o.from_host(ids_t, ids.data());
  o.from_host(pos_t, pos.data());
  Tensor h = act(h_, DType::F32, {B, N, d}), branch = act(branch_, DType::F32, {B, N, d});
  Tensor h2 = h.view({R, d}), branch2 = branch.view({R, d});
  o.embed_ids(h2, ids_t, wte_);
  o.embed_ids(branch2, pos_t, wpe_);
  o.gated_residual(h, branch, none, 0.0f, no_dropout);  // h += branch

  Tensor ln = act(ln_, DType::F32, {B, N, d}), qkv = act(qkv_, DType::F32, {B, N, 3 * d});
  Tensor att = act(att_, DType::F32, {B, N, d}), lse = act(lse_, DType::F32, {B, (int64_t)H, N});
  Tensor fc = act(fc_, DType::F32, {R, M}), gelu = act(gelu_, DType::F32, {R, M});
  for (const GPT2Layer& l : layers_) {
    // h += c_proj(attention_causal(c_attn(LN_1 h)))
    layernorm(ln, h, l.ln1_w, l.ln1_b, B);
    o.linear(qkv, ln, l.qkv_w, l.qkv_b);       // (B, N, 3d) = [q|k|v][head][dim], as the op expects
    o.attention(att, lse, qkv, H, /*causal=*/true);
    o.linear(branch, att, l.proj_w, l.proj_b);
    o.gated_residual(h, branch, none, 0.0f, no_dropout);
    // h += mlp.c_proj(gelu_tanh(mlp.c_fc(LN_2 h)))
    layernorm(ln, h, l.ln2_w, l.ln2_b, B);
    o.linear(fc, ln, l.fc_w, l.fc_b);          // (R, n_inner)
    o.gelu(gelu, fc);
    o.linear(branch, gelu, l.out_w, l.out_b);  // (R, d)
    o.gated_residual(h, branch, none, 0.0f, no_dropout);
  }
  Tensor lnf = act(lnf_, DType::F32, {B, N, d});
  layernorm(lnf, h, lnf_w_, lnf_b_, B);
}

void GPT2::logits(std::span<const int32_t> ids, int64_t B, int64_t N, std::vector<float>& out) {
  forward(ids, B, N);
  const int64_t d = cfg_.n_embd, V = cfg_.vocab_size, R = B * N, T = cfg_.n_positions;
  Tensor lnf = act(lnf_, DType::F32, {R, d}), none;
  out.resize((size_t)(R * V));
  for (int64_t r0 = 0; r0 < R; r0 += T) {  // the LM head, n_positions rows at a time
    const int64_t n = std::min(T, R - r0);
    Tensor logits = act(logits_, DType::F32, {n, V});
    ops_.linear(logits, lnf.rows(r0, n), wte_, none);  // tied head: logits = LN_f(h) · wteᵀ
    ops_.to_host(out.data() + r0 * V, logits);
  }
}

void GPT2::target_nll(std::span<const int32_t> ids, std::span<const int64_t> lengths, int64_t B, int64_t N,
                      std::vector<float>& nll) {
  DUO_CHECK((int64_t)lengths.size() == B, "GPT2", str("got ", lengths.size(), " lengths for a batch of ", B), "");
  for (int64_t b = 0; b < B; ++b)
    DUO_CHECK(lengths[(size_t)b] >= 0 && lengths[(size_t)b] <= N, "GPT2",
              str("length ", lengths[(size_t)b], " of row ", b, " is outside [0, ", N, "]"), "");
  forward(ids, B, N);
  const int64_t d = cfg_.n_embd, V = cfg_.vocab_size;
  Tensor lnf = act(lnf_, DType::F32, {B * N, d}), none;
  nll.assign((size_t)(B * (N - 1)), 0.0f);
  std::vector<int32_t> targets((size_t)N);
  std::vector<float> losses((size_t)N);
  // The LM head one sequence at a time (N <= n_positions rows). Row j predicts ids[j+1]; rows from
  // lengths[b] on have padding in their context and are skipped (their nll stays 0).
  for (int64_t b = 0; b < B; ++b) {
    const int64_t keep = std::min(lengths[(size_t)b], N - 1);  // rows j < keep are reported
    if (keep == 0) continue;
    for (int64_t j = 0; j < keep; ++j) targets[(size_t)j] = ids[(size_t)(b * N + j + 1)];
    Tensor logits = act(logits_, DType::F32, {keep, V}), loss = act(losses_, DType::F32, {keep});
    Tensor tgt = act(targets_, DType::I32, {keep});
    ops_.from_host(tgt, targets.data());
    ops_.linear(logits, lnf.rows(b * N, keep), wte_, none);
    ops_.cross_entropy(loss, none, logits, tgt, 0.0);
    ops_.to_host(losses.data(), loss);
    for (int64_t j = 0; j < keep; ++j) nll[(size_t)(b * (N - 1) + j)] = losses[(size_t)j];
  }
}

}  // namespace duo
