// The DiT adapters of the samplers: see dit_denoiser.h.
#include "sample/dit_denoiser.h"

#include <algorithm>
#include <cmath>
#include "core/finite.h"

namespace duo {

namespace {

// The network's raw output must be finite: the weights were checked at load time (io/weights.h), so a NaN or
// inf here comes from inside the network, and sampling on from it would give garbage that looks like text.
// o: rows r0, r0 + 1, ... of the (B·L, V) rows of sequences b0, b0 + 1, ...
void check_logits(const float* o, int64_t rows, int64_t V, int64_t L, int64_t b0, int64_t r0 = 0) {
  const int64_t i = first_non_finite(o, rows * V);
  if (i < 0) return;
  const int64_t r = r0 + i / V;
  fail("sampling", str("the network's output is not finite (", o[i], " at sequence ", b0 + r / L, ", position ",
                       r % L, ", token id ", i % V, ")"),
       "the loaded weights are finite, so the model overflows inside; check that the checkpoint matches the "
       "model options, or use an earlier checkpoint");
}

}  // namespace

// ---- DiTDenoiser ----

DiTDenoiser::DiTDenoiser(DiT& model, Ops& ops, DiffusionFamily family, int32_t mask_id)
    : runner_(model, ops), ops_(ops), family_(family), mask_id_(mask_id) {
  const int64_t V = model.config().vocab_size;
  DUO_CHECK(!model.config().causal, "sampling", "a causal (AR) model cannot be a diffusion denoiser",
            "sample an AR checkpoint with --algo ar");
  if (family != DiffusionFamily::uniform)
    DUO_CHECK(mask_id >= 0 && mask_id < V, "sampling", str("mask id ", mask_id, " is outside the vocabulary of ", V),
              "absorbing models need the tokenizer's [MASK] id (checkpoint metadata mask_id)");
  keep_ = ws_.reserve((size_t)(runner_.max_batch() * runner_.max_length()), "sampling: kept positions");
  sigma_ = ws_.reserve((size_t)runner_.max_batch() * 8, "sampling: time inputs");
  status_ = ws_.reserve(8, "sampling: the step's status");
  Ops* p = &ops;
  ws_.allocate([p](size_t n) { return p->alloc(n); }, [p](void* q) { p->release(q); });
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
    const int64_t bad = denoiser_output_rows(readable ? logits.ptr<float>() : nullptr, o, rows, V, L, z + b0 * L,
                                             sigma + b0, family_, mask_id_);
    if (bad < rows) check_logits(o, rows, V, L, b0);  // post-processed rows are finite: it finds row `bad`
  });
}

int64_t DiTDenoiser::evaluate_and_update(int32_t* z, int64_t B, int64_t L, const double* sigma,
                                         const DiffusionStepArgs& step, const uint8_t* keep, bool reuse) {
  const int64_t V = vocab_size();
  const bool one_chunk = B <= runner_.max_batch();
  int64_t changed = 0;
  for_each_chunk(B, runner_.max_batch(), [&](int64_t b0, int64_t nb) {
    const int64_t rows = nb * L;
    // The ids travel up with the forward (DiTRunner keeps them in its workspace) and the step updates them there.
    // Reused output (ancestral_cache: z unchanged since) is only at hand when the batch was one chunk.
    if (!(reuse && one_chunk && !logits_.empty())) {
      const double* s = family_ == DiffusionFamily::mdlm ? nullptr : sigma + b0;
      logits_ = runner_.forward(z + b0 * L, nb, L, s);
    }
    Tensor ids = runner_.ids(nb, L);
    Tensor logits = logits_.view({nb, L, V});
    Tensor keep_t(ws_.at(keep_), DType::U8, {rows}, ops_.device());
    Tensor keep_arg;  // empty: nothing kept
    if (keep) {
      ops_.from_host(keep_t, keep + b0 * L);
      keep_arg = keep_t;
    }
    Tensor sigma_t(ws_.at(sigma_), DType::F64, {nb}, ops_.device());
    ops_.from_host(sigma_t, sigma + b0);
    Tensor status(ws_.at(status_), DType::I32, {2}, ops_.device());
    DiffusionStepArgs a = step;
    a.first_position = step.first_position + b0 * L;
    ops_.diffusion_step(ids, status, logits, keep_arg, sigma_t, a);
    int32_t st[2];
    ops_.to_host(st, status);
    if (st[1] < rows) {  // the rows are not finite: name the first
      std::vector<float> row((size_t)V);
      runner_.row_to_host(logits_, st[1], row.data());
      check_logits(row.data(), 1, V, L, b0, st[1]);
    }
    ops_.to_host(z + b0 * L, ids);
    changed += st[0];
  });
  if (!one_chunk) logits_ = Tensor();  // a later chunk's output: no reuse
  return changed;
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
