#include "data/loader.h"
#include <numeric>
#include "core/error.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "data/tokenizer.h"

namespace duo {

void to_json(nlohmann::json& j, const LoaderPosition& p) {
  j = nlohmann::json{{"epoch", p.epoch}, {"index", p.index}, {"seed", p.seed}, {"n_blocks", p.n_blocks},
                     {"world_size", p.world_size}, {"length", p.length}, {"mode", p.mode}};
}

void from_json(const nlohmann::json& j, LoaderPosition& p) {
  try {
    j.at("epoch").get_to(p.epoch);
    j.at("index").get_to(p.index);
    j.at("seed").get_to(p.seed);
    j.at("n_blocks").get_to(p.n_blocks);
    j.at("world_size").get_to(p.world_size);
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
  return block_options(cfg, corpus.info());
}
}  // namespace

Loader::Loader(const std::vector<std::string>& shard_patterns, const LoaderConfig& cfg)
    : cfg_(cfg), corpus_(expand_shard_paths(shard_patterns), cfg.verify_tokens),
      layout_(corpus_, checked_block_options(cfg, corpus_)) {
  const int64_t n = layout_.n_blocks(), W = cfg.world_size;
  per_rank_ = cfg.infinite ? n / W : (n - cfg.rank + W - 1) / W;
  DUO_CHECK(!cfg.infinite || per_rank_ > 0, shard_patterns.front(),
            str("only ", n, " blocks of length ", cfg.length, " for ", W, " ranks"),
            "use more data, a shorter --model.length or fewer ranks");
  pos_.seed = cfg.seed;
  pos_.n_blocks = n;
  pos_.world_size = W;
  pos_.length = cfg.length;
  pos_.mode = cfg.mode;
}

Loader::~Loader() { drop_prefetch(); }

int64_t Loader::block_at(int64_t epoch, int64_t index) {
  const int64_t W = cfg_.world_size, entry = cfg_.rank + index * W;
  if (!cfg_.infinite || !cfg_.shuffle) return entry;
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
  return perm_[entry];
}

bool Loader::build(LoaderPosition p, Batch& b, LoaderPosition& next) {
  const int64_t B = cfg_.batch_size, L = cfg_.length;
  b.B = B;
  b.L = L;
  b.ids.resize(B * L);
  b.mask.resize(B * L);
  b.blocks.clear();
  for (int64_t r = 0; r < B; ++r) {
    if (p.index >= per_rank_) {
      if (!cfg_.infinite) break;
      ++p.epoch;
      p.index = 0;
    }
    const int64_t blk = block_at(p.epoch, p.index++);
    layout_.fill(blk, &b.ids[r * L], &b.mask[r * L]);
    b.blocks.push_back(blk);
  }
  b.rows = (int64_t)b.blocks.size();
  const int32_t pad = block_options(cfg_, corpus_.info()).pad;
  std::fill(b.ids.begin() + b.rows * L, b.ids.end(), pad);
  std::fill(b.mask.begin() + b.rows * L, b.mask.end(), 0.0f);
  next = p;
  return b.rows > 0;
}

void Loader::start_prefetch() {
  // Deferred when prefetch is off: the same code then runs on the caller's thread inside get().
  pending_ = std::async(cfg_.prefetch ? std::launch::async : std::launch::deferred,
                        [this, p = pos_] { return build(p, staged_, staged_next_); });
}

void Loader::drop_prefetch() {
  if (!pending_.valid()) return;
  try {
    pending_.get();
  } catch (...) {  // the batch is discarded anyway; an error will recur on the next read
  }
}

bool Loader::next(Batch& out) {
  if (!pending_.valid()) start_prefetch();
  const bool ok = pending_.get();
  if (!ok) return false;
  std::swap(out, staged_);
  pos_ = staged_next_;
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
  if (p.world_size != pos_.world_size)
    mismatch("world_size", std::to_string(p.world_size), std::to_string(pos_.world_size));
  if (p.length != pos_.length) mismatch("length", std::to_string(p.length), std::to_string(pos_.length));
  if (p.mode != pos_.mode) mismatch("mode", p.mode, pos_.mode);
  DUO_CHECK(p.epoch >= 0 && p.index >= 0 && p.index <= per_rank_, "loader position",
            str("epoch ", p.epoch, " index ", p.index, " is out of range (", per_rank_, " entries per epoch)"),
            "the checkpoint's data position is damaged");
  drop_prefetch();
  pos_ = p;
}

void Loader::rewind() {
  LoaderPosition p = pos_;
  p.epoch = 0;
  p.index = 0;
  drop_prefetch();
  pos_ = p;
}

}  // namespace duo
