#include "train/trainer.h"

#include <optional>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include "core/rng_streams.h"
#include "core/timer.h"
#include "data/tokenizer.h"
#include "io/checkpoint.h"
#include "model/flops.h"
#include "train/grad_sum.h"

namespace duo {

namespace fs = std::filesystem;

DataVocab data_vocab(const Loader& loader, const std::string& shard_glob) {
  DataVocab v;
  v.tokenizer = loader.info().tokenizer;
  v.vocab_size = loader.info().vocab_size;
  SpecialIds sp = special_ids_for(v.tokenizer, v.vocab_size);
  v.mask_id = (int32_t)(sp.mask >= 0 ? sp.mask : sp.pad);
  const fs::path dir = fs::path(shard_glob).parent_path();
  if (v.tokenizer == "char" && fs::exists(dir / "vocab_chars.txt")) v.vocab_dir = dir.string();
  return v;
}

AlgoSettings algo_settings(const TrainConfig& cfg, const DataVocab& vocab) {
  AlgoSettings s;
  s.name = cfg.algo;
  s.mask_id = vocab.mask_id;
  s.schedule = Schedule::from_name(cfg.noise, cfg.noise_eps, cfg.reference_bugs);
  s.T = (int)cfg.T;
  s.reference_bugs = cfg.reference_bugs;
  const CurriculumConfig& c = cfg.curriculum;
  s.curriculum.tau_log10_start = c.tau_log10_start;
  s.curriculum.tau_log10_end = c.tau_log10_end;
  s.curriculum.start = c.start;
  s.curriculum.end = c.end;
  s.curriculum.gamma_min = c.gamma_min;
  s.curriculum.gamma_max = c.gamma_max;
  s.curriculum_mode = c.mode;
  s.top_k = (int)c.top_k;
  s.integral_path = c.integral_cache_path;
  s.nearest_lookup = c.nearest_lookup;
  return s;
}

DiTOptions training_dit_options(const TrainConfig& cfg, bool full_logits) {
  DiTOptions o;
  o.full_logits = full_logits;
  o.max_batch = std::max(cfg.batch_size, cfg.eval_batch_size);
  o.soft_input = cfg.algo == "duo" && cfg.curriculum.mode == "simple";
  o.bag_k = cfg.algo == "duo" && cfg.curriculum.mode == "efficient" ? cfg.curriculum.top_k : 0;
  return o;
}

namespace {

std::string fmt_duration(double s) {
  char b[32];
  if (s < 60) std::snprintf(b, sizeof b, "%.0fs", s);
  else if (s < 3600) std::snprintf(b, sizeof b, "%dm%02ds", (int)s / 60, (int)s % 60);
  else std::snprintf(b, sizeof b, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
  return b;
}

// The first architecture field in which a checkpoint's model differs from this run's, as "--option is a in this
// run but b in the checkpoint" ("" when they agree). Dropout is not architecture: a resumed run may change it.
std::string architecture_difference(const ModelConfig& ckpt, const ModelConfig& run) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> fields[] = {
      {"--vocab_size", {ckpt.vocab_size, run.vocab_size}}, {"--model.hidden_size", {ckpt.hidden, run.hidden}},
      {"--model.n_blocks", {ckpt.n_blocks, run.n_blocks}},  {"--model.n_heads", {ckpt.n_heads, run.n_heads}},
      {"--model.cond_dim", {ckpt.cond_dim, run.cond_dim}},  {"--model.length", {ckpt.length, run.length}},
      {"--causal", {ckpt.causal, run.causal}}};
  for (const auto& [option, values] : fields)
    if (values.first != values.second)
      return str(option, " is ", values.second, " in this run but ", values.first, " in the checkpoint");
  return "";
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, Ops& ops, TrainerHooks hooks, Comm& comm)
    : cfg_(cfg), ops_(ops), comm_(comm), hooks_(std::move(hooks)) {
  // --loader.global_batch_size holds for every world size: each rank runs global / (ranks × batch) micro-batches.
  const int64_t ranks = comm_.size(), per_step = ranks * cfg_.batch_size;
  DUO_CHECK(cfg_.global_batch_size % per_step == 0, "--loader.global_batch_size",
            str(cfg_.global_batch_size, " is not a multiple of ", ranks, " ranks x --loader.batch_size ", cfg_.batch_size),
            str("use a global batch that is a multiple of ", per_step, ", or another --loader.batch_size or number of ranks"));
  micro_per_rank_ = cfg_.global_batch_size / per_step;
  LoaderConfig tl = loader_config(cfg_, true), vl = loader_config(cfg_, false);
  tl.rank = vl.rank = comm_.rank();
  tl.world_size = vl.world_size = ranks;
  tl.accum_steps = micro_per_rank_;
  train_ = std::make_unique<Loader>(std::vector<std::string>{cfg_.train_glob}, tl);
  vocab_ = data_vocab(*train_, cfg_.train_glob);
  if (!cfg_.valid_glob.empty()) valid_ = std::make_unique<Loader>(std::vector<std::string>{cfg_.valid_glob}, vl);
  // The model vocabulary comes from the data; an explicit --vocab_size must agree with it.
  ModelConfig& m = cfg_.model;
  DUO_CHECK(!cfg_.vocab_given || m.vocab_size == vocab_.vocab_size, "--vocab_size",
            str(m.vocab_size, " differs from the data's vocabulary ", vocab_.vocab_size, " (", vocab_.tokenizer, ")"),
            "drop --vocab_size: the model vocabulary is taken from the shards");
  m.vocab_size = vocab_.vocab_size;
  m.validate("model options");

  const DiTOptions o = training_dit_options(cfg_, hooks_.full_logits);
  // ZeRO-1: this rank keeps the optimizer state of its part of the flat parameter vector.
  const bool zero1 = cfg_.zero1 && ranks > 1;
  state_ = std::make_unique<ModelState>(m, ops_, true, DType::F32,
                                        zero1 ? zero1_shard(m, comm_.rank(), (int)ranks) : RankRange{});
  model_ = std::make_unique<DiT>(m, ops_, o);
  model_->bind(state_->params(), state_->grads());
  algo_ = hooks_.algorithm ? hooks_.algorithm(*model_, *state_, vocab_, comm_)
                           : make_algorithm(algo_settings(cfg_, vocab_), *model_, ops_);
  for (const std::string& name : hooks_.extra_validation) {
    AlgoSettings s = algo_settings(cfg_, vocab_);
    s.name = name;
    extra_val_.emplace_back(name, make_algorithm(s, *model_, ops_));
  }

  // One run per save dir at a time, no mixing with a previous run's files, no debris of killed writers
  // (train/run_dir.h, README "Failure behaviour"). Rank 0 alone writes there.
  const bool writer = comm_.rank() == 0;
  if (writer) run_dir_ = std::make_unique<RunDir>(cfg_.save_dir, hooks_.program);
  if (cfg_.resume && fs::exists(cfg_.resume_path)) {
    load_resume(cfg_.resume_path);
  } else {
    DUO_CHECK(!cfg_.resume || cfg_.resume_path == cfg_.save_dir + "/last.safetensors", "--checkpointing.resume_ckpt_path",
              "no checkpoint at " + cfg_.resume_path, "check the path, or drop --checkpointing.resume_from_ckpt");
    model_->init_parameters(cfg_.seed);
    if (!cfg_.finetune_path.empty()) load_finetune(cfg_.finetune_path);
    state_->reset_ema();
    if (writer) clear_previous_run();
  }
  // A resumed run cuts the metrics back to its checkpoint's step; a new one starts an empty file.
  if (writer) metrics_ = std::make_unique<MetricsLog>(cfg_.metrics_path, state_->step > 0 ? state_->step : -1);

  const int64_t params = state_->table().total();
  std::printf("%s: %s on %s, %s\n", hooks_.program.c_str(), algo_->settings().name.c_str(), ops_.name(),
              m.describe().c_str());
  std::printf("  compute: %s\n", ops_.describe().c_str());
  std::printf("  data: %s (%s, vocab %ld, %ld blocks of %ld)%s\n", cfg_.train_glob.c_str(), vocab_.tokenizer.c_str(),
              (long)vocab_.vocab_size, (long)train_->n_blocks(), (long)m.length,
              valid_ ? (", validation " + std::to_string(valid_->n_blocks()) + " blocks").c_str() : "");
  if (ranks == 1 && std::string(comm_.name()) == "single")
    std::printf("  parameters %s; batch %ld x %ld accumulation = %ld sequences per step\n", with_commas(params).c_str(),
                (long)cfg_.batch_size, (long)micro_per_rank_, (long)cfg_.global_batch_size);
  else
    std::printf("  parameters %s; batch %ld x %ld accumulation x %ld ranks (%s) = %ld sequences per step\n",
                with_commas(params).c_str(), (long)cfg_.batch_size, (long)micro_per_rank_, (long)ranks, comm_.name(),
                (long)cfg_.global_batch_size);
  std::printf("  memory: parameters, gradients, Adam moments, EMA %s%s; activations:\n%s",
              human_bytes((double)state_->bytes()).c_str(),
              state_->sharded() ? str(" (ZeRO-1: moments and EMA of ", with_commas(state_->shard().end - state_->shard().begin),
                                      " parameters on this rank)").c_str() : "",
              model_->memory_plan().c_str());
  if (cfg_.algo == "duo" && o.soft_input) {
    SimpleMemory sm = simple_memory(cfg_.batch_size, m.length, m.vocab_size, cfg_.batch_size * m.length);
    std::printf("  curriculum (simple): soft input %s (+ the DiT's softmax copy above); the reference keeps %s\n",
                human_bytes((double)sm.total).c_str(), human_bytes((double)sm.reference).c_str());
  }
  std::printf("%s", algo_->memory_report().c_str());
  if (ops_.peak_flops() > 0)
    std::printf("  MFU against a dense bf16 peak of %.0f TFLOP/s, %.3g GFLOP per training token\n",
                ops_.peak_flops() / 1e12, training_flops_per_token(m) / 1e9);
  if (state_->step > 0) std::printf("  resumed at step %ld\n", (long)state_->step);
  if (writer)
    for (const std::string& f : run_dir_->removed_temporaries())
    std::printf("  removed %s, the temporary file of a writer that was killed\n", f.c_str());
  std::fflush(stdout);
}

void Trainer::log_json(const nlohmann::json& j) {
  if (metrics_) metrics_->append(j);
}

void Trainer::clear_previous_run() {
  const std::vector<std::string> files = run_dir_->run_files(cfg_.metrics_path);
  if (files.empty()) return;
  std::string list;
  for (const std::string& f : files) list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
  DUO_CHECK(cfg_.overwrite, cfg_.save_dir, "holds the files of a previous run (" + list + ")",
            "resume it with --checkpointing.resume_from_ckpt true, give the new run another "
            "--checkpointing.save_dir, or pass --checkpointing.overwrite true to delete those files first");
  std::error_code ec;
  for (const std::string& f : files) {
    // The fine-tuning source was read above, but deleting a user's input is never what --overwrite means.
    DUO_CHECK(cfg_.finetune_path.empty() || !fs::equivalent(f, cfg_.finetune_path, ec), "--training.finetune_path",
              cfg_.finetune_path + " is a file of the run that --checkpointing.overwrite would delete",
              "fine-tune into another --checkpointing.save_dir");
  }
  for (const std::string& f : files) {
    DUO_CHECK(fs::remove(f, ec) || !fs::exists(f), f, "cannot delete it: " + ec.message(), "check the permissions");
    std::printf("  --checkpointing.overwrite: removed %s\n", f.c_str());
  }
}

std::string Trainer::restart_hint() const {
  const std::string last = cfg_.save_dir + "/last.safetensors";
  if (fs::exists(last))
    return "the last checkpoint, " + last + ", is intact: resume from it with --checkpointing.resume_from_ckpt true";
  return "this run has written no checkpoint yet";
}

nlohmann::json Trainer::metadata() const {
  nlohmann::json j;
  j["algo"] = cfg_.algo;
  j["step"] = state_->step;
  j["ema_updates"] = state_->ema_updates;
  j["tokenizer"] = vocab_.tokenizer;
  j["vocab_dir"] = vocab_.vocab_dir;
  j["mask_id"] = vocab_.mask_id;
  j["noise"] = cfg_.noise;
  j["noise_eps"] = cfg_.noise_eps;
  j["seed"] = cfg_.seed;
  j["best_val_nll"] = best_val_;
  j["data_position"] = train_->position();
  // How the model was trained and how to sample it (docs/training.md §9.1): the defaults of duo-sample/duo-eval.
  j["T"] = cfg_.T;
  if (cfg_.algo == "duo")
    j["curriculum"] = {{"mode", cfg_.curriculum.mode},
                       {"tau_log10_start", cfg_.curriculum.tau_log10_start},
                       {"tau_log10_end", cfg_.curriculum.tau_log10_end},
                       {"start", cfg_.curriculum.start},
                       {"end", cfg_.curriculum.end},
                       {"gamma_min", cfg_.curriculum.gamma_min},
                       {"gamma_max", cfg_.curriculum.gamma_max},
                       {"top_k", cfg_.curriculum.top_k}};
  if (cfg_.algo != "ar") j["sampling"] = {{"steps", 1000}, {"noise_removal", "ancestral"}};  // the reference's defaults
  return j;
}

void Trainer::save(const std::string& path) {
  // One file whatever the world size: with ZeRO-1 every rank takes part in gathering the moments and the EMA,
  // then rank 0 alone writes.
  const bool writer = comm_.rank() == 0;
  if (!writer && !state_->sharded()) return;
  auto whole = [&](void* buffer) {
    if (!state_->sharded()) return state_->download(buffer);
    void* full = state_->gather(buffer, comm_);
    std::vector<float> host = state_->download(full);
    ops_.release(full);
    return host;
  };
  const std::vector<float> p = state_->download(state_->params()), e = whole(state_->ema());
  const std::vector<float> m = whole(state_->adam_m()), v = whole(state_->adam_v());
  if (!writer) return;
  CheckpointContents c;
  c.params = p.data();
  c.ema = cfg_.optim.ema > 0 ? e.data() : p.data();  // EMA off: the shadow is the live weights (decay 0)
  c.adam_m = m.data();
  c.adam_v = v.data();
  c.metadata = metadata();
  algo_->save_state(c);
  save_checkpoint(path, state_->table(), c);
}

void Trainer::load_resume(const std::string& path) {
  Checkpoint ck = Checkpoint::open(path);
  const ModelConfig& have = ck.config();
  // Every architecture field, not only the parameter count: 2 heads and 4 heads have the same weights' shapes,
  // and a run resumed with the other would train (and save) a different model without a word.
  const std::string difference = architecture_difference(have, cfg_.model);
  DUO_CHECK(difference.empty(), path,
            "the checkpoint's model (" + have.describe() + ") differs from this run's (" + cfg_.model.describe() +
                "): " + difference,
            "resume with the same model options, or start a new run with --training.finetune_path");
  const nlohmann::json& md = ck.metadata();
  DUO_CHECK(md.value("algo", cfg_.algo) == cfg_.algo, path, "checkpoint of --algo " + md.value("algo", std::string()),
            "resume with the same algorithm, or fine-tune with --training.finetune_path");
  std::vector<float> host((size_t)state_->table().total());
  const std::pair<Group, void*> groups[] = {{Group::Params, state_->params()}, {Group::Ema, state_->ema()},
                                            {Group::AdamM, state_->adam_m()}, {Group::AdamV, state_->adam_v()}};
  const RankRange shard = state_->shard();
  for (auto [g, buffer] : groups) {
    ck.load(g, state_->table(), host.data());
    if (g == Group::Params || !state_->sharded()) state_->upload(buffer, host);
    else state_->upload(buffer, std::vector<float>(host.begin() + shard.begin, host.begin() + shard.end));
  }
  state_->step = md.at("step").get<int64_t>();
  state_->ema_updates = md.at("ema_updates").get<int64_t>();
  best_val_ = md.value("best_val_nll", 1e300);
  train_->restore(md.at("data_position").get<LoaderPosition>());
  algo_->load_state(ck);
}

void Trainer::load_finetune(const std::string& path) {
  // The reference's second stage: the weights (and EMA) of a first run, fresh optimizer state and step count.
  Checkpoint ck = Checkpoint::open(path);
  DUO_CHECK(ParamTable(ck.config()).total() == state_->table().total() && ck.config().causal == cfg_.model.causal,
            path, "the checkpoint's model (" + ck.config().describe() + ") differs from this run's",
            "fine-tune with the same model options as the first stage");
  std::vector<float> host((size_t)state_->table().total());
  ck.load(Group::Params, state_->table(), host.data());
  state_->upload(state_->params(), host);
}

EvalResult Trainer::validate(std::vector<std::pair<std::string, EvalResult>>& extra) {
  const bool ema = cfg_.optim.ema > 0;
  // ZeRO-1: the EMA weights gathered into a temporary full buffer for the evaluation.
  void* gathered = ema && state_->sharded() ? state_->gather(state_->ema(), comm_) : nullptr;
  if (gathered) model_->bind(gathered, state_->grads());
  else if (ema) {
    state_->swap_params_and_ema();
    model_->bind(state_->params(), state_->grads());
  }
  EvalOptions eo;
  eo.seed = cfg_.seed;
  eo.limit_batches = cfg_.limit_val_batches;
  eo.antithetic = cfg_.antithetic_sampling;
  eo.sampling_eps = cfg_.sampling_eps;
  eo.uses_time = cfg_.algo != "ar";
  eo.step = state_->step;
  EvalResult r = evaluate(*algo_, *valid_, eo, comm_);
  extra.clear();
  for (auto& [name, algo] : extra_val_) extra.emplace_back(name, evaluate(*algo, *valid_, eo, comm_));
  if (gathered) {
    model_->bind(state_->params(), state_->grads());
    ops_.release(gathered);
  } else if (ema) {
    state_->swap_params_and_ema();
    model_->bind(state_->params(), state_->grads());
  }
  return r;
}

EvalResult Trainer::run() {
  // Micro-batch k of rank r is micro-batch m = r·A + k of the step's global batch (A = micro_per_rank_): its rows
  // (the loader's order), its times (the global batch's slice), its noise and dropout streams are those of m.
  const int64_t B = cfg_.batch_size, L = cfg_.model.length, accum = cfg_.global_batch_size / B;
  const int64_t ranks = comm_.size(), A = micro_per_rank_;
  GradientSum grads(*state_, comm_, A);
  grads.overlap_with(*model_, algo_->backward_passes());  // NCCL: the ranks' sum in buckets during the backward
  if (grads.bucketed())
    std::printf("  gradient sum: %zu buckets over %s, each started as the backward completes it\n",
                grads.bucket_count(), comm_.name());
  TimeSampler sampler;
  sampler.antithetic = cfg_.antithetic_sampling;
  sampler.sampling_eps = cfg_.sampling_eps;
  EvalResult last_val;
  Timer clock, interval;
  double interval_loss = 0, interval_weight = 0, interval_tokens = 0;
  const int64_t first_step = state_->step;
  Batch batch;
  while (state_->step < cfg_.max_steps) {
    const int64_t step = state_->step;
    grads.begin_step();
    LossSums total;
    // The weights stay as they are until the optimizer step: the backend may keep converted copies meanwhile.
    std::optional<FrozenWeights> frozen(std::in_place, ops_, state_->params(), model_->param_bytes());
    for (int64_t k = 0; k < A; ++k) {
      const int64_t micro = comm_.rank() * A + k;
      train_->next(batch);
      MicroBatch mb;
      mb.ids = batch.ids.data();
      mb.mask = batch.mask.data();
      mb.B = B;
      mb.L = L;
      mb.t = sampler.sample(Philox{cfg_.seed, stream_id(step, streams::kTrainTimes)}, cfg_.global_batch_size, micro * B, B);
      mb.noise = Philox{cfg_.seed, stream_id(step, micro, streams::kTrainNoise)};
      mb.token_offset = 0;
      mb.dropout = Philox{cfg_.seed, stream_id(step, micro, streams::kTrainDropout)};
      mb.step = step;
      // The reference: each micro-batch's loss is its token mean; accumulation averages the micro-batches.
      const double w = algo_->counted_weight(mb);
      LossSums s;
      grads.begin_micro();
      try {
        s = algo_->run(mb, /*train=*/true, /*backward=*/true, w > 0 ? 1.0 / (w * accum) : 0.0);
      } catch (const Error& e) {
        fail(str("step ", step, ": ", e.where()), e.problem(), e.hint() + "; " + restart_hint());
      }
      total.loss += s.weight > 0 ? s.loss / s.weight / accum : 0.0;
      total.weight += s.weight;
      interval_tokens += (double)B * L;
      grads.end_micro();
    }
    frozen.reset();
    grads.end_step();
    double sums[2] = {total.loss, total.weight};
    comm_.all_reduce_sum(sums, 2);
    total.loss = sums[0];
    total.weight = sums[1];
    const double grad_norm = state_->grad_norm(comm_);
    DUO_CHECK(std::isfinite(grad_norm), str("step ", step), "the gradient norm is not finite",
              "the weights loaded finite (checked at load time), so training diverged: lower --optim.lr or raise "
              "the warm-up; " + restart_hint());
    const double lr = learning_rate(cfg_.optim, step);
    state_->optimizer_step(cfg_.optim, grad_norm);
    if (state_->sharded())  // ZeRO-1: each rank updated its part of the weights
      comm_.all_gather(static_cast<float*>(state_->params()), (size_t)state_->table().total());
    interval_loss += total.loss;
    interval_weight += 1;

    const int64_t done = state_->step;
    if (done % cfg_.log_every == 0 || done == cfg_.max_steps) {
      // Tokens per second of the whole run (the ranks step in lockstep) and of one rank.
      const double secs = interval.seconds(), tps_rank = interval_tokens / std::max(secs, 1e-9), tps = tps_rank * ranks;
      const double eta = clock.seconds() / std::max<int64_t>(1, done - first_step) * (cfg_.max_steps - done);
      const double loss = interval_loss / interval_weight;
      // MFU where the device quotes a peak (GPUs): model FLOPs per second over the peak
      const double mfu = ops_.peak_flops() > 0 ? tps * training_flops_per_token(cfg_.model) / ops_.peak_flops() : 0;
      char mfu_text[32] = "";
      if (mfu > 0) std::snprintf(mfu_text, sizeof mfu_text, " | MFU %.1f%%", 100 * mfu);
      char rank_text[48] = "";
      if (ranks > 1) std::snprintf(rank_text, sizeof rank_text, " (%ld ranks, %.0f per rank)", (long)ranks, tps_rank);
      const size_t mem = ops_.memory_in_use();
      std::printf("step %6ld/%ld | loss %.5g | lr %.2e | grad %.3f | %.0f tok/s%s%s | mem %s | ETA %s\n", (long)done,
                  (long)cfg_.max_steps, loss, lr, grad_norm, tps, rank_text, mfu_text, human_bytes(double(mem)).c_str(),
                  fmt_duration(eta).c_str());
      std::fflush(stdout);
      nlohmann::json j = {{"step", done}, {"train/loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                          {"tokens_per_s", tps}, {"elapsed_s", clock.seconds()}};
      if (mfu > 0) j["mfu"] = mfu;
      if (ranks > 1) j["tokens_per_s_per_rank"] = tps_rank;
      if (mem > 0) j["memory_bytes"] = mem;
      log_json(j);
      interval.reset();
      interval_loss = interval_weight = interval_tokens = 0;
    }
    const bool validate_now = valid_ && ((cfg_.val_check_interval > 0 && done % cfg_.val_check_interval == 0) ||
                                         done == cfg_.max_steps);
    if (validate_now) {
      std::vector<std::pair<std::string, EvalResult>> extra;
      last_val = validate(extra);
      std::printf("validation @ %ld | nll %.5g ± %.2g | ppl %.3f | bpd %.4f | %.0f tokens\n", (long)done,
                  last_val.nll, last_val.std_err, last_val.ppl, last_val.bpd, last_val.tokens);
      nlohmann::json j = {{"step", done}, {"val/nll", last_val.nll}, {"val/ppl", last_val.ppl},
                          {"val/bpd", last_val.bpd}, {"val/std_err", last_val.std_err}};
      for (const auto& [name, r] : extra) {
        std::printf("  %s: nll %.5g ± %.2g | ppl %.3f\n", name.c_str(), r.nll, r.std_err, r.ppl);
        j["val/" + name + "/nll"] = r.nll;
        j["val/" + name + "/ppl"] = r.ppl;
        j["val/" + name + "/std_err"] = r.std_err;
      }
      std::fflush(stdout);
      log_json(j);
      if (last_val.nll < best_val_) {
        best_val_ = last_val.nll;
        save(cfg_.save_dir + "/best.safetensors");  // rank 0 writes (ZeRO-1: every rank gathers)
      }
    }
    if ((cfg_.checkpoint_every > 0 && done % cfg_.checkpoint_every == 0) || done == cfg_.max_steps) {
      save(cfg_.save_dir + "/step_" + std::to_string(done) + ".safetensors");
      save(cfg_.save_dir + "/last.safetensors");
    }
  }
  return last_val;
}

}  // namespace duo
