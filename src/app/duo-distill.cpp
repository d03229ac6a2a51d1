// duo-distill: Discrete Consistency Distillation of a trained DUO model (docs/distillation.md) for few-step
// sampling. The student and the teacher start from --training.finetune_path; the teacher is refreshed every
// --algo.update_teacher_every steps while the step size doubles from 1/--algo.T.
//   build/duo-distill --training.finetune_path runs/duo/best.safetensors --data.train 'data/x/train_*.bin'
//       --data.valid 'data/x/valid_*.bin' [--algo.T 512 --algo.update_teacher_every 10000 ...]
// Every duo-train option applies, with the reference's distillation defaults. Checkpoints are DUO base
// checkpoints (duo-eval and the samplers load them as such) that also carry the teacher, for resuming.
#include <cstdio>
#include "backend/select.h"
#include "core/error.h"
#include "io/cli.h"
#include "train/distill_config.h"
#include "train/step_plan.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-distill", [&] {
    duo::po::options_description desc("duo-distill options");
    desc.add_options()("help,h", "show this help")(
        "dry_run", duo::po::bool_switch(),
        "print the device memory this distillation would plan on a GPU (student, teacher, optimizer), without "
        "allocating it or reading a checkpoint or data, and exit (the vocabulary from --vocab_size)")(
        "dry_run.ranks", duo::po::value<int>()->default_value(1),
        "--dry_run: plan one rank of this many (with --training.zero1: its shard of the Adam moments and the EMA)");
    duo::add_model_options(desc);
    duo::add_train_options(desc, duo::distill_train_defaults());
    duo::add_distill_options(desc);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-distill --training.finetune_path CKPT --data.train GLOB [--data.valid GLOB] "
                                 "[--algo.T 512] [--algo.update_teacher_every 10000] [options]"))
      return 0;
    // The reference's scripts say algo=distillation; the student itself is a DUO base model.
    if (vm["algo"].as<std::string>() == "distillation") vm.at("algo").value() = std::string("duo_base");
    // The curriculum options belong to duo-train's --algo duo; accepting them here would ignore them silently.
    for (const auto& [key, value] : vm)
      DUO_CHECK(key.rfind("algo.curriculum.", 0) != 0 || value.defaulted(), "--" + key,
                "duo-distill has no curriculum, so this option would be ignored",
                key == "algo.curriculum.integral_cache_path"
                    ? "the distillation's integral table is --algo.integral_cache_path"
                    : "drop it (distillation's own options are --algo.gamma_min/max, --algo.T, ...; see --help)");
    const bool dry_run = vm["dry_run"].as<bool>();
    duo::TrainConfig cfg = duo::train_config_from(vm, /*needs_data=*/!dry_run);
    if (dry_run) {
      DUO_CHECK(cfg.vocab_given, "--dry_run", "no vocabulary size", "pass --vocab_size (e.g. 50258 for GPT-2 + [PAD])");
      const duo::DistillSettings d = duo::distill_settings_from(vm, cfg);
      const int ranks = vm["dry_run.ranks"].as<int>();
      DUO_CHECK(ranks >= 1, "--dry_run.ranks", duo::str("got ", ranks), "give the number of ranks, 1 or more");
      std::printf("%s", duo::plan_training_memory(cfg, -1, duo::distill_hooks(cfg, d), ranks).report.c_str());
      return 0;
    }
    // One checkpoint per round unless asked otherwise: step_<k·N> holds the weights the next round's teacher gets.
    if (vm["callbacks.checkpoint_every_n_steps.every_n_train_steps"].defaulted())
      cfg.checkpoint_every = vm["algo.update_teacher_every"].as<int64_t>();
    DUO_CHECK(cfg.resume || !cfg.finetune_path.empty(), "--training.finetune_path", "no model to distil",
              "pass a trained DUO checkpoint (duo-train --algo duo or duo_base), or resume a distillation with "
              "--checkpointing.resume_from_ckpt true");
    duo::DistillSettings d = duo::distill_settings_from(vm, cfg);
    // Launched by mpirun (or srun): one rank per process and GPU, data parallel (docs/training.md §13).
    duo::Processes procs = duo::start_processes(cfg.device, cfg.threads, cfg.compute);
    duo::Trainer trainer(cfg, *procs.ops, duo::distill_hooks(cfg, d), procs.comm());
    duo::EvalResult r = trainer.run();
    if (r.tokens > 0) std::printf("final validation: distillation KL %.5g per token\n", r.nll);
    return 0;
  });
}
