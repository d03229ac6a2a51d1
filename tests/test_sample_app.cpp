// duo-sample's engine: the DiT adapters of the samplers (output post-processing per algorithm, batching,
// the causal next-token and scorer adapters), and whole sampling jobs from the committed Hugging Face
// folder fixture and from checkpoints written here, for every algorithm, with their outputs and errors.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include "backend/cpu/cpu_ops.h"
#include "data/char_vocab.h"
#include "data_paths.h"
#include "eval/dit_scorer.h"
#include "jobs/gen_ppl_eval.h"
#include "io/checkpoint.h"
#include "io/weights.h"
#include "io_test_util.h"
#include "train/model_state.h"
#include "sample/dit_denoiser.h"
#include "sample/diffusion_sampler.h"
#include "math/sampling_step.h"
#include "jobs/sample_output.h"

using namespace duo;

namespace {

bool has(const Error& e, const std::string& s) {
  BOOST_TEST_INFO("message: " << e.what());
  return std::string(e.what()).find(s) != std::string::npos && !e.hint().empty();
}

ModelConfig tiny_config(bool causal, int64_t V = 13) {
  ModelConfig c;
  c.vocab_size = V; c.hidden = 16; c.n_blocks = 1; c.n_heads = 2; c.cond_dim = 8; c.freq_dim = 16;
  c.length = 8; c.dropout = 0.0f; c.causal = causal;
  return c;
}

// Random non-zero weights everywhere (a from-scratch init zeroes adaLN and the head, whose output is flat).
std::vector<float> random_weights(const ParamTable& t, uint64_t seed) {
  std::vector<float> w((size_t)t.total());
  Philox r{seed, 7};
  for (size_t i = 0; i < w.size(); ++i) w[i] = (float)(0.8 * (2 * r.uniform_double(i) - 1));
  return w;
}

// A tiny random DiT for inference, planned for batches of max_batch.
struct TinyModel {
  CpuOps ops;
  ModelConfig cfg;
  ModelState state;
  DiT dit;
  TinyModel(bool causal, int64_t max_batch)
      : cfg(tiny_config(causal)), state(cfg, ops, false), dit(cfg, ops, options(max_batch)) {
    std::vector<float> w = random_weights(state.table(), 3);
    std::copy(w.begin(), w.end(), static_cast<float*>(state.params()));
    dit.bind(state.params(), nullptr);
  }
  static DiTOptions options(int64_t max_batch) {
    DiTOptions o;
    o.max_batch = max_batch;
    o.training = false;
    return o;
  }
  // Raw logits of one forward pass, copied out.
  std::vector<float> logits(const std::vector<int32_t>& ids, int64_t B, int64_t L, std::vector<float> sigma) {
    Tensor tids(const_cast<int32_t*>(ids.data()), DType::I32, {B, L});
    DiTInput in;
    in.ids = tids;
    if (!cfg.causal) in.sigma = Tensor(sigma.data(), DType::F32, {B});
    Tensor out = dit.forward(in, B, L, false, Philox{0, 0});
    return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.numel());
  }
};

std::vector<int32_t> some_ids(int64_t n, int64_t V, uint64_t seed) {
  std::vector<int32_t> ids((size_t)n);
  Philox r{seed, 1};
  for (int64_t i = 0; i < n; ++i) ids[(size_t)i] = (int32_t)(r.bits((uint64_t)i) % (uint64_t)V);
  return ids;
}

// A folder with the char vocabulary of tinyshakespeare (65 characters: V = 67, as the hf_tiny fixture).
struct CharVocab {
  test::TempDir dir{"sample-vocab"};
  CharVocab() {
    CharCollector c;
    c.add(test::read_all(test::tinyshakespeare_path()));
    CharTokenizer(c.chars()).write(dir / kCharVocabFile);
  }
  std::string path() const { return dir.path.string(); }
};

const CharVocab& char_vocab() {
  static const CharVocab v;  // built once for the suite (read-only afterwards)
  return v;
}

// A checkpoint of a tiny random model with the metadata duo-train writes; EMA weights differ from params.
std::string write_checkpoint(const test::TempDir& dir, const std::string& algo, bool with_vocab_dir = true) {
  ModelConfig c = tiny_config(algo == "ar", 67);
  c.length = 12;
  ParamTable t(c);
  std::vector<float> p = random_weights(t, 11), e = random_weights(t, 12);
  CheckpointContents cc;
  cc.params = p.data();
  cc.ema = e.data();
  cc.metadata = {{"algo", algo}, {"step", 100}, {"tokenizer", "char"}, {"mask_id", 66}, {"noise", "log-linear"},
                 {"noise_eps", 1e-3}};
  if (with_vocab_dir) cc.metadata["vocab_dir"] = char_vocab().path();
  const std::string path = dir / (algo + ".safetensors");
  save_checkpoint(path, t, cc);
  return path;
}

SampleOptions hf_options(const std::string& noise_removal) {
  SampleOptions o;
  o.checkpoint_path = testing::fixture("hf_tiny");
  o.tokenizer = "char";
  o.vocab_dir = char_vocab().path();
  o.steps = 4;
  o.noise_removal = noise_removal;
  o.num_samples = 3;
  o.batch_size = 2;
  o.length = 16;
  o.seed = 5;
  return o;
}

SampleResult run_job(const SampleOptions& o, GenPplEvaluator* ev = nullptr) {
  CpuOps ops;
  return SampleJob(o).run(ops, nullptr, ev);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sample_app)

// DUO: every row is a log-softmax; a batch larger than the planned one is split and gives the same rows as
// sequences run one by one; sigma reaches the network.
BOOST_AUTO_TEST_CASE(duo_rows_are_log_softmax_and_batching_agrees) {
  TinyModel m(false, 2);
  const int64_t B = 3, L = 8, V = m.cfg.vocab_size;
  DiTDenoiser den(m.dit, m.ops, DiffusionFamily::uniform, -1);
  BOOST_TEST(den.time_conditioned());
  const std::vector<int32_t> z = some_ids(B * L, V, 1);
  const std::vector<double> sigma = {0.3, 1.5, 4.0};
  std::vector<float> out((size_t)(B * L * V));
  den.log_probs(z.data(), B, L, sigma.data(), out.data());
  for (int64_t r = 0; r < B * L; ++r) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp((double)out[(size_t)(r * V + v)]);
    BOOST_TEST(std::fabs(s - 1.0) < 1e-5);
  }
  // A sequence alone gives the rows it gets inside a batch, up to rounding: the GEMM library may pick other
  // kernels (another summation order) for another number of rows, so the sums are not bitwise equal on every
  // CPU. Each fp32 dot product of K ≤ 4d = 64 terms carries at most K·2^-24 ≈ 4e-6 of the sum of its terms'
  // magnitudes; through the one-block model the log-probabilities (|x| < 10) move by far less than 1e-4.
  for (int64_t b = 0; b < B; ++b) {
    std::vector<float> one((size_t)(L * V));
    den.log_probs(z.data() + b * L, 1, L, sigma.data() + b, one.data());
    for (int64_t i = 0; i < L * V; ++i)
      BOOST_TEST(std::fabs(one[(size_t)i] - out[(size_t)(b * L * V + i)]) <= 1e-4f);
  }
  std::vector<float> other((size_t)(L * V));
  const double s2 = 2.5;
  den.log_probs(z.data(), 1, L, &s2, other.data());
  BOOST_TEST(std::fabs(other[3] - out[3]) > 1e-6);  // the time input changes the output
}

// MDLM: SUBS rows (masked: normalised with the mask at -1e6; unmasked: carry-over) and sigma fed as 0.
BOOST_AUTO_TEST_CASE(mdlm_subs_carry_over_and_zero_sigma) {
  TinyModel m(false, 4);
  const int64_t B = 2, L = 8, V = m.cfg.vocab_size;
  const int32_t mask = (int32_t)V - 1;
  DiTDenoiser den(m.dit, m.ops, DiffusionFamily::mdlm, mask);
  BOOST_TEST(!den.time_conditioned());
  std::vector<int32_t> z = some_ids(B * L, V - 1, 2);
  for (int64_t i = 0; i < B * L; i += 3) z[(size_t)i] = mask;
  std::vector<float> out((size_t)(B * L * V)), out2(out.size());
  const std::vector<double> s1 = {0.4, 2.0}, s2 = {3.0, 0.1};
  den.log_probs(z.data(), B, L, s1.data(), out.data());
  den.log_probs(z.data(), B, L, s2.data(), out2.data());
  BOOST_TEST(out == out2);  // the network never sees sigma
  const std::vector<float> raw = m.logits(z, B, L, {0.0f, 0.0f});
  for (int64_t r = 0; r < B * L; ++r) {
    const float* o = out.data() + r * V;
    if (z[(size_t)r] != mask) {
      for (int64_t v = 0; v < V; ++v) BOOST_TEST(o[v] == (v == z[(size_t)r] ? 0.0f : -1e6f));
      continue;
    }
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp((double)o[v]);
    BOOST_TEST(std::fabs(s - 1.0) < 1e-5);
    BOOST_TEST(o[mask] < -1e5f);
    // log-softmax of the sigma = 0 logits over the other ids: differences of raw logits are kept
    BOOST_TEST(std::fabs((o[0] - o[1]) - (raw[(size_t)(r * V)] - raw[(size_t)(r * V + 1)])) < 1e-4);
  }
}

// SEDD: log-score = logits - log(e^sigma - 1) - log(V - 1), 0 at the input token.
BOOST_AUTO_TEST_CASE(sedd_log_score_entries) {
  TinyModel m(false, 2);
  const int64_t B = 2, L = 8, V = m.cfg.vocab_size;
  const int32_t mask = (int32_t)V - 1;
  DiTDenoiser den(m.dit, m.ops, DiffusionFamily::sedd, mask);
  std::vector<int32_t> z = some_ids(B * L, V, 3);
  const std::vector<double> sigma = {0.2, 2.0};  // both sides of the expm1 switch at 0.5
  std::vector<float> out((size_t)(B * L * V));
  den.log_probs(z.data(), B, L, sigma.data(), out.data());
  const std::vector<float> raw = m.logits(z, B, L, {0.2f, 2.0f});
  for (int64_t r = 0; r < B * L; ++r) {
    const double sg = sigma[(size_t)(r / L)];
    const double shift = std::log(std::expm1(sg)) + std::log((double)(V - 1));
    for (int64_t v = 0; v < V; ++v) {
      const double expect = v == z[(size_t)r] ? 0.0 : raw[(size_t)(r * V + v)] - shift;
      BOOST_TEST(std::fabs(out[(size_t)(r * V + v)] - expect) < 1e-4);
    }
  }
}

// AR: next_logits(n) equals the full forward's logits at position n-1 (causality), in chunks of max_batch.
BOOST_AUTO_TEST_CASE(causal_next_logits_match_full_forward) {
  TinyModel m(true, 2);
  const int64_t B = 3, L = 8, V = m.cfg.vocab_size;
  const std::vector<int32_t> z = some_ids(B * L, V, 4);
  std::vector<float> full;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> row(z.begin() + b * L, z.begin() + (b + 1) * L);
    const std::vector<float> f = m.logits(row, 1, L, {});
    full.insert(full.end(), f.begin(), f.end());
  }
  DiTCausalLM lm(m.dit, m.ops);
  std::vector<float> next((size_t)(B * V));
  // A prefix of n rows against the full L rows: other GEMM shapes, so other kernels and summation orders may be
  // picked. Each fp32 dot product (K ≤ 4d = 64 terms) is off by at most K·2^-24 ≈ 4e-6 of the sum of its terms'
  // magnitudes, which stay O(1) in this one-block model with weights of O(1/√d): 1e-4 leaves a wide margin.
  for (int64_t n : {1, 4, 7}) {
    lm.next_logits(z.data(), B, L, n, next.data());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t v = 0; v < V; ++v)
        BOOST_TEST(std::fabs(next[(size_t)(b * V + v)] - full[(size_t)((b * L + n - 1) * V + v)]) < 1e-4);
  }
}

// A network whose output is not finite stops sampling with an error, for both adapters (issue 17: NaN weights
// gave normal-looking samples). Finite but huge weights: the load-time finite check passes, the attention overflows.
BOOST_AUTO_TEST_CASE(non_finite_network_output_is_an_error) {
  for (bool causal : {false, true}) {
    TinyModel m(causal, 2);
    const ParamTable& t = m.state.table();
    for (const ParamInfo& p : t.params())
      if (p.name == "backbone.blocks.0.attn_qkv.weight")
        std::fill_n(static_cast<float*>(m.state.params()) + p.offset, p.numel, 3e38f);
    const int64_t B = 2, L = 8, V = m.cfg.vocab_size;
    const std::vector<int32_t> z = some_ids(B * L, V, 5);
    std::vector<float> out((size_t)(B * L * V));
    auto check = [](const Error& e) { return has(e, "sampling: the network's output is not finite"); };
    if (causal) {
      DiTCausalLM lm(m.dit, m.ops);
      BOOST_CHECK_EXCEPTION(lm.next_logits(z.data(), B, L, 3, out.data()), Error, check);
    } else {
      DiTDenoiser den(m.dit, m.ops, DiffusionFamily::uniform, -1);
      const std::vector<double> sigma = {0.5, 1.0};
      BOOST_CHECK_EXCEPTION(den.log_probs(z.data(), B, L, sigma.data(), out.data()), Error, check);
      DiffusionStepArgs a;  // the in-place step (Ops::diffusion_step) as well
      a.alpha_t = 0.3;
      a.alpha_s = 0.5;
      std::vector<int32_t> zz = z;
      BOOST_CHECK_EXCEPTION(den.evaluate_and_update(zz.data(), B, L, sigma.data(), a, nullptr, false), Error, check);
    }
  }
}

// The AR scorer: log p(next token) from the log-softmax with the mask logit at -1e6.
BOOST_AUTO_TEST_CASE(ar_scorer_log_probs) {
  TinyModel m(true, 2);
  const int64_t B = 3, N = 8, V = m.cfg.vocab_size;
  const int32_t mask = (int32_t)V - 1;
  const std::vector<int32_t> ids = some_ids(B * N, V - 1, 5);
  DiTScorer sc(m.dit, m.ops, mask);
  BOOST_TEST(sc.context() == 8);
  std::vector<float> nll;
  const std::vector<int64_t> lengths(B, N);
  sc.target_nll(ids, lengths, B, N, nll);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> row(ids.begin() + b * N, ids.begin() + (b + 1) * N);
    const std::vector<float> f = m.logits(row, 1, N, {});
    for (int64_t j = 0; j + 1 < N; ++j) {
      double mx = -1e30, s = 0;
      for (int64_t v = 0; v < V - 1; ++v) mx = std::max(mx, (double)f[(size_t)(j * V + v)]);
      for (int64_t v = 0; v < V - 1; ++v) s += std::exp(f[(size_t)(j * V + v)] - mx);
      const double expect = f[(size_t)(j * V + row[(size_t)j + 1])] - mx - std::log(s);
      // The scorer's batch of B rows against one row at a time (other GEMM shapes): the logits agree to the
      // fp32 bound of the previous test (K ≤ 64 terms of O(1)), and the log-softmax adds a few ulps of log V.
      BOOST_TEST(std::fabs(-nll[(size_t)(b * (N - 1) + j)] - expect) < 1e-4);
    }
  }
}

// The committed HF folder (V = 67) with DUO, 4 steps, greedy and ancestral tails: ids in range, the same seed
// gives the same samples, another seed others; the JSON output has the reference's keys.
BOOST_AUTO_TEST_CASE(hf_folder_duo_samples_deterministic) {
  for (const std::string tail : {"greedy", "ancestral"}) {
    BOOST_TEST_CONTEXT(tail) {
      SampleOptions o = hf_options(tail);
      SampleJob job(o);
      BOOST_TEST(job.plan().algo == "duo_base");
      BOOST_TEST(job.plan().predictor == "ancestral");
      CpuOps ops;
      const SampleResult a = job.run(ops, nullptr, nullptr);
      BOOST_TEST(a.ids.size() == 3u * 16u);
      for (int32_t id : a.ids) BOOST_TEST((id >= 0 && id < 67));
      BOOST_TEST(a.nfe == 5);                // S + 1 evaluations per sample, as the reference counts
      BOOST_TEST(a.network_calls == 2 * 5);  // two batches (2 + 1 samples)
      BOOST_TEST(a.weights == "Hugging Face weights");
      BOOST_TEST(a.texts.size() == 3u);
      BOOST_TEST((a.entropy > 0 && a.entropy <= std::log(16.0) + 1e-9));
      std::ostringstream bar;
      const SampleResult b = SampleJob(o).run(ops, &bar, nullptr);
      BOOST_TEST(a.ids == b.ids);
      BOOST_TEST_INFO(bar.str());
      BOOST_TEST(bar.str().find("batch 2/2  step 4/4  NFE 5/5 (total 10)") != std::string::npos);
      BOOST_TEST(bar.str().find("ETA") != std::string::npos);
      o.seed = 6;
      BOOST_TEST(run_job(o).ids != a.ids);

      const nlohmann::json j = sample_json(job.plan(), a);
      BOOST_TEST(j["generative_ppl"].is_null());
      BOOST_TEST(j["entropy"].get<double>() == a.entropy);
      BOOST_TEST(j["generated_seqs"].size() == 3u);
      BOOST_TEST(j["generated_seqs"][1].get<std::string>() == a.texts[1]);
      BOOST_TEST(j["nfe"].get<int64_t>() == 5);
      BOOST_TEST(j["network_calls"].get<int64_t>() == 10);
      BOOST_TEST(j["settings"]["noise_removal"].get<std::string>() == tail);
    }
  }
}

// An MDLM Hugging Face folder (kuleshov-group/mdlm-owt layout: model_type mdlm, time_conditioning false):
// the algorithm comes from config.json, MDLM's default predictor is ancestral_cache, no [MASK] is left.
BOOST_AUTO_TEST_CASE(hf_folder_mdlm) {
  test::TempDir dir("sample-hf-mdlm");
  std::filesystem::copy_file(testing::fixture("hf_tiny/model.safetensors"), dir / "model.safetensors");
  testing::write_bytes(dir / "config.json", R"({"model_type": "mdlm", "hidden_dim": 64, "cond_dim": 32,
    "n_blocks": 2, "n_heads": 4, "vocab_size": 67, "model_length": 32, "time_conditioning": false})");
  SampleOptions o = hf_options("ancestral");
  o.checkpoint_path = dir.path.string();
  SampleJob job(o);
  BOOST_TEST(job.plan().algo == "mdlm");
  BOOST_TEST(job.plan().predictor == "ancestral_cache");
  BOOST_TEST(job.plan().mask_id == 66);  // the char vocabulary's [PAD] is the absorbing mask
  const SampleResult r = run_job(o);
  for (int32_t id : r.ids) BOOST_TEST((id >= 0 && id < 66));
  BOOST_TEST((r.nfe >= 2 && r.nfe <= 10));
}

// Infill through duo-sample's --sampling.template (docs/sampling.md §12.1): text, free spans and raw ids at any
// positions; every diffusion family keeps the fixed positions, writes valid ids elsewhere and leaves no [MASK]
// (an absorbing family's 66; for DUO, 66 is [PAD], a state of the uniform chain that it may sample, as the
// reference's does);
// AR accepts a template that is a prefix and refuses one with a gap; malformed templates name the file and cause.
BOOST_AUTO_TEST_CASE(template_fixes_any_positions) {
  test::TempDir dir("sample-template");
  const std::string tpl = dir / "t.txt";
  testing::write_bytes(tpl, "ab[[3]]c[[ids 7 8]]\n");
  const CharTokenizer tok = CharTokenizer::read(char_vocab().path() + "/" + kCharVocabFile);
  const std::vector<uint32_t> ab = tok.encode("ab"), c = tok.encode("c");
  // BOS (V - 2 = 65), a, b, 3 free, c, 7, 8, 3 free (the template ends at position 8 of 12).
  const std::vector<int> fixed = {65, (int)ab[0], (int)ab[1], -1, -1, -1, (int)c[0], 7, 8, -1, -1, -1};
  for (const std::string algo : {"duo_base", "mdlm", "sedd", "d3pm"}) {
    BOOST_TEST_CONTEXT(algo) {
      SampleOptions o;
      o.checkpoint_path = write_checkpoint(dir, algo);
      o.steps = 6;
      o.num_samples = 3;
      o.batch_size = 2;
      o.template_path = tpl;
      SampleJob job(o);
      BOOST_TEST(job.plan().fixed.fixed() == 6);
      CpuOps ops;
      const SampleResult r = job.run(ops, nullptr, nullptr);
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t l = 0; l < 12; ++l) {
          const int32_t id = r.ids[(size_t)(i * 12 + l)];
          if (fixed[(size_t)l] >= 0) BOOST_TEST(id == fixed[(size_t)l], "sample " << i << " position " << l);
          else BOOST_TEST((id >= 0 && id < (algo == "duo_base" ? 67 : 66)), "sample " << i << " position " << l << " id " << id);
        }
      const nlohmann::json j = sample_json(job.plan(), r);
      BOOST_TEST(j["settings"]["template"].get<std::string>() == tpl);
      BOOST_TEST(j["settings"]["fixed_positions"].get<int64_t>() == 6);
    }
  }
  SampleOptions o;
  o.checkpoint_path = write_checkpoint(dir, "ar");
  o.template_path = tpl;
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "only a prefix can condition it"); });
  testing::write_bytes(tpl, "ab[[ids 7]]");
  BOOST_TEST(SampleJob(o).plan().fixed.prefix() == 4);

  o.checkpoint_path = write_checkpoint(dir, "duo_base");
  auto fails = [&](const std::string& text, const std::string& why) {
    testing::write_bytes(tpl, text);
    BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [&](const Error& e) { return has(e, tpl) && has(e, why); });
  };
  fails("a[[x]]", "is neither [[N]]");
  fails("a[[0]]", "is neither [[N]]");
  fails("a[[2 3]]", "is neither [[N]]");
  fails("a[[ids]]", "lists no ids");
  fails("a[[ids 1 z]]", "'z' in the marker");
  fails("a[[ids 67]]", "outside the model's vocabulary of 67");
  fails("a[[3", "has no closing ]]");
  fails("a[[11]]", "covers 13 positions");
  o.template_path = dir / "missing.txt";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "cannot open the sampling template"); });
  testing::write_bytes(tpl, "a");
  o.template_path = tpl;
  o.prefix_ids = {1};
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "both a template and a prefix"); });
}

// A checkpoint's recommended sampler (metadata `sampling`, as duo-train and duo-distill write it) becomes the
// default of duo-sample; explicit options win, and another algorithm than the model's ignores it.
BOOST_AUTO_TEST_CASE(checkpoint_recommends_the_sampler) {
  test::TempDir dir("sample-recommend");
  const std::string path = write_checkpoint(dir, "duo_base");
  {
    Checkpoint ck = Checkpoint::open(path);
    ModelConfig c = ck.config();
    ParamTable t(c);
    std::vector<float> p((size_t)t.total());
    ck.load(Group::Params, t, p.data());
    CheckpointContents cc;
    cc.params = p.data();
    cc.metadata = ck.metadata();
    cc.metadata["sampling"] = {{"steps", 3}, {"noise_removal", "greedy"}, {"predictor", "ancestral"}};
    save_checkpoint(path, t, cc);
  }
  SampleOptions o;
  o.checkpoint_path = path;
  o.num_samples = 1;
  SampleJob job(o);
  BOOST_TEST(job.plan().steps == 3);
  BOOST_TEST(job.plan().noise_removal == "greedy");
  BOOST_TEST(job.plan().predictor == "ancestral");
  BOOST_TEST(run_job(o).nfe == 4);
  o.steps = 7;
  o.noise_removal = "ancestral";
  BOOST_TEST(SampleJob(o).plan().steps == 7);
  BOOST_TEST(SampleJob(o).plan().noise_removal == "ancestral");
  o = SampleOptions{};
  o.checkpoint_path = path;
  o.algo = "duo";  // not the model's algorithm: its recommendation does not apply
  BOOST_TEST(SampleJob(o).plan().steps == 1000);
}

// A Hugging Face folder of a causal model (the reference's AR baseline: model_type AR, causal true) samples as
// an AR model: the algorithm comes from config.json, one call per position, BOS first.
BOOST_AUTO_TEST_CASE(hf_folder_ar) {
  test::TempDir dir("sample-hf-ar");
  ModelConfig c = tiny_config(true, 67);  // a causal DiT has no time embedding and no adaLN
  c.hidden = 64; c.cond_dim = 32; c.n_blocks = 2; c.n_heads = 4; c.length = 32;
  const ParamTable t(c);
  const std::vector<float> w = random_weights(t, 21);
  write_safetensors(dir / "model.safetensors", param_tensors(t, w.data()));
  testing::write_bytes(dir / "config.json", R"({"model_type": "AR", "causal": true, "hidden_dim": 64, "cond_dim": 32,
    "n_blocks": 2, "n_heads": 4, "vocab_size": 67, "model_length": 32, "time_conditioning": false})");
  SampleOptions o = hf_options("ancestral");
  o.checkpoint_path = dir.path.string();
  SampleJob job(o);
  BOOST_TEST(job.plan().algo == "ar");
  const SampleResult r = run_job(o);
  BOOST_TEST(r.nfe == 16 - 1);
  for (int64_t i = 0; i < 3; ++i) BOOST_TEST(r.ids[(size_t)(i * 16)] == 65);  // BOS of the char vocabulary
  o.algo = "duo_base";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "is a causal (AR) model"); });
}

// Checkpoints of every algorithm (tiny models, char tokenizer from the metadata) sample valid ids; MDLM and
// D3PM leave no [MASK] after the ancestral tail; the prefix positions keep their ids; outputs are written.
BOOST_AUTO_TEST_CASE(checkpoint_samples_each_algorithm_with_prefix) {
  test::TempDir dir("sample-ckpt");
  for (const std::string algo : {"duo_base", "mdlm", "sedd", "d3pm", "ar"}) {
    BOOST_TEST_CONTEXT(algo) {
      SampleOptions o;
      o.checkpoint_path = write_checkpoint(dir, algo);
      o.steps = 5;
      o.num_samples = 2;
      o.batch_size = 2;
      o.prefix_ids = {3, 1, 4};
      SampleJob job(o);
      BOOST_TEST(job.plan().length == 12);
      BOOST_TEST(job.plan().mask_id == 66);
      CpuOps ops;
      const SampleResult r = job.run(ops, nullptr, nullptr);
      BOOST_TEST(r.weights == "EMA weights");
      for (int64_t i = 0; i < 2; ++i) {
        BOOST_TEST(r.ids[(size_t)(i * 12)] == 3);
        BOOST_TEST(r.ids[(size_t)(i * 12 + 1)] == 1);
        BOOST_TEST(r.ids[(size_t)(i * 12 + 2)] == 4);
      }
      for (int32_t id : r.ids) BOOST_TEST((id >= 0 && id < 67));
      if (algo == "mdlm" || algo == "d3pm" || algo == "sedd")
        for (int32_t id : r.ids) BOOST_TEST(id != 66);
      if (algo == "ar") BOOST_TEST(r.nfe == 12 - 3);  // positions 3 .. 11
      if (algo == "mdlm") BOOST_TEST(r.nfe <= 6);     // ancestral_cache may skip evaluations
      else if (algo != "ar") BOOST_TEST(r.nfe == 6);

      write_sample_json(dir / "s.json", job.plan(), r);
      write_sample_ids(dir / "ids.txt", r);
      std::ifstream in(dir / "s.json");
      const nlohmann::json j = nlohmann::json::parse(in);
      BOOST_TEST(j["algo"].get<std::string>() == algo);
      std::ifstream ids(dir / "ids.txt");
      std::string line;
      std::getline(ids, line);
      BOOST_TEST(line.rfind("3 1 4 ", 0) == 0);
    }
  }
}

// Ψ-samplers (Paper II) through the job, for the uniform and the absorbing family: a ReMDM-style κ schedule
// runs S + 1 evaluations (no caching under Ψ) and gives valid ids; the settings reach the JSON.
BOOST_AUTO_TEST_CASE(psi_predictor_through_the_job) {
  test::TempDir dir("sample-psi");
  for (const std::string algo : {"duo_base", "mdlm"}) {
    BOOST_TEST_CONTEXT(algo) {
      SampleOptions o;
      o.checkpoint_path = write_checkpoint(dir, algo);
      o.steps = 6;
      o.num_samples = 2;
      o.predictor = "psi";
      o.p_nucleus = 0.9;
      o.psi.high_mode = o.psi.middle_mode = o.psi.low_mode = "max-capped-0.01";
      SampleJob job(o);
      CpuOps ops;
      const SampleResult r = job.run(ops, nullptr, nullptr);
      BOOST_TEST(r.nfe == 7);
      for (int32_t id : r.ids) BOOST_TEST((id >= 0 && id < (algo == "mdlm" ? 66 : 67)));
      const nlohmann::json j = sample_json(job.plan(), r);
      BOOST_TEST(j["settings"]["psi"]["low_mode"].get<std::string>() == "max-capped-0.01");
      BOOST_TEST(j["settings"]["p_nucleus"].get<double>() == 0.9);
    }
  }
}

// The EMA weights are the default; --eval.disable_ema samples the live parameters (other samples).
BOOST_AUTO_TEST_CASE(ema_by_default) {
  test::TempDir dir("sample-ema");
  SampleOptions o;
  o.checkpoint_path = write_checkpoint(dir, "duo_base");
  o.steps = 3;
  o.num_samples = 2;
  const SampleResult ema = run_job(o);
  o.disable_ema = true;
  const SampleResult live = run_job(o);
  BOOST_TEST(live.weights == "parameters");
  BOOST_TEST(ema.ids != live.ids);
}

// Gen PPL with one of our AR checkpoints as the evaluator: a finite perplexity over the counted tokens. The
// samples come from an absorbing model, which leaves no [MASK] (66) by construction: a DUO sample may hold the
// char vocabulary's [PAD] (66 too, a uniform-chain state), which the AR evaluator, like the reference's AR,
// never predicts, so its perplexity would overflow to infinity (docs/evaluation.md §3.4).
BOOST_AUTO_TEST_CASE(gen_ppl_with_ar_checkpoint) {
  test::TempDir dir("sample-genppl");
  SampleOptions o;
  o.checkpoint_path = write_checkpoint(dir, "mdlm");
  o.steps = 3;
  o.num_samples = 3;
  o.batch_size = 2;
  CpuOps ops;
  EvaluatorOptions eo;
  eo.batch_size = 2;
  std::unique_ptr<GenPplEvaluator> ev = load_gen_ppl_evaluator(write_checkpoint(dir, "ar"), ops, eo);
  const SampleResult r = SampleJob(o).run(ops, nullptr, ev.get());
  BOOST_REQUIRE(r.gen_ppl.has_value());
  BOOST_TEST(r.gen_ppl->samples_scored == 3);
  BOOST_TEST(r.gen_ppl->weight > 0);
  BOOST_TEST(std::isfinite(r.gen_ppl->gen_ppl()));
  BOOST_TEST(r.gen_ppl->gen_ppl() > 1.0);
  BOOST_TEST(r.gen_ppl->weight <= 3.0 * 11.0);  // at most the targets 1 .. L-1 of every sample

  // Re-tokenisation for the evaluator: the EOS text becomes the EOS id, the rest goes through the encoder,
  // then truncation to the sample length.
  const Tokenizer& tok = ev->tokenizer();
  const int32_t eos = ev->eos_id();
  BOOST_TEST(eos == 65);
  auto ids_of = [&](const std::string& t) {
    std::vector<int32_t> v;
    for (uint32_t id : tok.encode(t)) v.push_back((int32_t)id);
    return v;
  };
  std::vector<int32_t> expect = ids_of("To be");
  expect.push_back(eos);
  for (int32_t id : ids_of("or")) expect.push_back(id);
  const std::vector<std::vector<int32_t>> rows =
      retokenize({"To be<|endoftext|>or", "abc"}, tok, eos, ev->scorer().vocab_size());
  BOOST_TEST(rows[0] == expect);
  BOOST_TEST(rows[1] == ids_of("abc"));
  // A sampled [PAD] decodes to its text, which the char evaluator knows as its own special token.
  std::vector<int32_t> with_pad = ids_of("To be");
  with_pad.push_back(66);
  for (int32_t id : ids_of("or")) with_pad.push_back(id);
  BOOST_TEST(retokenize({"To be[PAD]or"}, tok, eos, ev->scorer().vocab_size())[0] == with_pad);
  const nlohmann::json j = sample_json(SampleJob(o).plan(), r);
  BOOST_TEST(j["generative_ppl"].get<double>() == r.gen_ppl->gen_ppl());
}

BOOST_AUTO_TEST_CASE(bad_inputs_give_errors) {
  test::TempDir dir("sample-bad");
  const std::string duo_ck = write_checkpoint(dir, "duo_base"), ar_ck = write_checkpoint(dir, "ar");
  auto base = [&](const std::string& path) {
    SampleOptions o;
    o.checkpoint_path = path;
    o.steps = 2;
    return o;
  };
  SampleOptions o = base(duo_ck);
  o.algo = "gpt";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "unknown algorithm 'gpt'"); });
  o = base(duo_ck);
  o.algo = "ar";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "bidirectional"); });
  o = base(ar_ck);
  o.algo = "duo_base";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "is a causal (AR) model"); });
  o = base(duo_ck);
  o.vocab_dir = (dir / "no-such-folder");
  BOOST_CHECK_THROW(SampleJob{o}, Error);  // the tokenizer's own error names the missing file
  o = base(testing::fixture("hf_tiny"));  // defaults to GPT-2 (data/vendor/gpt2): 50258 ids, the model has 67
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "has 67 ids but tokenizer 'gpt2'"); });
  o = base(duo_ck);
  o.predictor = "analytic";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "analytic predictor is SEDD's"); });
  o.predictor = "ancestral_cache";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "only valid for MDLM"); });
  o.predictor = "tweedie";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "unknown predictor"); });
  o = base(duo_ck);
  o.noise_removal = "sharp";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "unknown value 'sharp'"); });
  o = base(duo_ck);
  o.prefix_ids = std::vector<int32_t>(12, 1);
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "the prefix has 12 tokens"); });
  o.prefix_ids = {70};
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "outside the vocabulary"); });
  o = base(write_checkpoint(dir, "sedd"));
  o.predictor = "ancestral";
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "SEDD samples with the analytic"); });
  o.predictor = "analytic";
  o.p_nucleus = 0.9;
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "top-p does not apply"); });
  o = base(write_checkpoint(dir, "mdlm"));
  o.use_float64 = false;
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "needs float64"); });
  o = base(duo_ck);
  o.predictor = "psi";
  o.psi.middle_mode = "sometimes";
  BOOST_CHECK_THROW(SampleJob{o}, Error);  // the Ψ schedule's own error names the mode
  o = base(dir / "missing.safetensors");
  BOOST_CHECK_EXCEPTION(SampleJob{o}, Error, [](const Error& e) { return has(e, "no such file"); });

  CpuOps ops;
  BOOST_CHECK_EXCEPTION(load_gen_ppl_evaluator(duo_ck, ops, {}), Error,
                        [](const Error& e) { return has(e, "not a causal language model"); });
  BOOST_CHECK_EXCEPTION(load_gen_ppl_evaluator("gpt2-large", ops, {}), Error,
                        [](const Error& e) { return has(e, "no such file or folder"); });
  std::filesystem::create_directories(dir / "gpt2");
  testing::write_bytes(dir / "gpt2/config.json", R"({"model_type": "gpt2", "n_embd": 8})");
  BOOST_CHECK_THROW(load_gen_ppl_evaluator(dir / "gpt2", ops, {}), Error);  // an incomplete GPT-2 config
}

// The denoiser's in-place step (Ops::diffusion_step, what the sampling loop uses) draws what the host path draws
// from log_probs' rows: the same functions on the CPU backend, so the same ids bit for bit. Every family, the
// ancestral, Ψ, final and greedy steps, top-k / top-p, fp32 draws, kept positions, and a batch of 3 on a model
// planned for 2 (two chunks: the second chunk's Philox counters continue the first's).
BOOST_AUTO_TEST_CASE(in_place_step_draws_the_host_rows_draws) {
  TinyModel m(false, 2);
  const int64_t B = 3, L = 8, N = B * L, V = m.cfg.vocab_size;
  const int32_t mask = (int32_t)V - 1;
  std::vector<uint8_t> keep((size_t)N, 0);
  keep[1] = keep[10] = keep[17] = 1;
  const std::vector<double> sigma = {0.3, 1.5, 4.0};
  int64_t total_changed = 0;
  for (DiffusionFamily fam : {DiffusionFamily::uniform, DiffusionFamily::mdlm, DiffusionFamily::d3pm,
                              DiffusionFamily::sedd})
  for (int variant = 0; variant < 7; ++variant) {
    const bool sedd = fam == DiffusionFamily::sedd;
    DiffusionStepArgs a;
    a.family = fam;
    a.mask_id = fam == DiffusionFamily::uniform ? -1 : mask;
    a.alpha_t = 0.35;
    a.alpha_s = 0.6;
    a.seed = 77;
    a.step = (uint64_t)variant;
    if (variant == 1) a.psi = true, a.kappa = 0.4;
    if (variant == 2) a.final_step = true;
    if (variant == 3) a.greedy = true;
    if (variant == 4 && !sedd) a.top_k = 3;
    if (variant == 5 && !sedd) a.p_nucleus = 0.8;
    if (variant == 6 && (fam == DiffusionFamily::uniform || sedd)) a.precision = SamplePrecision::f32;
    DiTDenoiser den(m.dit, m.ops, fam, a.mask_id);
    std::vector<int32_t> z = some_ids(N, fam == DiffusionFamily::uniform ? V : V - 1, 9 + (uint64_t)variant);
    if (fam != DiffusionFamily::uniform)
      for (int64_t i = 0; i < N; i += 2) z[(size_t)i] = mask;
    std::vector<int32_t> host = z, dev = z;
    std::vector<float> out((size_t)(N * V));
    den.log_probs(host.data(), B, L, sigma.data(), out.data());
    const int64_t want = diffusion_update_rows(a, out.data(), N, V, keep.data(), host.data());
    const int64_t got = den.evaluate_and_update(dev.data(), B, L, sigma.data(), a, keep.data(), false);
    BOOST_TEST_CONTEXT("family " << int(fam) << " variant " << variant) {
      BOOST_TEST(dev == host);
      BOOST_TEST(got == want);
      for (int64_t i : {1, 10, 17}) BOOST_TEST(dev[(size_t)i] == z[(size_t)i]);
    }
    total_changed += got;
  }
  BOOST_TEST(total_changed > 50);  // the steps do change tokens (the comparison is not of unchanged ids)
}

// A denoiser that offers only log_probs: the sampling loop's host path.
struct HostRowsOnly final : Denoiser {
  Denoiser& inner;
  explicit HostRowsOnly(Denoiser& d) : inner(d) {}
  int64_t vocab_size() const override { return inner.vocab_size(); }
  bool time_conditioned() const override { return inner.time_conditioned(); }
  void log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) override {
    inner.log_probs(z, B, L, sigma, out);
  }
};

// The whole loop: in place and on host rows, the same samples and network calls, including MDLM's ancestral_cache
// (reuse of the last output, within one chunk and across two).
BOOST_AUTO_TEST_CASE(sampling_loop_in_place_equals_host_rows) {
  TinyModel m(false, 2);
  const int64_t L = 8, V = m.cfg.vocab_size;
  AlphaSchedule sched;
  sched.alpha = [](double t) { return 1.0 - (1.0 - 1e-3) * t; };
  for (int64_t B : {2, 3})
  for (DiffusionFamily fam : {DiffusionFamily::uniform, DiffusionFamily::mdlm}) {
    DiffusionSamplerConfig c;
    c.family = fam;
    c.mask_id = fam == DiffusionFamily::uniform ? -1 : (int32_t)V - 1;
    c.predictor = fam == DiffusionFamily::mdlm ? Predictor::ancestral_cache : Predictor::ancestral;
    c.noise_removal = fam == DiffusionFamily::mdlm ? NoiseRemoval::greedy : NoiseRemoval::ancestral;
    c.steps = 12;
    c.seed = 31;
    DiTDenoiser den(m.dit, m.ops, fam, c.mask_id);
    HostRowsOnly host(den);
    std::vector<int32_t> a((size_t)(B * L)), b((size_t)(B * L));
    const SamplerStats sa = sample_diffusion(den, sched, c, B, L, Prompt{}, a.data());
    const SamplerStats sb = sample_diffusion(host, sched, c, B, L, Prompt{}, b.data());
    BOOST_TEST_CONTEXT("B " << B << " family " << int(fam)) {
      BOOST_TEST(a == b);
      BOOST_TEST(sa.nfe == sb.nfe);
      if (fam == DiffusionFamily::mdlm) BOOST_TEST(sa.nfe < c.steps + 1);  // the cache was used
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
