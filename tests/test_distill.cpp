// Discrete Consistency Distillation end to end (docs/distillation.md; src/algo/distill.{h,cpp}, duo-distill's trainer hooks):
// the trajectory latents and α's of the PyTorch fixture, the round schedule, the teacher's refresh and the first
// step's KL, bit-exact resume mid-round (teacher included), and the distilled checkpoint evaluated as DUO base.
#include <boost/test/unit_test.hpp>
#include "metrics_util.h"
#include "tiny_corpus.h"
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include "algo/diffusion_transform.h"
#include "algo/distill.h"
#include "algo/integral_table.h"
#include "math/loss_distill.h"
#include "backend/cpu/cpu_ops.h"
#include "distill_fixture.h"
#include "io/checkpoint.h"
#include "io/weights.h"
#include "io/model_loader.h"
#include "train/distill_config.h"

using namespace duo;
using namespace duo::testing;

namespace {

// The 12-id counting corpus (tiny_corpus.h) and an integral table for V = 12 covering the distillation range.
struct DistillDir : testing::TinyCorpus {
  std::string table;
  DistillDir() : testing::TinyCorpus({300, 11}, {40, 12}), table(integral_table(-6.0, 2.0, 801)) {}
};

TrainConfig tiny_run(const DistillDir& d, const std::string& run) {
  TrainConfig t = testing::tiny_train_config(d, "duo_base", run, 20);
  t.batch_size = 4; t.global_batch_size = 8; t.eval_batch_size = 4;
  t.optim.lr = 2e-3; t.optim.warmup_steps = 2; t.optim.ema = 0;
  return t;
}

DistillSettings tiny_distill(const DistillDir& d, int64_t max_steps) {
  DistillSettings s;
  s.T = 16;
  s.update_teacher_every = 4;  // rounds: steps 0-3 (δ = 1/16), 4-7 (2/16), 8-11 (4/16)
  s.max_steps = max_steps;
  s.integral_path = d.table;
  return s;
}

std::vector<nlohmann::json> metrics(const std::string& path) { return testing::read_metrics(path); }

std::vector<float> group(const Checkpoint& ck, const std::string& prefix) {
  ParamTable table(ck.config());
  std::vector<float> v(table.total());
  load_params(ck.file(), table, v.data(), prefix);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> host(Ops& ops, const Tensor& t) {
  std::vector<float> v(t.numel());
  ops.to_host(v.data(), t);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distill)

BOOST_AUTO_TEST_CASE(trajectory_latents_and_alphas_match_fixture) {
  const auto& fx = distill_fixture();
  const int V = fx.at("V"), L = fx.at("L");
  const double gmin = fx.at("gamma_min"), gmax = fx.at("gamma_max");
  TransformLookup lookup(IntegralTable::compute(DiffusionTransform(V), -6.0, 2.0, 1601), V);
  int differing = 0;
  for (const auto& c : fx.at("cases")) {
    const DistillTimes ts = distill_times(c.at("t0").get<double>(), c.at("delta").get<double>());
    BOOST_TEST(ts.t == c.at("t").get<double>());
    BOOST_TEST(std::fabs(ts.s - c.at("s").get<double>()) < 1e-15);
    BOOST_TEST(lookup.at_time(ts.t, gmin, gmax).alpha == c.at("alpha_t").get<double>(), boost::test_tools::tolerance(1e-8));
    BOOST_TEST(lookup.at_time(ts.s, gmin, gmax).alpha == c.at("alpha_s").get<double>(), boost::test_tools::tolerance(1e-8));
    const std::vector<float> eps = c.at("eps").get<std::vector<float>>();
    const std::vector<int> x = c.at("x").get<std::vector<int>>();
    for (const char* which : {"t", "s"}) {
      double at, st;
      gaussian_scales(c.at(std::string("gamma_") + which).get<double>(), &at, &st);
      const std::vector<int> want = c.at(std::string("z_") + which).get<std::vector<int>>();
      for (int n = 0; n < L; ++n)
        BOOST_TEST(simple_latent_row(eps.data() + (size_t)n * V, V, x[n], (float)at, (float)st, 1.0f, nullptr) == want[n],
                   "z_" << which << " token " << n << " at t = " << c.at("t"));
    }
    differing += c.at("trajectory_differs").get<int>();
  }
  BOOST_TEST(differing > 0);  // the fixture does exercise z_t ≠ z_s
}

BOOST_AUTO_TEST_CASE(round_schedule) {
  DistillSettings d;
  d.T = 8; d.update_teacher_every = 5; d.max_steps = 20;
  BOOST_CHECK_NO_THROW(d.validate());
  for (int64_t k = 0; k < 20; ++k) {
    BOOST_TEST(distill_round(d, k) == k / 5);
    BOOST_TEST(teacher_refresh_due(d, k) == (k % 5 == 0));
    BOOST_TEST(distill_delta(d, k) == std::ldexp(1.0, (int)(k / 5)) / 8.0);  // 1/8, 2/8, 4/8, 8/8
  }
  const DistillTimes clipped = distill_times(0.9, 0.25);
  BOOST_TEST(clipped.t == 1.0);
  BOOST_TEST(clipped.s == 0.75);
  d.max_steps = 21;  // step 20 would use δ = 16/8 > 1
  BOOST_CHECK_THROW(d.validate(), Error);
  d.linear_growth_dt = true;
  d.linear_growth_min = 0.01; d.linear_growth_max = 0.21;
  BOOST_CHECK_NO_THROW(d.validate());
  BOOST_TEST(distill_delta(d, 0) == 0.01);
  BOOST_TEST(std::fabs(distill_delta(d, 7) - (0.01 + 7.0 / 21.0 * 0.2)) < 1e-15);
  BOOST_CHECK_THROW(parse_distill_loss("posterior"), Error);
  BOOST_TEST((parse_distill_loss("kl-fwd") == KlDirection::Forward));
  d = DistillSettings();
  d.update_teacher_every = 0;
  BOOST_CHECK_THROW(d.validate(), Error);
}

// The algorithm on a tiny DiT: the teacher is the student right after a refresh, so the first step's loss is the
// KL between the same model at (z_t, −log α_t) and at (z_s, −log α_s) — computed here by hand — and not zero.
BOOST_AUTO_TEST_CASE(teacher_refresh_and_first_step_kl) {
  DistillDir dd;
  CpuOps ops;
  const ModelConfig mc = tiny_model();
  const int64_t B = 4, L = 8, V = mc.vocab_size, N = B * L;
  ModelState state(mc, ops, true);
  DiTOptions o;
  o.max_batch = B;
  o.max_length = L;
  DiT model(mc, ops, o);
  model.bind(state.params(), state.grads());
  // Random weights everywhere (the reference's init zeroes the output layer, which would make every KL 0).
  std::vector<float> w0(state.table().total());
  Philox init{3, 0};
  for (size_t i = 0; i < w0.size(); ++i) w0[i] = 0.3f * (init.uniform(i) - 0.5f);
  Tensor params = state.flat(state.params()), ema = state.flat(state.ema());
  ops.from_host(params, w0.data());
  ops.copy(ema, params);
  ops.scale(ema, 0.5);  // an EMA that differs from the live weights
  StudentWeights w;
  w.params = [&](Tensor& dst) { ops.copy(dst, state.flat(state.params())); };
  w.ema = [&](Tensor& dst) { ops.copy(dst, state.flat(state.ema())); };
  AlgoSettings as;
  as.name = "duo_base";
  DistillSettings ds = tiny_distill(dd, 12);
  Distillation dist(as, ds, model, w, ops);
  BOOST_TEST(dist.teacher_step() == -1);

  std::vector<int32_t> ids(N);
  std::vector<float> mask(N, 1.0f);
  for (int64_t n = 0; n < N; ++n) ids[n] = (int32_t)((n * 7 + 3) % V);
  MicroBatch mb;
  mb.ids = ids.data(); mb.mask = mask.data(); mb.B = B; mb.L = L;
  mb.t = {0.05, 0.3, 0.62, 0.97};
  mb.noise = Philox{5, 9};
  mb.dropout = Philox{5, 10};
  mb.step = 0;
  const LossSums got = dist.run(mb, /*train=*/true, /*backward=*/false, 1.0);
  BOOST_TEST(dist.teacher_step() == 0);
  BOOST_TEST(same_bits(host(ops, dist.teacher_params()), host(ops, params)));

  // By hand: δ = 1/16, shared ε, the same weights at both times.
  TransformLookup lookup = TransformLookup::open(dd.table, V);
  CurriculumSettings range;
  range.gamma_min = ds.gamma_min; range.gamma_max = ds.gamma_max;
  std::vector<CurriculumSequence> qt(B), qs(B);
  std::vector<float> sigma_t(B), sigma_s(B);
  for (int64_t b = 0; b < B; ++b) {
    const DistillTimes ts = distill_times(mb.t[b], 1.0 / 16);
    qt[b] = curriculum_sequence(lookup, range, ts.t);
    qs[b] = curriculum_sequence(lookup, range, ts.s);
    sigma_t[b] = (float)qt[b].sigma;
    sigma_s[b] = (float)qs[b].sigma;
  }
  std::vector<int32_t> z_t(N), z_s(N);
  CurriculumBatch cb;
  cb.x = ids.data(); cb.B = B; cb.L = L; cb.V = V; cb.noise = mb.noise;
  cb.seq = qt.data();
  simple_latent_rows(cb, 0, N, nullptr, z_t.data());
  cb.seq = qs.data();
  simple_latent_rows(cb, 0, N, nullptr, z_s.data());
  BOOST_TEST(z_t != z_s);  // a real step between the two times
  auto logits = [&](std::vector<int32_t>& z, std::vector<float>& sigma) {
    DiTInput in;
    in.ids = Tensor(z.data(), DType::I32, {B, L});
    in.sigma = Tensor(sigma.data(), DType::F32, {B});
    return host(ops, model.forward(in, B, L, false, mb.dropout));
  };
  const std::vector<float> teacher = logits(z_s, sigma_s), student = logits(z_t, sigma_t);
  double want = 0;
  for (int64_t n = 0; n < N; ++n)
    want += distill_kl_row(student.data() + n * V, teacher.data() + n * V, (int)V, false, (float*)nullptr);
  BOOST_TEST(got.weight == (double)N);
  BOOST_TEST(got.loss == want, boost::test_tools::tolerance(1e-5));
  BOOST_TEST(got.loss / N > 1e-4);  // not zero: the same model at two noise levels

  // Within the round the teacher stays; at step N it follows the student again.
  ops.scale(params, 1.01);
  mb.step = 1;
  dist.run(mb, true, false, 1.0);
  BOOST_TEST(dist.teacher_step() == 0);
  BOOST_TEST(!same_bits(host(ops, dist.teacher_params()), host(ops, params)));
  mb.step = 4;
  dist.run(mb, /*train=*/false, false, 1.0);  // validation never refreshes
  BOOST_TEST(dist.teacher_step() == 0);
  dist.run(mb, true, false, 1.0);
  BOOST_TEST(dist.teacher_step() == 4);
  BOOST_TEST(same_bits(host(ops, dist.teacher_params()), host(ops, params)));

  // Algorithm 2: the EMA weights.
  ds.teacher_ema = true;
  Distillation ema_dist(as, ds, model, w, ops);
  mb.step = 8;
  ema_dist.run(mb, true, false, 1.0);
  BOOST_TEST(same_bits(host(ops, ema_dist.teacher_params()), host(ops, ema)));
  StudentWeights no_ema;
  no_ema.params = w.params;
  BOOST_CHECK_THROW(Distillation(as, ds, model, no_ema, ops), Error);
}

BOOST_AUTO_TEST_CASE(resume_mid_round_is_bit_exact_and_checkpoints_load_as_duo_base) {
  DistillDir dd;
  CpuOps ops;
  // The model to distil: a short DUO base run.
  TrainConfig base = tiny_run(dd, "base");
  base.checkpoint_every = 20;
  Trainer(base, ops).run();
  const std::string init = base.save_dir + "/last.safetensors";

  TrainConfig full = tiny_run(dd, "full");
  full.finetune_path = init;
  full.max_steps = full.optim.max_steps = 10;
  full.checkpoint_every = 2;
  full.optim.ema = 0.99;
  full.model.dropout = 0.1f;  // the student's and the teacher's dropout streams must resume too
  full.val_check_interval = 5;
  full.limit_val_batches = 2;
  const DistillSettings ds = tiny_distill(dd, full.max_steps);
  Trainer(full, ops, distill_hooks(full, ds)).run();

  // Teacher refreshes at steps 0, 4, 8: checkpoint step_k (k updates done) holds the teacher of the round of k−1.
  const Checkpoint first = Checkpoint::open(init);
  auto teacher_of = [&](int k) { return Checkpoint::open(full.save_dir + "/step_" + std::to_string(k) + ".safetensors"); };
  BOOST_TEST(same_bits(group(teacher_of(2), "teacher."), group(first, "")));
  BOOST_TEST(teacher_of(2).metadata().at("distillation").at("teacher_step").get<int64_t>() == 0);
  BOOST_TEST(same_bits(group(teacher_of(6), "teacher."), group(teacher_of(4), "")));
  BOOST_TEST(same_bits(group(teacher_of(8), "teacher."), group(teacher_of(4), "")));
  BOOST_TEST(same_bits(group(teacher_of(10), "teacher."), group(teacher_of(8), "")));
  BOOST_TEST(teacher_of(10).metadata().at("distillation").at("teacher_step").get<int64_t>() == 8);
  // Self-describing: the round and δ of the weights (last step taken: k − 1) and the sampler they are for, 1/δ
  // steps with the greedy tail; the base model recommends the reference's 1000 ancestral steps.
  for (auto [k, round, steps] : std::vector<std::tuple<int, int64_t, int64_t>>{{6, 1, 8}, {10, 2, 4}}) {
    const nlohmann::json md = teacher_of(k).metadata();
    BOOST_TEST(md.at("distillation").at("round").get<int64_t>() == round);
    BOOST_TEST(md.at("distillation").at("delta").get<double>() == (double)(1 << round) / 16.0);
    BOOST_TEST(md.at("sampling").at("steps").get<int64_t>() == steps);
    BOOST_TEST(md.at("sampling").at("noise_removal").get<std::string>() == "greedy");
  }
  BOOST_TEST(first.metadata().at("sampling").at("steps").get<int64_t>() == 1000);
  BOOST_TEST(first.metadata().at("T").get<int64_t>() == 0);

  // The first step's KL: the fine-tuned model against itself at a slightly less noisy time, not zero.
  std::map<int64_t, double> loss_full, loss_part;
  for (const auto& j : metrics(full.metrics_path))
    if (j.contains("train/loss")) loss_full[j["step"]] = j["train/loss"];
  BOOST_TEST(loss_full.at(1) > 1e-5);

  // Resume from step 6 (mid-round 1) and cross the refresh at step 8.
  TrainConfig part = testing::resumed_from(full, 6, dd, "part");
  Trainer(part, ops, distill_hooks(part, ds)).run();
  for (const auto& j : metrics(part.metrics_path))
    if (j.contains("train/loss")) loss_part[j["step"]] = j["train/loss"];
  BOOST_TEST(loss_part.size() == 4u);
  for (auto [step, l] : loss_part) BOOST_TEST(l == loss_full.at(step), "step " << step);  // exactly equal
  const Checkpoint x = Checkpoint::open(full.save_dir + "/last.safetensors");
  const Checkpoint y = Checkpoint::open(part.save_dir + "/last.safetensors");
  for (const char* prefix : {"", "ema.", "optim.m.", "optim.v.", "teacher."})
    BOOST_TEST(same_bits(group(x, prefix), group(y, prefix)), "group " << prefix);

  // The distilled checkpoint is a DUO base checkpoint: duo-eval's path (EMA weights, make_algorithm("duo_base"))
  // reproduces the run's own NELBO validation of those weights.
  BOOST_TEST(x.metadata().at("algo").get<std::string>() == "duo_base");
  BOOST_TEST(x.metadata().at("distillation").at("distilled_from").get<std::string>() == init);
  double logged = -1;
  for (const auto& j : metrics(full.metrics_path))
    if (j.contains("val/duo_base/nll")) logged = j["val/duo_base/nll"];
  BOOST_TEST(logged > 0);
  ModelState state(x.config(), ops, false);
  x.load(Group::Ema, state.table(), static_cast<float*>(state.params()));
  DiTOptions o;
  o.max_batch = full.eval_batch_size;
  o.training = false;
  DiT model(x.config(), ops, o);
  model.bind(state.params(), nullptr);
  LoaderConfig lc;
  lc.length = x.config().length;
  lc.batch_size = full.eval_batch_size;
  lc.shuffle = false;
  lc.infinite = false;
  Loader valid({full.valid_glob}, lc);
  TrainConfig eval_cfg;
  eval_cfg.algo = x.metadata().at("algo").get<std::string>();
  auto nelbo = make_algorithm(algo_settings(eval_cfg, data_vocab(valid, full.valid_glob)), model, ops);
  EvalOptions eo;
  eo.seed = full.seed;
  eo.limit_batches = full.limit_val_batches;
  const EvalResult r = evaluate(*nelbo, valid, eo);
  BOOST_TEST(r.nll == logged, boost::test_tools::tolerance(1e-6));

  // The samplers' loader sees a DUO base model and takes its EMA weights; the teacher tensors are ignored.
  const ModelInfo info = inspect_model(full.save_dir + "/last.safetensors");
  BOOST_TEST(info.algo == "duo_base");
  BOOST_TEST(info.has_ema);
  const LoadedModel lm = load_model(info, ops, 2, 0, true);
  BOOST_TEST(lm.weights == "EMA weights");
  std::vector<float> sampler_weights(state.table().total()), eval_weights(state.table().total());
  ops.to_host(sampler_weights.data(), lm.flat_params());
  ops.to_host(eval_weights.data(), state.flat(state.params()));
  BOOST_TEST(same_bits(sampler_weights, eval_weights));
}

BOOST_AUTO_TEST_CASE(bad_distillation_setups) {
  DistillDir dd;
  CpuOps ops;
  TrainConfig base = tiny_run(dd, "base");
  base.max_steps = base.optim.max_steps = 2;
  base.checkpoint_every = 2;
  Trainer(base, ops).run();
  // Resuming a plain DUO base checkpoint as a distillation: no teacher.
  TrainConfig t = tiny_run(dd, "base");
  t.resume = true;
  t.max_steps = t.optim.max_steps = 4;
  BOOST_CHECK_THROW(Trainer(t, ops, distill_hooks(t, tiny_distill(dd, 4))), Error);
  // Another algorithm for the student.
  t = tiny_run(dd, "other");
  t.algo = "mdlm";
  BOOST_CHECK_THROW(distill_hooks(t, tiny_distill(dd, 20)), Error);
  // A γ range outside the integral table.
  t = tiny_run(dd, "range");
  t.finetune_path = base.save_dir + "/last.safetensors";
  DistillSettings d = tiny_distill(dd, 20);
  d.gamma_min = -8.0;
  BOOST_CHECK_THROW(Trainer(t, ops, distill_hooks(t, d)), Error);
  // Resuming with another schedule.
  TrainConfig run = tiny_run(dd, "sched");
  run.finetune_path = base.save_dir + "/last.safetensors";
  run.max_steps = run.optim.max_steps = 2;
  run.checkpoint_every = 2;
  Trainer(run, ops, distill_hooks(run, tiny_distill(dd, 2))).run();
  run.finetune_path.clear();
  run.resume = true;
  run.max_steps = run.optim.max_steps = 4;
  d = tiny_distill(dd, 4);
  d.update_teacher_every = 3;
  BOOST_CHECK_THROW(Trainer(run, ops, distill_hooks(run, d)), Error);
}

BOOST_AUTO_TEST_SUITE_END()
