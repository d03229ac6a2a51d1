#include "train/distill_config.h"

namespace duo {

TrainDefaults distill_train_defaults() {
  TrainDefaults d;
  d.lr = 6e-5;
  d.warmup_steps = 500;
  d.max_steps = 50000;
  d.ema = 0.999;
  d.global_batch_size = 128;
  d.val_check_interval = 1000;
  d.limit_val_batches = 8;
  d.checkpoint_every = 10000;  // = update_teacher_every: one checkpoint per round
  d.T = 512;
  return d;
}

void add_distill_options(po::options_description& desc) {
  auto s = [](const char* d) { return po::value<std::string>()->default_value(d); };
  auto f = [](double d) { return po::value<double>()->default_value(d); };
  auto b = [](bool d) { return po::value<bool>()->default_value(d); };
  desc.add_options()
      ("algo.loss_type", s("kl-bwd"), "kl-bwd = KL(student || teacher) | kl-fwd = KL(teacher || student)")
      ("algo.update_teacher_every", po::value<int64_t>()->default_value(10000),
       "steps per round: the teacher is refreshed and the step size doubles every N steps (algo.T sets 1/T)")
      ("algo.teacher_ema", b(false), "refresh the teacher from the EMA weights instead of the live ones")
      ("algo.teacher_dropout", b(true), "dropout in the teacher's training forwards (the reference's train mode)")
      ("algo.linear_growth_dt", b(false), "step size grows linearly over the run instead of doubling per round")
      ("algo.linear_growth_min", f(0.001), "linear growth: step size at step 0")
      ("algo.linear_growth_max", f(0.25), "linear growth: step size at trainer.max_steps")
      ("algo.gamma_min", f(-4.0), "Gaussian log-SNR range of the trajectories (low end)")
      ("algo.gamma_max", f(-1.0), "Gaussian log-SNR range of the trajectories (high end)")
      ("algo.integral_cache_path", s(""), "integral table file of the Diffusion Transformation (default: computed at start for the model's vocabulary)")
      ("algo.nearest_lookup", b(false), "the reference's nearest-grid-point lookup of the integral table");
}

DistillSettings distill_settings_from(const po::variables_map& vm, const TrainConfig& cfg) {
  DistillSettings d;
  d.loss = parse_distill_loss(vm["algo.loss_type"].as<std::string>());
  d.T = cfg.T;
  d.update_teacher_every = vm["algo.update_teacher_every"].as<int64_t>();
  d.teacher_ema = vm["algo.teacher_ema"].as<bool>();
  d.teacher_dropout = vm["algo.teacher_dropout"].as<bool>();
  d.linear_growth_dt = vm["algo.linear_growth_dt"].as<bool>();
  d.linear_growth_min = vm["algo.linear_growth_min"].as<double>();
  d.linear_growth_max = vm["algo.linear_growth_max"].as<double>();
  d.max_steps = cfg.max_steps;
  d.gamma_min = vm["algo.gamma_min"].as<double>();
  d.gamma_max = vm["algo.gamma_max"].as<double>();
  d.integral_path = vm["algo.integral_cache_path"].as<std::string>();
  d.nearest_lookup = vm["algo.nearest_lookup"].as<bool>();
  d.validate();
  return d;
}

TrainerHooks distill_hooks(const TrainConfig& cfg, const DistillSettings& d) {
  DUO_CHECK(cfg.algo == "duo_base", "--algo", "duo-distill distils DUO models; got --algo " + cfg.algo,
            "use --algo duo_base (or the reference's --algo distillation): the student is a DUO base model");
  d.validate();
  TrainerHooks h;
  h.program = "duo-distill";
  h.algorithm = [cfg, d](DiT& model, ModelState& state, const DataVocab& vocab,
                         Comm& comm) -> std::unique_ptr<Algorithm> {
    DistillSettings s = d;
    s.distilled_from = cfg.finetune_path;  // empty when resuming: the checkpoint's value is kept
    StudentWeights w;
    ModelState* st = &state;
    Comm* c = &comm;
    w.params = [st](Tensor& dst) { st->ops().copy(dst, st->flat(st->params())); };
    if (cfg.optim.ema > 0)
      w.ema = [st, c](Tensor& dst) {
        if (!st->sharded()) return st->ops().copy(dst, st->flat(st->ema()));
        void* full = st->gather(st->ema(), *c);  // ZeRO-1: every rank's part of the EMA
        st->ops().copy(dst, st->flat(full));
        st->ops().release(full);
      };
    return std::make_unique<Distillation>(algo_settings(cfg, vocab), s, model, std::move(w), state.ops());
  };
  h.extra_validation = {"duo_base"};
  h.full_logits = true;  // the KL head compares the student's logits with the teacher's
  return h;
}

}  // namespace duo
