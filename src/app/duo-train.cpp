// duo-train: trains AR, MDLM, SEDD, D3PM, DUO base or DUO with curriculum learning on token shards.
//   build/duo-train --algo duo --model tiny --data.train 'data/x/train_*.bin' --data.valid 'data/x/valid_*.bin' ...
// Options mirror the reference's Hydra keys (see --help); any of them can also come from an ini --config file.
#include <cstdio>
#include "backend/select.h"
#include "io/cli.h"
#include "train/step_plan.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-train", [&] {
    duo::po::options_description desc("duo-train options");
    desc.add_options()("help,h", "show this help")(
        "dry_run", duo::po::bool_switch(),
        "print the device memory this configuration would plan on a GPU, without allocating it or reading data, "
        "and exit (the vocabulary from --vocab_size, else from the shards' header)")(
        "dry_run.ranks", duo::po::value<int>()->default_value(1),
        "--dry_run: plan one rank of this many (with --training.zero1: its shard of the Adam moments and the EMA)");
    duo::add_model_options(desc);
    duo::add_train_options(desc);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-train --algo ar|mdlm|sedd|d3pm|duo_base|duo --data.train GLOB "
                                 "[--data.valid GLOB] [--model tiny|small|medium] [options]"))
      return 0;
    if (vm["dry_run"].as<bool>()) {
      duo::TrainConfig cfg = duo::train_config_from(vm, /*needs_data=*/false);
      int32_t mask_id = -1;  // V - 1: GPT-2's added [PAD]
      if (!cfg.vocab_given) {
        DUO_CHECK(!cfg.train_glob.empty(), "--dry_run", "no vocabulary size",
                  "pass --vocab_size (e.g. 50258 for GPT-2 + [PAD]) or --data.train shards to read it from");
        const duo::Loader loader({cfg.train_glob}, duo::loader_config(cfg, true));
        const duo::DataVocab v = duo::data_vocab(loader, cfg.train_glob);
        cfg.model.vocab_size = v.vocab_size;
        mask_id = v.mask_id;
      }
      const int ranks = vm["dry_run.ranks"].as<int>();
      DUO_CHECK(ranks >= 1, "--dry_run.ranks", duo::str("got ", ranks), "give the number of ranks, 1 or more");
      std::printf("%s", duo::plan_training_memory(cfg, mask_id, {}, ranks).report.c_str());
      return 0;
    }
    duo::TrainConfig cfg = duo::train_config_from(vm);
    // Launched by mpirun (or srun): one rank per process and GPU, data parallel (docs/training.md §13).
    duo::Processes procs = duo::start_processes(cfg.device, cfg.threads, cfg.compute);
    duo::Trainer trainer(cfg, *procs.ops, {}, procs.comm());
    duo::EvalResult r = trainer.run();
    if (r.tokens > 0)
      std::printf("final validation: nll %.4f | ppl %.3f | bpd %.4f (%s)\n", r.nll, r.ppl, r.bpd,
                  cfg.algo == "ar" ? "exact" : "NELBO upper bound");
    return 0;
  });
}
