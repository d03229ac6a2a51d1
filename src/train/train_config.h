// Everything duo-train reads from its command line (or an ini --config file). Long option names mirror the
// reference's Hydra keys (docs/training.md §11) so its scripts translate line by line.
#pragma once
#include <cstdint>
#include <string>
#include "data/loader.h"
#include "io/cli.h"
#include "model/config.h"
#include "train/optimizer.h"

namespace duo {

struct CurriculumConfig {          // algo.curriculum.* (DUO only; docs/curriculum.md)
  std::string mode = "simple";     // simple (dense Gaussian relaxation) | efficient (top-k, Duo++)
  double tau_log10_start = -3.0, tau_log10_end = -3.0;
  int64_t start = 0, end = 500000;
  double gamma_min = -3.55, gamma_max = -1.85;
  std::string integral_cache_path;  // empty: the table computed at start for the model's V
  int64_t top_k = 2;                // efficient mode
  bool nearest_lookup = false;      // reference's nearest-grid-point table lookup + finite-difference α'
  bool reference_bugs = false;      // efficient mode: reproduce the reference's labelling bug (docs/curriculum.md §5)
};

struct TrainConfig {
  std::string algo = "duo_base";   // ar | mdlm | sedd | d3pm | duo_base | duo
  ModelConfig model;
  bool vocab_given = false;        // --vocab_size was passed (else the model vocabulary comes from the data)
  OptimConfig optim;
  std::string device = "auto";
  int threads = 0;                 // CPU threads, 0 = one per core
  std::string compute = "auto";    // GEMM precision: auto | fp32 | bf16 (backend/select.h)
  uint64_t seed = 1;
  // data
  std::string train_glob, valid_glob;
  bool wrap = true;                // wrap (sentence packing) vs padded rows
  bool insert_train_eos = true, insert_valid_eos = true;
  int64_t wrap_group_docs = 0;     // wrap: cut blocks per group of N documents (1000 = the reference's); 0 = one stream
  int64_t bos = -1, eos = -1;      // block-boundary ids; -1 = the tokenizer's (lm1b-wrap as the reference: 101, 101)
  // loader
  int64_t batch_size = 32;         // per device and micro-step
  int64_t global_batch_size = 512; // reached by gradient accumulation
  int64_t eval_batch_size = 32;
  // trainer
  int64_t max_steps = 1000000;
  int64_t val_check_interval = 5000;
  int64_t limit_val_batches = 0;   // 0 = the whole validation set
  int64_t log_every = 10;
  // training
  bool antithetic_sampling = true;
  double sampling_eps = 1e-3;
  std::string finetune_path;       // start from these weights (fresh optimizer), the reference's 2nd stage
  // noise
  std::string noise = "log-linear";
  double noise_eps = 1e-3;
  int64_t T = 0;                   // algo.T: discrete time steps (D3PM: 1000), 0 = continuous
  bool reference_bugs = false;     // reproduce known reference bugs that change reported numbers (README)
  CurriculumConfig curriculum;
  // checkpointing
  std::string save_dir = "runs/default";
  int64_t checkpoint_every = 500;  // callbacks.checkpoint_every_n_steps.every_n_train_steps
  bool overwrite = false;          // checkpointing.overwrite: a new run may delete a previous run's files in save_dir
  bool zero1 = false;              // training.zero1: Adam moments and EMA sharded over the ranks (docs/training.md §13)
  bool resume = false;             // checkpointing.resume_from_ckpt
  std::string resume_path;         // checkpointing.resume_ckpt_path (default: <save_dir>/last.safetensors)
  std::string metrics_path;        // default: <save_dir>/metrics.jsonl

  // needs_data = false: a configuration planned without data (duo-train --dry_run, duo-roofline).
  void validate(bool needs_data = true) const;
};

// The defaults an executable gives the options that differ between runs of different kinds (duo-distill uses
// the reference's distillation settings: lr 6e-5, warm-up 500, 50k steps, EMA 0.999, global batch 128).
struct TrainDefaults {
  double lr = 3e-4;
  int64_t warmup_steps = 2500;
  int64_t max_steps = 1000000;
  double ema = 0.9999;
  int64_t global_batch_size = 512;
  int64_t val_check_interval = 5000;
  int64_t limit_val_batches = 0;
  int64_t checkpoint_every = 500;
  int64_t T = 0;  // algo.T
};

void add_train_options(po::options_description& desc, const TrainDefaults& d = {});
TrainConfig train_config_from(const po::variables_map& vm, bool needs_data = true);

// The training loader (shuffled, endless) or the validation loader (in order, one pass) of a run.
LoaderConfig loader_config(const TrainConfig& c, bool train);

}  // namespace duo
