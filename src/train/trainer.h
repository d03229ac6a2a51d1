// The training loop of duo-train: data → algorithm → gradients → clipped AdamW → EMA, with periodic
// validation on the EMA weights, checkpoints (every N steps, `last`, `best`), resume and fine-tuning, a
// progress line and a JSONL metrics file. Everything random is a pure function of (seed, step, micro-step), so
// a resumed run continues exactly as the uninterrupted one would have.
// Data parallel (docs/training.md §13): with a communicator of R ranks, each rank reads its
// part of every global batch, the gradients are summed over the ranks (train/grad_sum.h), and rank 0 alone
// prints, writes the metrics and the checkpoints. Random draws are keyed by the global micro-batch, so the run
// sees the data, times and noise of one process with the same --loader.global_batch_size.
#pragma once
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "algo/algorithm.h"
#include "backend/comm.h"
#include "data/loader.h"
#include "eval/perplexity.h"
#include "model/dit.h"
#include "train/metrics_log.h"
#include "train/model_state.h"
#include "train/run_dir.h"
#include "train/train_config.h"

namespace duo {

// What an algorithm needs from the data: the model vocabulary and the special ids (from the shard header).
struct DataVocab {
  std::string tokenizer;  // gpt2 | bert-base-uncased | char
  int64_t vocab_size = 0; // model vocabulary K (e.g. GPT-2 50257 + [PAD] = 50258)
  int32_t mask_id = -1;   // [MASK] of the absorbing algorithms (GPT-2 and char: the added [PAD] id)
  std::string vocab_dir;  // folder of the tokenizer files when known (char: next to the shards)
};
DataVocab data_vocab(const Loader& loader, const std::string& shard_glob);

// The algorithm settings of a training configuration for this data.
AlgoSettings algo_settings(const TrainConfig& cfg, const DataVocab& vocab);
// The DiT's options for training (its largest batch, the curriculum's input kinds).
DiTOptions training_dit_options(const TrainConfig& cfg, bool full_logits);

// Optional extensions of the loop, for training algorithms that need more than make_algorithm gives them
// (duo-distill's teacher is refreshed from the run's weights). The defaults change nothing.
struct TrainerHooks {
  std::string program = "duo-train";  // name in the start-up banner
  // Builds the training algorithm on the run's model and weights, instead of
  // make_algorithm(algo_settings(cfg, vocab)). Validation (val/nll) uses it too.
  // comm: the run's ranks (an algorithm that reads ZeRO-1's sharded state gathers it over them).
  std::function<std::unique_ptr<Algorithm>(DiT& model, ModelState& state, const DataVocab& vocab, Comm& comm)>
      algorithm;
  // Further algorithms (make_algorithm names, with the run's settings) evaluated at each validation next to
  // the training one, on the same weights, and logged as val/<name>/nll etc.: e.g. the DUO NELBO of a model
  // trained on another loss. They never decide which checkpoint is `best`.
  std::vector<std::string> extra_validation;
  // The algorithm reads the model's (B, L, V) logits (distillation's KL head), so the model plans them; the other
  // algorithms run the output layer fused with their loss head and never hold them.
  bool full_logits = false;
};

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, Ops& ops, TrainerHooks hooks = {}, Comm& comm = single_process());
  // Trains to cfg.max_steps; returns the last validation result (nll = 0 when there is no validation set).
  EvalResult run();

 private:
  void log_json(const nlohmann::json& j);
  // With the EMA weights when the EMA is on; the extra validation algorithms' results go to `extra`.
  EvalResult validate(std::vector<std::pair<std::string, EvalResult>>& extra);
  void save(const std::string& path);
  void load_resume(const std::string& path);
  void load_finetune(const std::string& path);
  nlohmann::json metadata() const;
  // Refuses (or, with --checkpointing.overwrite, deletes) a previous run's files in the save dir.
  void clear_previous_run();
  // Where a failed run's user can restart from: the last checkpoint, when one exists.
  std::string restart_hint() const;

  TrainConfig cfg_;
  Ops& ops_;
  Comm& comm_;
  int64_t micro_per_rank_ = 1;  // micro-batches each rank runs per optimizer step
  std::unique_ptr<Loader> train_, valid_;
  DataVocab vocab_;
  std::unique_ptr<ModelState> state_;
  std::unique_ptr<DiT> model_;
  std::unique_ptr<Algorithm> algo_;
  TrainerHooks hooks_;
  std::vector<std::pair<std::string, std::unique_ptr<Algorithm>>> extra_val_;
  std::unique_ptr<RunDir> run_dir_;
  std::unique_ptr<MetricsLog> metrics_;
  double best_val_ = 1e300;
};

}  // namespace duo
