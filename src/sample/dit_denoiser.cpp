// The DiT adapters of the samplers and of the Gen-PPL scorer: see dit_denoiser.h.
#include "sample/dit_denoiser.h"

#include <algorithm>
#include <cmath>
#include "algo/loss_sedd.h"

namespace duo {

namespace {

constexpr float kNegInf = -1e6f;  // the reference's `neg_infinity` (a large finite number, not -inf)

// Row-wise log-softmax in place; the sum of exponentials in float64 (V may be 50k).
void log_softmax_inplace(float* o, int64_t V) {
  const float mx = *std::max_element(o, o + V);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp((double)(o[v] - mx));
  const float lse = mx + (float)std::log(sum);
  for (int64_t v = 0; v < V; ++v) o[v] -= lse;
}

// The chunks [b0, b0 + nb) of a batch of B that fit the model's planned batch.
template <class F>
void for_each_chunk(int64_t B, int64_t max_batch, F&& f) {
  for (int64_t b0 = 0; b0 < B; b0 += max_batch) f(b0, std::min(max_batch, B - b0));
}

}  // namespace

// ---- DiTRunner ----

DiTRunner::DiTRunner(DiT& model, Ops& ops) : model_(model), ops_(ops) {
  DUO_CHECK(!model.options().training, "sampling", "the model was built for training",
            "build the DiT with DiTOptions::training = false for inference");
  const int64_t N = max_batch() * max_length();
  ids_ = ws_.reserve((size_t)N * 4, "input ids");
  sigma_ = ws_.reserve((size_t)max_batch() * dtype_size(model.options().dtype), "sigma");
  Ops* p = &ops_;
  ws_.allocate([p](size_t n) { return p->alloc(n); }, [p](void* q) { p->release(q); });
}

Tensor DiTRunner::forward(const int32_t* ids, int64_t B, int64_t L, const double* sigma) {
  DUO_ASSERT(B >= 1 && B <= max_batch() && L >= 1 && L <= max_length());
  const DType dt = model_.options().dtype;
  Tensor tids(ws_.at(ids_), DType::I32, {B, L}, ops_.device());
  ops_.from_host(tids, ids);
  DiTInput in;
  in.ids = tids;
  if (!config().causal) {
    Tensor ts(ws_.at(sigma_), dt, {B}, ops_.device());
    std::vector<double> s((size_t)B, 0.0);
    if (sigma) std::copy(sigma, sigma + B, s.begin());
    if (dt == DType::F64) {
      ops_.from_host(ts, s.data());
    } else {
      std::vector<float> f(s.begin(), s.end());
      ops_.from_host(ts, f.data());
    }
    in.sigma = ts;
  }
  return model_.forward(in, B, L, /*train=*/false, Philox{0, 0});
}

void DiTRunner::to_host(const Tensor& logits, float* out) {
  if (logits.dtype == DType::F32) {
    ops_.to_host(out, logits);
    return;
  }
  staging_.resize((size_t)logits.numel());
  ops_.to_host(staging_.data(), logits);
  std::copy(staging_.begin(), staging_.end(), out);
}

void DiTRunner::row_to_host(const Tensor& logits, int64_t r, float* out) {
  const int64_t V = logits.dim(-1);
  Tensor row(static_cast<char*>(logits.data) + (size_t)(r * V) * dtype_size(logits.dtype), logits.dtype, {V},
             logits.device);
  to_host(row, out);
}

// ---- DiTDenoiser ----

void subs_row(float* o, int64_t V, int32_t mask_id, int32_t z) {
  if (z != mask_id) {  // carry-over: an unmasked token is kept with probability 1
    std::fill(o, o + V, kNegInf);
    o[z] = 0.0f;
    return;
  }
  o[mask_id] += kNegInf;
  log_softmax_inplace(o, V);
}

void sedd_log_score_row(float* o, int64_t V, double sigma, int32_t z) {
  const float shift = (float)(sedd_log_expm1(sigma) + std::log((double)(V - 1)));
  for (int64_t v = 0; v < V; ++v) o[v] -= shift;
  o[z] = 0.0f;
}

DiTDenoiser::DiTDenoiser(DiT& model, Ops& ops, DiffusionFamily family, int32_t mask_id)
    : runner_(model, ops), family_(family), mask_id_(mask_id) {
  const int64_t V = model.config().vocab_size;
  DUO_CHECK(!model.config().causal, "sampling", "a causal (AR) model cannot be a diffusion denoiser",
            "sample an AR checkpoint with --algo ar");
  if (family != DiffusionFamily::uniform)
    DUO_CHECK(mask_id >= 0 && mask_id < V, "sampling", str("mask id ", mask_id, " is outside the vocabulary of ", V),
              "absorbing models need the tokenizer's [MASK] id (checkpoint metadata mask_id)");
}

void DiTDenoiser::log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) {
  const int64_t V = vocab_size();
  for_each_chunk(B, runner_.max_batch(), [&](int64_t b0, int64_t nb) {
    // MDLM is not time-conditioned: the network sees sigma = 0 (the reference's _process_sigma).
    const double* s = family_ == DiffusionFamily::mdlm ? nullptr : sigma + b0;
    Tensor logits = runner_.forward(z + b0 * L, nb, L, s);
    float* o = out + b0 * L * V;
    runner_.to_host(logits, o);
    const int64_t rows = nb * L;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float* row = o + r * V;
      const int32_t zt = z[b0 * L + r];
      switch (family_) {
        case DiffusionFamily::uniform:
        case DiffusionFamily::d3pm: log_softmax_inplace(row, V); break;
        case DiffusionFamily::mdlm: subs_row(row, V, mask_id_, zt); break;
        case DiffusionFamily::sedd: sedd_log_score_row(row, V, sigma[b0 + r / L], zt); break;
      }
    }
  });
}

// ---- DiTCausalLM ----

DiTCausalLM::DiTCausalLM(DiT& model, Ops& ops) : runner_(model, ops) {
  DUO_CHECK(model.config().causal, "sampling", "the AR sampler needs a causal model",
            "this checkpoint is bidirectional: sample it with a diffusion --algo (duo_base, mdlm, sedd, d3pm)");
}

void DiTCausalLM::next_logits(const int32_t* z, int64_t B, int64_t L, int64_t n, float* out) {
  DUO_ASSERT(n >= 1 && n <= L);
  const int64_t V = vocab_size();
  for_each_chunk(B, runner_.max_batch(), [&](int64_t b0, int64_t nb) {
    prefix_.resize((size_t)(nb * n));  // rows have stride L in z; the model wants (nb, n) contiguous
    for (int64_t b = 0; b < nb; ++b) std::copy(z + (b0 + b) * L, z + (b0 + b) * L + n, prefix_.begin() + b * n);
    Tensor logits = runner_.forward(prefix_.data(), nb, n, nullptr);
    for (int64_t b = 0; b < nb; ++b) runner_.row_to_host(logits, b * n + n - 1, out + (b0 + b) * V);
  });
}

// ---- DiTScorer ----

DiTScorer::DiTScorer(DiT& model, Ops& ops, int32_t mask_id) : runner_(model, ops), mask_id_(mask_id) {
  DUO_CHECK(model.config().causal, "eval.gen_ppl_eval_model_name_or_path",
            "the Gen-PPL evaluator must be a causal language model", "give an AR checkpoint (or a GPT-2 folder)");
  DUO_CHECK(mask_id < model.config().vocab_size, "eval.gen_ppl_eval_model_name_or_path",
            str("mask id ", mask_id, " is outside the vocabulary"), "check the checkpoint's mask_id");
}

void DiTScorer::target_nll(std::span<const int32_t> ids_span, std::span<const int64_t> lengths, int64_t B,
                           int64_t N, std::vector<float>& nll) {
  const int64_t V = runner_.config().vocab_size;
  const int32_t* ids = ids_span.data();
  DUO_CHECK(N >= 2 && N <= context(), "gen_ppl", str("a row of ", N, " tokens"),
            str("the AR evaluator takes 2 .. ", context(), " tokens per row"));
  DUO_CHECK((int64_t)ids_span.size() == B * N && (int64_t)lengths.size() == B, "gen_ppl", "ids/lengths shape", "");
  nll.assign((size_t)(B * (N - 1)), 0.0f);
  for (int64_t i = 0; i < B * N; ++i)
    DUO_CHECK(ids[i] >= 0 && ids[i] < V, "gen_ppl", str("token id ", ids[i], " is outside the evaluator's vocabulary"),
              "re-tokenise the samples with the evaluator's tokenizer");
  for_each_chunk(B, runner_.max_batch(), [&](int64_t b0, int64_t nb) {
    Tensor logits = runner_.forward(ids + b0 * N, nb, N, nullptr);
    logits_.resize((size_t)(nb * N * V));
    runner_.to_host(logits, logits_.data());
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nb * (N - 1); ++r) {
      const int64_t b = r / (N - 1), j = r % (N - 1);
      float* row = logits_.data() + (b * N + j) * V;
      if (mask_id_ >= 0) row[mask_id_] = kNegInf;
      log_softmax_inplace(row, V);
      // Causal attention with right padding: the prediction at j < length sees only real tokens.
      if (j < lengths[b0 + b]) nll[(b0 + b) * (N - 1) + j] = -row[ids[(b0 + b) * N + j + 1]];
    }
  });
}

}  // namespace duo
