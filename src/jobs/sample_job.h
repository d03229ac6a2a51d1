// One sampling run of duo-sample (the reference's mode=sample_eval, docs/sampling.md §13): resolve the
// settings from the command line and the model's metadata, load the model (EMA weights by default) and its
// tokenizer, draw num_samples sequences in batches with the algorithm's sampler, decode them, and measure
// the unigram entropy and, when an evaluator is given, the generative perplexity.
//
// Settings resolution (command line > checkpoint metadata > defaults):
//   algo        --algo | metadata `algo` | HF model_type (DUO -> duo_base, mdlm -> mdlm)
//   tokenizer   --data.tokenizer_name_or_path | metadata `tokenizer` | gpt2 for HF folders
//   vocab dir   --vocab | metadata `vocab_dir` | data/vendor/<tokenizer>
//   mask id     metadata `mask_id` | the tokenizer's [MASK], else its [PAD] (GPT-2 50257, char V-1)
//   noise       --noise / --noise.eps | metadata `noise`, `noise_eps` | log-linear, 1e-3
//   predictor   --sampling.predictor | metadata `sampling` | ancestral_cache (MDLM), analytic (SEDD), ancestral
//   steps, noise removal   --sampling.steps, --sampling.noise_removal | metadata `sampling` | 1000, ancestral
// AR checkpoints are sampled token by token (sample/ar_sampler.h); the steps option does not apply to them.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "backend/comm.h"
#include "backend/ops.h"
#include "data/tokenizer.h"
#include "eval/gen_metrics.h"
#include "eval/gen_ppl.h"
#include "sample/diffusion_sampler.h"
#include "io/model_loader.h"
#include "jobs/sample_template.h"

namespace duo {

class GenPplEvaluator;

// What the command line gives (the reference's Hydra keys in comments). Empty strings / zeros = "not given".
struct SampleOptions {
  std::string algo;               // --algo
  std::string checkpoint_path;    // --eval.checkpoint_path
  bool disable_ema = false;       // --eval.disable_ema
  int64_t steps = 0;              // --sampling.steps (0 = the checkpoint's recommendation, else 1000)
  std::string noise_removal;      // --sampling.noise_removal ("" = the checkpoint's, else ancestral)
  std::string predictor;          // --sampling.predictor ("" = the algorithm's default)
  int64_t num_samples = 8;        // --sampling.num_samples
  int64_t batch_size = 8;         // --loader.eval_batch_size
  uint64_t seed = 1;              // --seed
  double p_nucleus = 1.0;         // --sampling.p_nucleus
  int64_t top_k = 0;              // --sampling.top_k (0 = off; 1 = --sampling.greedy)
  bool use_float64 = true;        // --sampling.use_float64
  PsiConfig psi;                  // --sampling.psi.*
  int64_t length = 0;             // --model.length (0 = the model's)
  std::string tokenizer;          // --data.tokenizer_name_or_path
  std::string vocab_dir;          // --vocab
  std::string noise;              // --noise
  double noise_eps = -1;          // --noise.eps (< 0 = not given)
  std::string prefix_text;        // --sampling.prefix (encoded, after BOS)
  std::vector<int32_t> prefix_ids;  // --sampling.prefix_ids (as given)
  std::string template_path;      // --sampling.template (infill: fixed tokens anywhere, sample_template.h)
  int64_t perplexity_batch_size = 8;  // --eval.perplexity_batch_size (Gen PPL scorer rows per call)
};

// The settings after resolution, as used and as reported in the JSON output.
struct SamplePlan {
  ModelInfo model;
  std::string algo;               // ar | mdlm | sedd | d3pm | duo_base | duo
  bool ar = false;
  DiffusionSamplerConfig diffusion;  // diffusion algorithms (its seed is the run's; each batch derives its own)
  uint64_t seed = 1;
  double p_nucleus = 1.0;
  int64_t top_k = 0;
  SamplePrecision precision = SamplePrecision::f64;
  int64_t perplexity_batch_size = 8;
  std::string predictor, noise_removal;  // their names
  std::string tokenizer, vocab_dir;
  SpecialIds specials;
  int32_t mask_id = -1;
  std::string noise;
  double noise_eps = 1e-3;
  int64_t length = 0, num_samples = 0, batch_size = 0, batches = 0;
  int64_t steps = 0;              // sampling steps (AR: L - 1 token positions)
  int64_t nfe_per_batch = 0;      // expected network evaluations per batch (upper bound with ancestral_cache)
  std::vector<int32_t> prefix;    // positions 0 .. prefix.size()-1 of every sample are fixed
  std::string template_path;      // the template file, when one was given
  SampleTemplate fixed;           // what every sample keeps fixed (from the prefix or the template); empty: nothing
  bool use_ema = true;
  std::vector<std::string> notes; // things the user should know (overridden metadata, missing EMA, ...)
};

struct SampleResult {
  std::vector<int32_t> ids;       // (num_samples, length)
  int64_t num_samples = 0, length = 0;
  double nfe = 0;                 // network evaluations per sample (the mean over samples; the same for all
                                  // unless ancestral_cache skipped calls in some batches), as the reference
  int64_t network_calls = 0;      // network calls over all batches
  double seconds = 0;             // sampling wall time (model loading and scoring excluded)
  std::string weights;            // which weights were loaded
  std::vector<std::string> texts; // decoded, special tokens kept (as the reference's batch_decode)
  std::vector<double> entropies;  // unigram entropy per sample (nats)
  double entropy = 0;             // their mean
  std::optional<GenPplResult> gen_ppl;  // with an evaluator
  std::string evaluator;          // its description
};

class SampleJob {
 public:
  // Resolves and validates every setting and loads the tokenizer (not yet the weights).
  explicit SampleJob(const SampleOptions& opt);
  ~SampleJob();

  const SamplePlan& plan() const { return plan_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // Loads the model on `ops`, samples, decodes, measures. progress: the progress bar's stream (null: none).
  // evaluator: the Gen-PPL evaluator (null: generative_ppl is not computed).
  // With several ranks, rank r draws the batches k = r, r + ranks, ... (a batch's samples depend on k only, so
  // they are the ones one process draws) and every rank returns all samples; only the ranks given an evaluator
  // score them.
  SampleResult run(Ops& ops, std::ostream* progress, GenPplEvaluator* evaluator, Comm& comm = single_process()) const;

 private:
  SamplePlan plan_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// The seed of sampling batch k: the samples of a run depend only on (seed, batch size, k).
uint64_t batch_seed(uint64_t seed, int64_t k);

}  // namespace duo
