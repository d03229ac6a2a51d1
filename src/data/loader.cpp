#include "data/loader.h"
#include <numeric>
#include "core/error.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "data/tokenizer.h"

namespace duo {

void to_json(nlohmann::json& j, const LoaderPosition& p) {
  j = nlohmann::json{{"epoch", p.epoch}, {"index", p.index}, {"seed", p.seed}, {"n_blocks", p.n_blocks},
                     {"length", p.length}, {"mode", p.mode}};
}

void from_json(const nlohmann::json& j, LoaderPosition& p) {
  try {
    j.at("epoch").get_to(p.epoch);
    j.at("index").get_to(p.index);
    j.at("seed").get_to(p.seed);
    j.at("n_blocks").get_to(p.n_blocks);
    j.at("length").get_to(p.length);
    j.at("mode").get_to(p.mode);
  } catch (const nlohmann::json::exception& e) {
    fail("loader position", str("malformed: ", e.what()), "the checkpoint's data position is damaged");
  }
}

BlockOptions block_options(const LoaderConfig& cfg, const ShardInfo& info) {
  const SpecialIds s = special_ids_for(info.tokenizer, info.vocab_size);
  BlockOptions o;
  o.mode = cfg.mode;
  o.length = cfg.length;
  o.insert_eos = cfg.insert_eos;
  o.group_docs = cfg.wrap_group_docs;
  o.bos = (int32_t)(cfg.bos >= 0 ? cfg.bos : s.bos);
  o.eos = (int32_t)(cfg.eos >= 0 ? cfg.eos : s.eos);
  o.pad = (int32_t)(cfg.pad >= 0 ? cfg.pad : s.pad);
  for (int64_t id : {(int64_t)o.bos, (int64_t)o.eos, (int64_t)o.pad})
    DUO_CHECK(id >= 0 && id < info.vocab_size, "loader", str("special id ", id, " is outside the vocabulary (",
              info.vocab_size, ")"), "check --data.bos / --data.eos / --data.pad");
  return o;
}

namespace {
BlockOptions checked_block_options(const LoaderConfig& cfg, const Corpus& corpus) {
  DUO_CHECK(cfg.batch_size > 0, "--loader.batch_size", "must be positive", "");
  DUO_CHECK(cfg.world_size > 0 && cfg.rank >= 0 && cfg.rank < cfg.world_size, "loader",
            str("rank ", cfg.rank, " of world size ", cfg.world_size, " is invalid"), "");
  DUO_CHECK(cfg.accum_steps > 0 && (cfg.infinite || cfg.accum_steps == 1), "loader",
            str("accum_steps ", cfg.accum_steps, cfg.infinite ? " must be positive" : " in an evaluation loader"),
            "an evaluation pass reads one batch per rank at a time (accum_steps 1)");
  return block_options(cfg, corpus.info());
}
}  // namespace

Loader::Loader(const std::vector<std::string>& shard_patterns, const LoaderConfig& cfg)
    : cfg_(cfg), corpus_(expand_shard_paths(shard_patterns), cfg.verify_tokens),
      layout_(corpus_, checked_block_options(cfg, corpus_)) {
  DUO_CHECK(layout_.n_blocks() > 0, shard_patterns.front(), str("no block of length ", cfg.length),
            "use more data or a shorter --model.length");
  pos_.seed = cfg.seed;
  pos_.n_blocks = layout_.n_blocks();
  pos_.length = cfg.length;
  pos_.mode = cfg.mode;
}

Loader::~Loader() { drop_prefetch(); }

int64_t Loader::block_at(int64_t epoch, int64_t index) {
  if (!cfg_.infinite || !cfg_.shuffle) return index;
  if (perm_epoch_ != epoch) {
    // Fisher-Yates driven by Philox: the permutation of an epoch is a pure function of (seed, epoch).
    const int64_t n = layout_.n_blocks();
    perm_.resize(n);
    std::iota(perm_.begin(), perm_.end(), 0);
    const Philox rng{cfg_.seed, stream_id(streams::kLoader, (uint64_t)epoch)};
    for (int64_t i = n - 1; i > 0; --i) {
      const uint64_t r = ((uint64_t)rng.bits(2 * i) << 32) | rng.bits(2 * i + 1);
      std::swap(perm_[i], perm_[r % (uint64_t)(i + 1)]);
    }
    perm_epoch_ = epoch;
  }
  return perm_[index];
}

LoaderPosition Loader::advance(LoaderPosition p, int64_t entries) const {
  const int64_t n = layout_.n_blocks();
  p.index += entries;
  if (cfg_.infinite) {
    p.epoch += p.index / n;
    p.index %= n;
  }
  return p;
}

bool Loader::build(LoaderPosition step, int64_t micro, Batch& b) {
  const int64_t B = cfg_.batch_size, L = cfg_.length, n = layout_.n_blocks();
  b.B = B;
  b.L = L;
  b.ids.resize(B * L);
  b.mask.resize(B * L);
  b.blocks.clear();
  LoaderPosition p = advance(step, (cfg_.rank * cfg_.accum_steps + micro) * B);
  for (int64_t r = 0; r < B && p.index < n; ++r) {
    const int64_t blk = block_at(p.epoch, p.index);
    layout_.fill(blk, &b.ids[r * L], &b.mask[r * L]);
    b.blocks.push_back(blk);
    p = advance(p, 1);
  }
  b.rows = (int64_t)b.blocks.size();
  const int32_t pad = block_options(cfg_, corpus_.info()).pad;
  std::fill(b.ids.begin() + b.rows * L, b.ids.end(), pad);
  std::fill(b.mask.begin() + b.rows * L, b.mask.end(), 0.0f);
  return b.rows > 0;
}

void Loader::start_prefetch() {
  // Deferred when prefetch is off: the same code then runs on the caller's thread inside get().
  pending_ = std::async(cfg_.prefetch ? std::launch::async : std::launch::deferred,
                        [this, p = pos_, m = micro_] { return build(p, m, staged_); });
}

void Loader::drop_prefetch() {
  if (!pending_.valid()) return;
  try {
    pending_.get();
  } catch (...) {  // the batch is discarded anyway; an error will recur on the next read
  }
}

LoaderPosition Loader::position() const {
  DUO_CHECK(micro_ == 0, "loader position", str("asked after ", micro_, " of the ", cfg_.accum_steps, " batches of a step"),
            "a position is saved between optimizer steps");
  return pos_;
}

bool Loader::next(Batch& out) {
  if (!pending_.valid()) start_prefetch();
  const bool ok = pending_.get();
  if (!ok) return false;
  std::swap(out, staged_);
  if (++micro_ == cfg_.accum_steps) {
    pos_ = advance(pos_, cfg_.world_size * cfg_.accum_steps * cfg_.batch_size);
    micro_ = 0;
  }
  start_prefetch();
  return true;
}

void Loader::restore(const LoaderPosition& p) {
  auto mismatch = [&](const char* field, const std::string& saved, const std::string& now) {
    fail(str("loader position field '", field, "'"), str("the checkpoint has ", saved, ", this run has ", now),
         "resume with the same data shards and data / loader options as the run that saved it");
  };
  if (p.n_blocks != pos_.n_blocks) mismatch("n_blocks", std::to_string(p.n_blocks), std::to_string(pos_.n_blocks));
  if (p.seed != pos_.seed) mismatch("seed", std::to_string(p.seed), std::to_string(pos_.seed));
  if (p.length != pos_.length) mismatch("length", std::to_string(p.length), std::to_string(pos_.length));
  if (p.mode != pos_.mode) mismatch("mode", p.mode, pos_.mode);
  DUO_CHECK(p.epoch >= 0 && p.index >= 0 && p.index <= pos_.n_blocks, "loader position",
            str("epoch ", p.epoch, " index ", p.index, " is out of range (", pos_.n_blocks, " blocks per epoch)"),
            "the checkpoint's data position is damaged");
  drop_prefetch();
  pos_ = advance(p, 0);  // index n (the end of an epoch, as older checkpoints may say) is the next one's start
  micro_ = 0;
}

void Loader::rewind() {
  LoaderPosition p = pos_;
  p.epoch = 0;
  p.index = 0;
  drop_prefetch();
  pos_ = p;
  micro_ = 0;
}

}  // namespace duo
