#include "train/train_config.h"
#include "backend/select.h"
#include "core/error.h"

namespace duo {

void add_train_options(po::options_description& desc, const TrainDefaults& d) {
  auto s = [](const char* d) { return po::value<std::string>()->default_value(d); };
  auto i = [](int64_t d) { return po::value<int64_t>()->default_value(d); };
  auto f = [](double d) { return po::value<double>()->default_value(d); };
  auto b = [](bool d) { return po::value<bool>()->default_value(d); };
  desc.add_options()
      ("algo", s("duo_base"), "ar | mdlm | sedd | d3pm | duo_base | duo (duo = with curriculum learning)")
      ("device", s("auto"), "auto | cpu | cuda")
      ("threads", po::value<int>()->default_value(0), "CPU threads (0 = one per core)")
      ("compute", s("auto"), compute_option_help())
      ("seed", po::value<uint64_t>()->default_value(1), "random seed (data order, noise, dropout, init)")
      ("config", po::value<std::string>(), "ini file with any of these options (`key = value`)")
      ("data.train", s(""), "training shards (glob), e.g. 'data/owt/train_*.bin'")
      ("data.valid", s(""), "validation shards (glob)")
      ("data.wrap", b(true), "wrap documents into full blocks (sentence packing); false = one padded row each")
      ("data.insert_train_eos", b(true), "EOS between training documents in wrap mode")
      ("data.insert_valid_eos", b(true), "EOS between validation documents in wrap mode")
      ("data.wrap_group_docs", i(0), "wrap: cut blocks per group of N documents, dropping each group's remainder "
       "(1000 = the reference's block boundaries; 0 = one stream)")
      ("data.bos", i(-1), "BOS id at block starts (-1: the tokenizer's; the reference's lm1b-wrap uses 101)")
      ("data.eos", i(-1), "EOS id between documents and at block ends (-1: the tokenizer's; lm1b-wrap: 101)")
      ("loader.batch_size", i(32), "sequences per device and micro-step")
      ("loader.global_batch_size", i(d.global_batch_size), "sequences per optimizer step (gradient accumulation fills the gap)")
      ("loader.eval_batch_size", i(32), "sequences per validation batch")
      ("optim.lr", f(d.lr), "peak learning rate")
      ("optim.beta1", f(0.9), "AdamW beta1")
      ("optim.beta2", f(0.999), "AdamW beta2")
      ("optim.eps", f(1e-8), "AdamW eps")
      ("optim.weight_decay", f(0.0), "AdamW decoupled weight decay")
      ("lr_scheduler", s("constant_warmup"), "constant_warmup | cosine_decay_warmup")
      ("lr_scheduler.num_warmup_steps", i(d.warmup_steps), "linear warm-up steps (constant_warmup)")
      ("trainer.max_steps", i(d.max_steps), "optimizer steps")
      ("trainer.val_check_interval", i(d.val_check_interval), "validate every N steps (0 = never)")
      ("trainer.limit_val_batches", i(d.limit_val_batches), "validation batches per check (0 = all)")
      ("trainer.log_every_n_steps", i(10), "progress line every N steps")
      ("trainer.gradient_clip_val", f(1.0), "global L2-norm clipping (0 = off)")
      ("training.ema", f(d.ema), "EMA decay (0 = off)")
      ("training.zero1", b(false), "ZeRO-1 with several ranks: each keeps 1/ranks of the Adam moments and the EMA "
       "and updates its part of the weights, then the ranks gather them (the same numbers; docs/training.md §13)")
      ("training.antithetic_sampling", b(true), "stratified diffusion times over the global batch")
      ("training.sampling_eps", f(1e-3), "smallest diffusion time")
      ("training.finetune_path", s(""), "initialise from this checkpoint (fresh optimizer and step counter)")
      ("noise", s("log-linear"), "noise schedule: log-linear | cosine")
      ("noise.eps", f(1e-3), "schedule epsilon: alpha_1 = eps")
      ("algo.T", i(d.T), "discrete time steps (0 = continuous; D3PM defaults to 1000)")
      ("algo.reference_bugs", b(false), "reproduce known reference bugs that change numbers (see README)")
      ("algo.curriculum.mode", s("simple"), "DUO curriculum: simple | efficient")
      ("algo.curriculum.gumbel_tau_log10_start", f(-3.0), "log10 of the softmax temperature at the start")
      ("algo.curriculum.gumbel_tau_log10_end", f(-3.0), "log10 of the temperature at the end")
      ("algo.curriculum.start", i(0), "step where the temperature starts annealing")
      ("algo.curriculum.end", i(500000), "last curriculum step; the plain DUO NELBO follows")
      ("algo.curriculum.gamma_min", f(-3.55), "Gaussian log-SNR range of the curriculum (low end)")
      ("algo.curriculum.gamma_max", f(-1.85), "Gaussian log-SNR range of the curriculum (high end)")
      ("algo.curriculum.integral_cache_path", s(""), "integral table file (default: computed at start for the model's vocabulary)")
      ("algo.curriculum.top_k", i(2), "efficient curriculum: simulated top-k coordinates")
      ("algo.curriculum.nearest_lookup", b(false), "reference's nearest-grid-point lookup of the integral table")
      ("checkpointing.save_dir", s("runs/default"), "checkpoints and metrics go here")
      ("checkpointing.overwrite", b(false), "a new run may delete the checkpoints and metrics of a previous run in "
       "save_dir (without it, such a folder is refused: resume it or choose another)")
      ("checkpointing.resume_from_ckpt", b(false), "resume from checkpointing.resume_ckpt_path")
      ("checkpointing.resume_ckpt_path", s(""), "default: <save_dir>/last.safetensors")
      ("callbacks.checkpoint_every_n_steps.every_n_train_steps", i(d.checkpoint_every), "checkpoint every N steps")
      ("metrics", s(""), "metrics JSONL file (default: <save_dir>/metrics.jsonl)");
}

TrainConfig train_config_from(const po::variables_map& vm, bool needs_data) {
  TrainConfig c;
  auto S = [&](const char* k) { return vm[k].as<std::string>(); };
  auto I = [&](const char* k) { return vm[k].as<int64_t>(); };
  auto F = [&](const char* k) { return vm[k].as<double>(); };
  auto B = [&](const char* k) { return vm[k].as<bool>(); };
  c.algo = S("algo");
  c.model = model_config_from(vm);
  c.vocab_given = vm.count("vocab_size") > 0;
  if (c.algo == "ar") c.model.causal = true;
  c.device = S("device");
  c.threads = vm["threads"].as<int>();
  c.compute = S("compute");
  c.seed = vm["seed"].as<uint64_t>();
  c.train_glob = S("data.train"); c.valid_glob = S("data.valid");
  c.wrap = B("data.wrap"); c.insert_train_eos = B("data.insert_train_eos"); c.insert_valid_eos = B("data.insert_valid_eos");
  c.wrap_group_docs = I("data.wrap_group_docs"); c.bos = I("data.bos"); c.eos = I("data.eos");
  c.batch_size = I("loader.batch_size"); c.global_batch_size = I("loader.global_batch_size");
  c.eval_batch_size = I("loader.eval_batch_size");
  c.optim.lr = F("optim.lr"); c.optim.beta1 = F("optim.beta1"); c.optim.beta2 = F("optim.beta2");
  c.optim.eps = F("optim.eps"); c.optim.weight_decay = F("optim.weight_decay");
  c.optim.schedule = S("lr_scheduler"); c.optim.warmup_steps = I("lr_scheduler.num_warmup_steps");
  c.max_steps = c.optim.max_steps = I("trainer.max_steps");
  c.val_check_interval = I("trainer.val_check_interval"); c.limit_val_batches = I("trainer.limit_val_batches");
  c.log_every = I("trainer.log_every_n_steps");
  c.optim.grad_clip = F("trainer.gradient_clip_val");
  c.optim.ema = F("training.ema");
  c.zero1 = B("training.zero1");
  c.antithetic_sampling = B("training.antithetic_sampling"); c.sampling_eps = F("training.sampling_eps");
  c.finetune_path = S("training.finetune_path");
  c.noise = S("noise"); c.noise_eps = F("noise.eps");
  c.T = I("algo.T");
  if (c.algo == "d3pm" && c.T == 0) c.T = 1000;
  c.reference_bugs = B("algo.reference_bugs");
  CurriculumConfig& cu = c.curriculum;
  cu.mode = S("algo.curriculum.mode");
  cu.tau_log10_start = F("algo.curriculum.gumbel_tau_log10_start");
  cu.tau_log10_end = F("algo.curriculum.gumbel_tau_log10_end");
  cu.start = I("algo.curriculum.start"); cu.end = I("algo.curriculum.end");
  cu.gamma_min = F("algo.curriculum.gamma_min"); cu.gamma_max = F("algo.curriculum.gamma_max");
  cu.integral_cache_path = S("algo.curriculum.integral_cache_path");
  cu.top_k = I("algo.curriculum.top_k");
  cu.nearest_lookup = B("algo.curriculum.nearest_lookup");
  cu.reference_bugs = c.reference_bugs;
  c.save_dir = S("checkpointing.save_dir");
  c.overwrite = B("checkpointing.overwrite");
  c.resume = B("checkpointing.resume_from_ckpt");
  c.resume_path = S("checkpointing.resume_ckpt_path");
  c.checkpoint_every = I("callbacks.checkpoint_every_n_steps.every_n_train_steps");
  c.metrics_path = S("metrics");
  if (c.metrics_path.empty()) c.metrics_path = c.save_dir + "/metrics.jsonl";
  if (c.resume_path.empty()) c.resume_path = c.save_dir + "/last.safetensors";
  c.validate(needs_data);
  return c;
}

void TrainConfig::validate(bool needs_data) const {
  auto bad = [](const std::string& opt, const std::string& what, const std::string& hint = "") {
    fail("--" + opt, what, hint.empty() ? "see duo-train --help" : hint);
  };
  static const char* algos[] = {"ar", "mdlm", "sedd", "d3pm", "duo_base", "duo"};
  bool known = false;
  for (const char* a : algos) known |= algo == a;
  if (!known) bad("algo", "unknown algorithm '" + algo + "'", "use ar, mdlm, sedd, d3pm, duo_base or duo");
  if (device != "auto" && device != "cpu" && device != "cuda") bad("device", "must be auto, cpu or cuda");
  if (threads < 0) bad("threads", "must be 0 (one per core) or a positive thread count");
  if (needs_data && train_glob.empty()) bad("data.train", "no training shards given", "tokenize a dataset first, e.g. data/tinyshakespeare.sh");
  if (batch_size < 1) bad("loader.batch_size", "must be >= 1");
  if (global_batch_size < batch_size || global_batch_size % batch_size != 0)
    bad("loader.global_batch_size", str("must be a multiple of loader.batch_size (", batch_size, "), got ", global_batch_size));
  if (eval_batch_size < 1) bad("loader.eval_batch_size", "must be >= 1");
  if (max_steps < 1) bad("trainer.max_steps", "must be >= 1");
  if (log_every < 1) bad("trainer.log_every_n_steps", "must be >= 1");
  if (val_check_interval < 0) bad("trainer.val_check_interval", "must be >= 0 (0 = never)");
  if (limit_val_batches < 0) bad("trainer.limit_val_batches", "must be >= 0 (0 = all)");
  if (T < 0) bad("algo.T", "must be >= 0 (0 = continuous time)");
  if (checkpoint_every < 0) bad("callbacks.checkpoint_every_n_steps.every_n_train_steps", "must be >= 0");
  if (noise != "log-linear" && noise != "cosine") bad("noise", "unknown schedule '" + noise + "'", "use log-linear or cosine");
  if (!(noise_eps > 0 && noise_eps < 1)) bad("noise.eps", "must be in (0, 1)");
  if (!(sampling_eps >= 0 && sampling_eps < 1)) bad("training.sampling_eps", "must be in [0, 1)");
  if (algo == "d3pm" && noise != "log-linear") bad("noise", "D3PM requires the log-linear schedule (as the reference asserts)");
  if (curriculum.mode != "simple" && curriculum.mode != "efficient")
    bad("algo.curriculum.mode", "unknown mode '" + curriculum.mode + "'", "use simple or efficient");
  if (curriculum.mode == "efficient" && curriculum.top_k < 2) bad("algo.curriculum.top_k", "must be >= 2");
  if (!(curriculum.gamma_min < curriculum.gamma_max)) bad("algo.curriculum.gamma_min", "must be < gamma_max");
  if (resume && !finetune_path.empty())
    bad("training.finetune_path", "cannot both resume and fine-tune", "resume continues a run; fine-tuning starts a new one");
  optim.validate();
}

LoaderConfig loader_config(const TrainConfig& c, bool train) {
  LoaderConfig l;
  l.mode = c.wrap ? "wrap" : "padded";
  l.length = c.model.length;
  l.batch_size = train ? c.batch_size : c.eval_batch_size;
  l.insert_eos = train ? c.insert_train_eos : c.insert_valid_eos;
  l.wrap_group_docs = c.wrap_group_docs;
  l.bos = c.bos;
  l.eos = c.eos;
  l.shuffle = train;
  l.infinite = train;
  l.seed = c.seed;
  return l;
}

}  // namespace duo
