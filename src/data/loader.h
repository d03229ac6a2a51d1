// Batches for training and evaluation: int32 ids [B, L] and a float mask [B, L] (1 = a real token whose loss
// counts), from token shards laid out by mode (blocks.h).
//
//   duo::LoaderConfig cfg;  cfg.mode = "wrap"; cfg.length = 1024; cfg.batch_size = 32; cfg.seed = 1;
//   cfg.rank = r; cfg.world_size = W; cfg.accum_steps = A;
//   duo::Loader train({"data/owt/train_*.bin"}, cfg);
//   duo::Batch batch;
//   train.next(batch);                                  // training: always true (epochs loop)
//   ckpt["data_position"] = train.position();           // nlohmann::json via to_json
//   train.restore(ckpt["data_position"].get<duo::LoaderPosition>());  // the next batch is the same again
//
// Training order: epoch e visits all n blocks in a Philox permutation of (seed, e), and the epochs follow each
// other as one stream (a batch that runs past the end of an epoch continues with the next one). The stream is cut
// into batches of B rows. One optimizer step reads W·A consecutive batches (W = world_size ranks, A = accum_steps
// batches each); rank r takes batches r·A, ..., r·A + A − 1 of them, the order of the global batch that
// batch_slice (algo/schedule.h) gives the diffusion times. So ranks are disjoint, together cover every block of
// every epoch, and any W and A with the same W·A·B read the same rows at the same global positions. The position
// is where the next step starts in the stream: the same on every rank, valid for any W, A and B.
// Evaluation (infinite = false) reads the blocks in order, one pass, in batches of B: rank r takes batches r,
// r + W, r + 2W, ... (batch k of rank r is batch k·W + r of the pass); the pass's last batch is padded with rows of
// [PAD] and mask 0 (Batch::rows says how many are real). The next batch is prepared on a background thread while
// the caller uses the current one.
#pragma once
#include <cstdint>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include "data/blocks.h"

namespace duo {

struct LoaderConfig {
  std::string mode = "wrap";   // wrap | padded | packed
  int64_t length = 1024;       // L
  int64_t batch_size = 32;     // B: rows per batch on this rank
  bool insert_eos = true;      // wrap: EOS between documents (the reference's insert_{train,valid}_eos)
  int64_t wrap_group_docs = 0; // wrap: 1000 reproduces the reference's block boundaries; 0 = one stream
  bool shuffle = true;         // training order; evaluation is sequential when false
  bool infinite = true;        // true: training (epochs loop); false: one evaluation pass
  uint64_t seed = 0;
  int64_t rank = 0, world_size = 1;
  int64_t accum_steps = 1;     // training: batches each rank reads per optimizer step (A above)
  int64_t bos = -1, eos = -1, pad = -1;  // -1: from the shards' tokenizer (special_ids_for)
  bool prefetch = true;
  bool verify_tokens = true;   // check every shard's crc32 and ids on open (a full read)
};

// Where the loader stands: the next optimizer step (or evaluation round of W batches) starts at entry `index` of
// epoch `epoch` of the stream. The other fields identify the data and order, so that restoring into a different
// setup is an error. (Checkpoints before issue 19 also hold a world_size, always 1; it is ignored.)
struct LoaderPosition {
  int64_t epoch = 0, index = 0;
  uint64_t seed = 0;
  int64_t n_blocks = 0, length = 0;
  std::string mode;
};
void to_json(nlohmann::json& j, const LoaderPosition& p);
void from_json(const nlohmann::json& j, LoaderPosition& p);

struct Batch {
  int64_t B = 0, L = 0;
  int64_t rows = 0;            // real rows; the rest (only in an evaluation's last batch) are padding, mask 0
  std::vector<int32_t> ids;    // [B, L] row-major
  std::vector<float> mask;     // [B, L]
  std::vector<int64_t> blocks; // [rows]: which block each row is (for tests and debugging)
};

class Loader {
 public:
  Loader(const std::vector<std::string>& shard_patterns, const LoaderConfig& cfg);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  bool next(Batch& out);  // false only at the end of an evaluation pass
  // Between steps only (after a multiple of accum_steps batches): throws duo::Error inside one.
  LoaderPosition position() const;
  void restore(const LoaderPosition& p);  // throws duo::Error when p belongs to other data or settings
  void rewind();                          // back to the start (a new evaluation pass)

  int64_t n_blocks() const { return layout_.n_blocks(); }
  const ShardInfo& info() const { return corpus_.info(); }
  const LoaderConfig& config() const { return cfg_; }

 private:
  bool build(LoaderPosition step, int64_t micro, Batch& b);  // runs on the prefetch thread
  int64_t block_at(int64_t epoch, int64_t index);
  LoaderPosition advance(LoaderPosition p, int64_t entries) const;  // `entries` further along the stream
  void start_prefetch();
  void drop_prefetch();

  LoaderConfig cfg_;
  Corpus corpus_;
  BlockLayout layout_;
  LoaderPosition pos_;  // the start of the current step
  int64_t micro_ = 0;   // batches of the current step this rank has read
  // Used only by build(): the permutation of one epoch, recomputed when the epoch changes.
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;
  // The batch being prepared in the background.
  std::future<bool> pending_;
  Batch staged_;
};

// Block layout options of a loader config, with special ids resolved from the shards' tokenizer.
BlockOptions block_options(const LoaderConfig& cfg, const ShardInfo& info);

}  // namespace duo
