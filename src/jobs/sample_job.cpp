// One duo-sample run: see sample_job.h.
#include "jobs/sample_job.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include "algo/schedule.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "core/timer.h"
#include "jobs/gen_ppl_eval.h"
#include "io/repo_files.h"
#include "sample/ar_sampler.h"
#include "sample/dit_denoiser.h"
#include "sample/progress.h"

namespace duo {

namespace {

DiffusionFamily family_of(const std::string& algo) {
  if (algo == "mdlm") return DiffusionFamily::mdlm;
  if (algo == "sedd") return DiffusionFamily::sedd;
  if (algo == "d3pm") return DiffusionFamily::d3pm;
  return DiffusionFamily::uniform;  // duo_base, duo
}

Predictor parse_predictor(const std::string& s) {
  if (s == "ancestral") return Predictor::ancestral;
  if (s == "ancestral_cache") return Predictor::ancestral_cache;
  if (s == "psi") return Predictor::psi;
  if (s == "analytic") return Predictor::analytic;
  fail("--sampling.predictor", str("unknown predictor '", s, "'"), "use ancestral, ancestral_cache, psi or analytic");
}

NoiseRemoval parse_noise_removal(const std::string& s) {
  if (s == "ancestral") return NoiseRemoval::ancestral;
  if (s == "greedy") return NoiseRemoval::greedy;
  if (s == "none") return NoiseRemoval::none;
  fail("--sampling.noise_removal", str("unknown value '", s, "'"), "use ancestral, greedy or none");
}

std::string default_predictor(const std::string& algo) {
  if (algo == "mdlm") return "ancestral_cache";  // reuses the prediction while nothing changes
  if (algo == "sedd") return "analytic";
  return "ancestral";
}

// The algorithm, checked against the model: causal models are AR models and vice versa.
std::string resolve_algo(const SampleOptions& opt, const ModelInfo& m, std::vector<std::string>& notes) {
  std::string algo = opt.algo.empty() ? m.algo : opt.algo;
  DUO_CHECK(!algo.empty(), m.path, "the model does not say which algorithm trained it",
            "pass --algo (ar, mdlm, sedd, d3pm, duo_base or duo)");
  const std::vector<std::string> known = {"ar", "mdlm", "sedd", "d3pm", "duo_base", "duo"};
  DUO_CHECK(std::find(known.begin(), known.end(), algo) != known.end(), "--algo", str("unknown algorithm '", algo, "'"),
            "use ar, mdlm, sedd, d3pm, duo_base or duo");
  if (!opt.algo.empty() && !m.algo.empty() && opt.algo != m.algo)
    notes.push_back(str("--algo ", opt.algo, " overrides the model's algo '", m.algo, "'"));
  if (algo == "ar" && !m.config.causal)
    fail(m.path, "is a bidirectional (diffusion) model, but --algo ar needs a causal model",
         str("sample it with its diffusion algorithm", m.algo.empty() ? "" : " (" + m.algo + ")",
             ", or give an AR checkpoint"));
  if (algo != "ar" && m.config.causal)
    fail(m.path, str("is a causal (AR) model, but --algo ", algo, " needs a bidirectional denoiser"),
         "sample it with --algo ar");
  return algo;
}

// Tokenizer name and folder; loads the tokenizer and checks it against the model's vocabulary.
std::unique_ptr<Tokenizer> resolve_tokenizer(const SampleOptions& opt, SamplePlan& p) {
  const ModelInfo& m = p.model;
  p.tokenizer = opt.tokenizer.empty() ? m.tokenizer : opt.tokenizer;
  DUO_CHECK(!p.tokenizer.empty(), m.path, "the model does not name its tokenizer",
            "pass --data.tokenizer_name_or_path (gpt2, bert-base-uncased or char) and --vocab DIR");
  const std::string recorded = p.tokenizer == m.tokenizer ? m.vocab_dir : "";
  p.vocab_dir = find_vocab_dir(p.tokenizer, opt.vocab_dir.empty() ? recorded : opt.vocab_dir);
  DUO_CHECK(!p.vocab_dir.empty(), "--vocab", str("no folder with the files of tokenizer '", p.tokenizer, "'"),
            str("pass --vocab DIR (gpt2: encoder.json + vocab.bpe; bert-base-uncased: vocab.txt; char: ",
                "vocab_chars.txt); the repository ships gpt2 and bert-base-uncased in data/vendor/"));
  std::unique_ptr<Tokenizer> tok = load_tokenizer(p.tokenizer, p.vocab_dir);
  DUO_CHECK(tok->vocab_size() == m.config.vocab_size, m.path,
            str("the model has ", m.config.vocab_size, " ids but tokenizer '", p.tokenizer, "' (", p.vocab_dir, ") has ",
                tok->vocab_size()),
            "the model was trained with another tokenizer: pass the right --data.tokenizer_name_or_path / --vocab");
  p.specials = tok->specials();
  return tok;
}

// The samplers take the schedule as plain functions (sample/psi_schedule.h).
AlphaSchedule alpha_schedule(const Schedule& s) {
  AlphaSchedule a;
  a.alpha = [s](double t) { return s.alpha(t); };
  a.t_for_alpha = [s](double x) { return s.t_for_alpha(x); };
  return a;
}

}  // namespace

uint64_t batch_seed(uint64_t seed, int64_t k) { return stream_id(seed, streams::kSampleBatch, (uint64_t)k); }

SampleJob::SampleJob(const SampleOptions& opt) {
  SamplePlan& p = plan_;
  p.model = inspect_model(opt.checkpoint_path);
  const ModelInfo& m = p.model;
  p.algo = resolve_algo(opt, m, p.notes);
  p.ar = p.algo == "ar";
  tokenizer_ = resolve_tokenizer(opt, p);
  p.mask_id = m.mask_id >= 0 ? m.mask_id : (int32_t)(p.specials.mask >= 0 ? p.specials.mask : p.specials.pad);

  p.use_ema = !opt.disable_ema;
  if (p.use_ema && m.source == ModelSource::Checkpoint && !m.has_ema)
    p.notes.push_back("the checkpoint has no EMA weights: sampling with its parameters");
  p.noise = opt.noise.empty() ? m.noise : opt.noise;
  p.noise_eps = opt.noise_eps >= 0 ? opt.noise_eps : m.noise_eps;
  (void)Schedule::from_name(p.noise, p.noise_eps);  // validates both now, before any work

  p.length = opt.length > 0 ? opt.length : m.config.length;
  DUO_CHECK(opt.length >= 0, "--model.length", str("got ", opt.length), "use a positive length (0 = the model's)");
  DUO_CHECK(p.length >= (p.ar ? 2 : 1), "--model.length", str("got ", p.length), "AR samples need at least 2 tokens");
  DUO_CHECK(opt.p_nucleus > 0 && opt.p_nucleus <= 1, "--sampling.p_nucleus", str("got ", opt.p_nucleus),
            "use a value in (0, 1]; 1 disables top-p");
  DUO_CHECK(opt.top_k >= 0, "--sampling.top_k", str("got ", opt.top_k), "use 0 (off) or a positive k");
  DUO_CHECK(opt.num_samples >= 1, "--sampling.num_samples", str("got ", opt.num_samples), "ask for at least one sample");
  DUO_CHECK(opt.batch_size >= 1, "--loader.eval_batch_size", str("got ", opt.batch_size), "use a positive batch size");
  p.num_samples = opt.num_samples;
  p.batch_size = std::min(opt.batch_size, opt.num_samples);
  p.batches = (p.num_samples + p.batch_size - 1) / p.batch_size;

  // Prefix: ids as given, or BOS + the encoded text.
  DUO_CHECK(opt.prefix_text.empty() || opt.prefix_ids.empty(), "--sampling.prefix",
            "both a text prefix and prefix ids were given", "use one of --sampling.prefix and --sampling.prefix_ids");
  p.prefix = opt.prefix_ids;
  if (!opt.prefix_text.empty()) {
    if (p.specials.bos >= 0) p.prefix.push_back((int32_t)p.specials.bos);
    for (uint32_t id : tokenizer_->encode(opt.prefix_text)) p.prefix.push_back((int32_t)id);
  }
  DUO_CHECK((int64_t)p.prefix.size() < p.length, "--sampling.prefix",
            str("the prefix has ", p.prefix.size(), " tokens, the samples ", p.length),
            "use a shorter prefix or a longer --model.length");
  for (int32_t id : p.prefix)
    DUO_CHECK(id >= 0 && id < m.config.vocab_size, "--sampling.prefix_ids",
              str("id ", id, " is outside the vocabulary of ", m.config.vocab_size), "use ids of the model's tokenizer");
  DUO_CHECK(opt.template_path.empty() || p.prefix.empty(), "--sampling.template",
            "both a template and a prefix were given", "put the prefix into the template");
  p.template_path = opt.template_path;
  if (!opt.template_path.empty())
    p.fixed = read_template(opt.template_path, *tokenizer_, p.specials.bos, p.length, m.config.vocab_size);
  else if (!p.prefix.empty())
    p.fixed = prefix_template(p.prefix, p.length);

  p.seed = opt.seed;
  p.p_nucleus = opt.p_nucleus;
  p.top_k = opt.top_k;
  p.precision = opt.use_float64 ? SamplePrecision::f64 : SamplePrecision::f32;
  DUO_CHECK(opt.perplexity_batch_size >= 1, "--eval.perplexity_batch_size", str("got ", opt.perplexity_batch_size),
            "use a positive batch size");
  p.perplexity_batch_size = opt.perplexity_batch_size;
  if (p.ar) {
    DUO_CHECK(p.specials.bos >= 0, "tokenizer", str("'", p.tokenizer, "' has no BOS id for AR sampling"), "");
    p.predictor = "ar";
    p.noise_removal = "none";
    p.steps = p.length - 1;
    DUO_CHECK(p.fixed.fixed() == p.fixed.prefix(), "--sampling.template",
              str(p.algo, " samples left to right, so only a prefix can condition it; the template fixes ",
                  p.fixed.fixed() - p.fixed.prefix(), " positions after a free one"),
              "sample infills with a diffusion model (duo_base, mdlm, sedd, d3pm)");
    p.nfe_per_batch = p.length - 1 - std::max<int64_t>(0, p.fixed.prefix() - 1);
    return;
  }
  DiffusionSamplerConfig& c = p.diffusion;
  c.family = family_of(p.algo);
  // The sampler: the command line, else the checkpoint's recommendation (metadata `sampling`, for the model's
  // own algorithm), else the defaults (docs/sampling.md §13).
  const bool own_algo = p.algo == m.algo;
  p.predictor = !opt.predictor.empty()                            ? opt.predictor
                : own_algo && !m.sampling_predictor.empty()       ? m.sampling_predictor
                                                                  : default_predictor(p.algo);
  c.predictor = parse_predictor(p.predictor);
  p.noise_removal = !opt.noise_removal.empty()                    ? opt.noise_removal
                    : own_algo && !m.sampling_noise_removal.empty() ? m.sampling_noise_removal
                                                                    : "ancestral";
  c.noise_removal = parse_noise_removal(p.noise_removal);
  const int64_t steps = opt.steps != 0 ? opt.steps : own_algo && m.sampling_steps > 0 ? m.sampling_steps : 1000;
  if (opt.steps == 0 && own_algo && m.sampling_steps > 0)
    p.notes.push_back(str("the checkpoint recommends ", m.sampling_steps, " steps, noise removal '", p.noise_removal,
                          "' (explicit options win)"));
  DUO_CHECK(!(c.family == DiffusionFamily::sedd) || c.predictor == Predictor::analytic, "--sampling.predictor",
            str("SEDD samples with the analytic predictor, not ", p.predictor), "use --sampling.predictor analytic");
  DUO_CHECK(c.family == DiffusionFamily::sedd || c.predictor != Predictor::analytic, "--sampling.predictor",
            str("the analytic predictor is SEDD's, not ", p.algo, "'s"),
            p.algo == "mdlm" ? "use ancestral_cache (default) or ancestral" : "use ancestral (default) or psi");
  DUO_CHECK(!(c.predictor == Predictor::ancestral_cache && c.family != DiffusionFamily::mdlm), "--sampling.predictor",
            str("ancestral_cache reuses predictions, which is only valid for MDLM (not time-conditioned), not ",
                p.algo),
            "use --sampling.predictor ancestral");
  DUO_CHECK(steps >= 1, "--sampling.steps", str("got ", steps), "use at least one step");
  DUO_CHECK(!(c.family == DiffusionFamily::sedd && opt.p_nucleus < 1), "--sampling.p_nucleus",
            "SEDD's model output is a score, not log-probabilities, so top-p does not apply", "leave p_nucleus at 1");
  DUO_CHECK(!(c.family == DiffusionFamily::sedd && opt.top_k > 0), "--sampling.top_k",
            "SEDD's model output is a score, not log-probabilities, so top-k and greedy do not apply",
            "leave top_k at 0 and greedy off");
  DUO_CHECK(p.precision == SamplePrecision::f64 || c.family == DiffusionFamily::uniform ||
                c.family == DiffusionFamily::sedd,
            "--sampling.use_float64", str("the absorbing posterior of ", p.algo, " needs float64 (as the reference)"),
            "leave --sampling.use_float64 true");
  c.steps = steps;
  c.p_nucleus = p.p_nucleus;
  c.top_k = p.top_k;
  c.precision = p.precision;
  c.seed = p.seed;
  c.mask_id = p.mask_id;
  c.psi = opt.psi;
  if (c.predictor == Predictor::psi) {  // a bad profile or mode is reported now, not after loading the model
    const AlphaSchedule a = alpha_schedule(Schedule::from_name(p.noise, p.noise_eps));
    (void)psi_kappas(sampling_time_grid(c.steps, c.t_min, true, c.psi, a), c.psi, a);
  }
  p.steps = steps;
  p.nfe_per_batch = steps + (c.noise_removal == NoiseRemoval::none ? 0 : 1);
}

SampleJob::~SampleJob() = default;

SampleResult SampleJob::run(Ops& ops, std::ostream* progress_out, GenPplEvaluator* evaluator, Comm& comm) const {
  const SamplePlan& p = plan_;
  const int64_t L = p.length, n = p.num_samples;
  LoadedModel model = load_model(p.model, ops, p.batch_size, L, p.use_ema);
  SampleResult r;
  r.weights = model.weights;
  r.num_samples = n;
  r.length = L;
  r.ids.assign((size_t)(n * L), 0);

  // Prompt: the prefix or template in every row of a batch.
  std::vector<int32_t> prompt_ids;
  std::vector<uint8_t> keep;
  for (int64_t b = 0; b < p.batch_size && !p.fixed.keep.empty(); ++b) {
    prompt_ids.insert(prompt_ids.end(), p.fixed.ids.begin(), p.fixed.ids.end());
    keep.insert(keep.end(), p.fixed.keep.begin(), p.fixed.keep.end());
  }
  Prompt prompt;
  if (p.fixed.fixed() > 0) prompt = Prompt{prompt_ids.data(), keep.data()};

  const AlphaSchedule alpha = alpha_schedule(Schedule::from_name(p.noise, p.noise_eps));

  const int64_t rank = comm.rank(), ranks = comm.size();
  const int64_t mine = p.batches / ranks + (rank < p.batches % ranks ? 1 : 0);  // batches k = rank + j·ranks
  Progress progress(progress_out, mine, p.nfe_per_batch, p.steps);
  std::unique_ptr<DiTDenoiser> denoiser;
  std::unique_ptr<DiTCausalLM> causal;
  if (p.ar) causal = std::make_unique<DiTCausalLM>(*model.dit, ops);
  else denoiser = std::make_unique<DiTDenoiser>(*model.dit, ops, p.diffusion.family, p.mask_id);

  Timer timer;
  int64_t sample_evaluations = 0;
  for (int64_t j = 0, k = rank; k < p.batches; ++j, k += ranks) {
    const int64_t B = std::min(p.batch_size, n - k * p.batch_size);
    int32_t* z = r.ids.data() + k * p.batch_size * L;
    progress.start_batch(j);
    SamplerStats st;
    if (p.ar) {
      ArSamplerConfig c;
      c.bos_id = (int32_t)p.specials.bos;
      c.mask_id = p.mask_id == c.bos_id ? -1 : p.mask_id;
      c.p_nucleus = p.p_nucleus;
      c.top_k = p.top_k;
      c.precision = p.precision;
      c.seed = batch_seed(p.seed, k);
      ProgressCausalLM lm(*causal, progress);
      st = sample_ar(lm, c, B, L, prompt, z);
    } else {
      DiffusionSamplerConfig c = p.diffusion;
      c.seed = batch_seed(p.seed, k);
      ProgressDenoiser net(*denoiser, progress);
      st = sample_diffusion(net, alpha, c, B, L, prompt, z);
    }
    r.network_calls += st.nfe;
    sample_evaluations += st.nfe * B;  // each of the batch's B samples went through every call
  }
  r.seconds = timer.seconds();
  progress.finish();
  if (ranks > 1) {  // every rank's batches to every rank: ids are exact in float64, the others' rows are zeros
    std::vector<double> all(r.ids.size() + 2, 0.0);
    for (int64_t k = rank; k < p.batches; k += ranks)
      for (int64_t i = k * p.batch_size * L; i < std::min(n, (k + 1) * p.batch_size) * L; ++i) all[(size_t)i] = r.ids[(size_t)i];
    all[r.ids.size()] = (double)r.network_calls;
    all[r.ids.size() + 1] = (double)sample_evaluations;
    comm.all_reduce_sum(all.data(), all.size());
    for (size_t i = 0; i < r.ids.size(); ++i) r.ids[i] = (int32_t)all[i];
    r.network_calls = (int64_t)all[r.ids.size()];
    sample_evaluations = (int64_t)all[r.ids.size() + 1];
  }
  r.nfe = (double)sample_evaluations / (double)n;

  for (int64_t i = 0; i < n; ++i) {
    const int32_t* row = r.ids.data() + i * L;
    r.texts.push_back(tokenizer_->decode(std::vector<uint32_t>(row, row + L)));
    r.entropies.push_back(unigram_entropy(row, L));
  }
  r.entropy = mean_unigram_entropy(r.ids.data(), n, L);

  if (evaluator) {
    GenPplResult total;
    GenPplOptions o;
    o.batch_size = p.perplexity_batch_size;
    for (int64_t k = 0; k < p.batches; ++k) {  // one padding per sampling batch, as the reference
      const int64_t b0 = k * p.batch_size, B = std::min(p.batch_size, n - b0);
      std::vector<std::string> texts(r.texts.begin() + b0, r.texts.begin() + b0 + B);
      total.add(score_texts(*evaluator, texts, L, o));
    }
    r.gen_ppl = total;
    r.evaluator = evaluator->description();
  }
  return r;
}

}  // namespace duo
