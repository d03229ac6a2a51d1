// The training loop of duo-train: data → algorithm → gradients → clipped AdamW → EMA, with periodic
// validation on the EMA weights, checkpoints (every N steps, `last`, `best`), resume and fine-tuning, a
// progress line and a JSONL metrics file. Everything random is a pure function of (seed, step, micro-step), so
// a resumed run continues exactly as the uninterrupted one would have.
#pragma once
#include <fstream>
#include <memory>
#include "algo/algorithm.h"
#include "data/loader.h"
#include "eval/perplexity.h"
#include "model/dit.h"
#include "train/model_state.h"
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

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, Ops& ops);
  // Trains to cfg.max_steps; returns the last validation result (nll = 0 when there is no validation set).
  EvalResult run();

 private:
  void log_json(const nlohmann::json& j);
  EvalResult validate();  // with the EMA weights when the EMA is on
  void save(const std::string& path);
  void load_resume(const std::string& path);
  void load_finetune(const std::string& path);
  nlohmann::json metadata() const;

  TrainConfig cfg_;
  Ops& ops_;
  std::unique_ptr<Loader> train_, valid_;
  DataVocab vocab_;
  std::unique_ptr<ModelState> state_;
  std::unique_ptr<DiT> model_;
  std::unique_ptr<Algorithm> algo_;
  std::ofstream metrics_;
  double best_val_ = 1e300;
};

}  // namespace duo
