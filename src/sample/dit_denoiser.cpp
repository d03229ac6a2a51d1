// The DiT adapters of the samplers: see dit_denoiser.h.
#include "sample/dit_denoiser.h"

#include <algorithm>
#include <cmath>
#include "core/finite.h"
#include "core/simd.h"
#include "math/log_softmax_row.h"
#include "math/loss_sedd.h"

namespace duo {

namespace {

constexpr float kNegInf = -1e6f;  // the reference's `neg_infinity` (a large finite number, not -inf)

// The network's raw output must be finite: the weights were checked at load time (io/weights.h), so a NaN or
// inf here comes from inside the network, and sampling on from it would give garbage that looks like text.
void check_logits(const float* o, int64_t rows, int64_t V, int64_t L, int64_t b0) {
  const int64_t i = first_non_finite(o, rows * V);
  if (i < 0) return;
  const int64_t r = i / V;
  fail("sampling", str("the network's output is not finite (", o[i], " at sequence ", b0 + r / L, ", position ",
                       r % L, ", token id ", i % V, ")"),
       "the loaded weights are finite, so the model overflows inside; check that the checkpoint matches the "
       "model options, or use an earlier checkpoint");
}

}  // namespace

// ---- DiTDenoiser ----

namespace {

// Turns the network output rows (rows = nb * L, V each) into the sampler's input o: log-softmax, MDLM's
// carry-over, or SEDD's score shift. src: the rows where the backend left them when it can be read here (the
// CPU backend), copied a row at a time so that the post-processing finds each in cache; null when o already
// holds them. z: the rows' current tokens; sigma: the nb sequences' time inputs. Returns the first row that is
// not finite (then left as the network gave it), or rows. Cloned (core/simd.h) so that its loops over V
// vectorise at the CPU's width.
DUO_SIMD_CLONES int64_t postprocess_rows(const float* src, float* o, int64_t rows, int64_t V, int64_t L,
                                         const int32_t* z, const double* sigma, DiffusionFamily family,
                                         int32_t mask_id) {
  int64_t first_bad = rows;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = o + r * V;
    if (src) std::copy(src + r * V, src + (r + 1) * V, row);
    if (!all_finite(row, V)) {
      first_bad = std::min(first_bad, r);
      continue;
    }
    switch (family) {
      case DiffusionFamily::uniform:
      case DiffusionFamily::d3pm: log_softmax_row_inplace(row, V); break;
      case DiffusionFamily::mdlm: subs_row(row, V, mask_id, z[r]); break;
      case DiffusionFamily::sedd: sedd_log_score_row(row, V, sigma[r / L], z[r]); break;
    }
  }
  return first_bad;
}

}  // namespace

void subs_row(float* o, int64_t V, int32_t mask_id, int32_t z) {
  if (z != mask_id) {  // carry-over: an unmasked token is kept with probability 1
    std::fill(o, o + V, kNegInf);
    o[z] = 0.0f;
    return;
  }
  o[mask_id] += kNegInf;
  log_softmax_row_inplace(o, V);
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
    // The CPU backend's float32 logits are read where they are; any other backend's are copied here first.
    const bool readable = logits.device == Device::CPU && logits.dtype == DType::F32;
    if (!readable) runner_.to_host(logits, o);
    const int64_t rows = nb * L;
    const int64_t bad = postprocess_rows(readable ? logits.ptr<float>() : nullptr, o, rows, V, L, z + b0 * L,
                                         sigma + b0, family_, mask_id_);
    if (bad < rows) check_logits(o, rows, V, L, b0);  // post-processed rows are finite: it finds row `bad`
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
    check_logits(out + b0 * V, nb, V, 1, b0);
  });
}

}  // namespace duo
