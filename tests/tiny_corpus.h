// A scratch folder with a tiny char-level corpus for the training, distillation and end-to-end tests: the
// characters '0'..'9' (ids 0-9; <|endoftext|> = 10, [PAD] = 11, so V = 12) with an easy structure — each
// document counts upwards modulo 10 from a random start, so the next token is predictable from the last —
// its vocabulary file (vocab_dir(), for decoding) and, on request, a Diffusion Transformation table for V = 12;
// and the tiny model and training run the tests use on it.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "core/philox.h"
#include "data/char_vocab.h"
#include "data/shard.h"
#include "io_test_util.h"
#include "model/config.h"
#include "train/train_config.h"

namespace duo::testing {

class TinyCorpus {
 public:
  static constexpr int64_t kVocab = 12;
  struct Split {
    int docs;
    uint64_t seed;
  };
  TinyCorpus(Split train, Split valid) {
    write("train", train);
    write("valid", valid);
    CharTokenizer({U'0', U'1', U'2', U'3', U'4', U'5', U'6', U'7', U'8', U'9'}).write(tmp_.file(kCharVocabFile));
  }
  std::string dir() const { return tmp_.path().string(); }
  std::string train_glob() const { return tmp_.file("train_*.bin"); }
  std::string valid_glob() const { return tmp_.file("valid_*.bin"); }
  std::string vocab_dir() const { return dir(); }
  std::string file(const std::string& name) const { return tmp_.file(name); }
  // Writes the integral table of V = 12 over the log-SNR range [lo, hi] and returns its path.
  std::string integral_table(double lo, double hi, int points) const {
    const std::string path = tmp_.file("integral_12.bin");
    IntegralTable::compute(DiffusionTransform(kVocab), lo, hi, points).write(path);
    return path;
  }

 private:
  void write(const std::string& split, Split s) {
    ShardWriter w(tmp_.file(split + "_000000.bin"), "char", kVocab);
    Philox r{s.seed, 0};
    for (int d = 0; d < s.docs; ++d) {
      std::vector<uint32_t> doc(20 + r.bits(2 * d) % 20);
      const uint32_t start = r.bits(2 * d + 1) % 10;
      for (size_t i = 0; i < doc.size(); ++i) doc[i] = (start + i) % 10;
      w.add_document(doc.data(), doc.size());
    }
    w.finish();
  }

  TempDir tmp_;
};

// The model of these tests: one DiT block of width `hidden` (2 heads, cond 16), length 16, no dropout, V = 12.
inline ModelConfig tiny_model(int64_t hidden = 32) {
  ModelConfig m;
  m.vocab_size = TinyCorpus::kVocab;
  m.hidden = hidden; m.n_blocks = 1; m.n_heads = 2; m.cond_dim = 16; m.length = 16;
  m.dropout = 0.0f;
  return m;
}

// A run of `algo` on the corpus that writes under <corpus>/<run>: the tiny model (causal for AR), `steps`
// optimizer steps, metrics every step, no validation or periodic checkpoints; tests set batch sizes, optimiser
// and intervals.
inline TrainConfig tiny_train_config(const TinyCorpus& c, const std::string& algo, const std::string& run,
                                     int64_t steps, int64_t hidden = 32) {
  TrainConfig t;
  t.algo = algo;
  t.model = tiny_model(hidden);
  t.model.causal = algo == "ar";
  t.train_glob = c.train_glob();
  t.valid_glob = c.valid_glob();
  t.max_steps = t.optim.max_steps = steps;
  t.val_check_interval = 0; t.log_every = 1; t.checkpoint_every = 0;
  t.save_dir = c.file(run);
  t.metrics_path = t.save_dir + "/metrics.jsonl";
  t.resume_path = t.save_dir + "/last.safetensors";
  return t;
}

// A second run that resumes `full` from its step-`step` checkpoint, copied into <corpus>/<run>: for the tests
// that a resumed run reproduces the uninterrupted one.
inline TrainConfig resumed_from(const TrainConfig& full, int64_t step, const TinyCorpus& c, const std::string& run) {
  TrainConfig part = full;
  part.finetune_path.clear();
  part.save_dir = c.file(run);
  part.metrics_path = part.save_dir + "/metrics.jsonl";
  part.resume_path = part.save_dir + "/last.safetensors";
  std::filesystem::create_directories(part.save_dir);
  std::filesystem::copy_file(full.save_dir + "/step_" + std::to_string(step) + ".safetensors", part.resume_path);
  part.resume = true;
  return part;
}

}  // namespace duo::testing
