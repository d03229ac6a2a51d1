#include "eval/dit_scorer.h"
#include "math/log_softmax_row.h"
#include "math/loss_common.h"

namespace duo {

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
      if (mask_id_ >= 0) row[mask_id_] = (float)kNegInfinity;
      log_softmax_row_inplace(row, V);
      // Causal attention with right padding: the prediction at j < length sees only real tokens.
      if (j < lengths[b0 + b]) nll[(b0 + b) * (N - 1) + j] = -row[ids[(b0 + b) * N + j + 1]];
    }
  });
}

}  // namespace duo
