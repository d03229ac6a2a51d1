// The rows a loader can hand out, per mode, over a set of memory-mapped shards (docs/data.md §5). A "block" is one
// row of L tokens; BlockLayout precomputes just enough to find block b in O(log n) and copy it out, so reads never
// scan the data.
//   wrap    documents concatenated (EOS after each when insert_eos), cut into pieces of L-2:
//           [BOS] piece [EOS]. With group_docs = G > 0 the stream is cut per group of G documents and each
//           group's remainder is dropped, emulating the reference's datasets.map(batched=True) of 1000 rows.
//   padded  one document per row: [BOS] first L-2 tokens [EOS], then [PAD]; mask 1 on BOS..EOS.
//   packed  whole documents, each [BOS] doc [EOS] (truncated to L), packed greedily in order into rows; the rest
//           [PAD] with mask 0.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "data/shard.h"

namespace duo {

// All documents of several shards as one sequence (shards in the given order).
class Corpus {
 public:
  Corpus(const std::vector<std::string>& paths, bool verify_tokens = true);
  int64_t n_docs() const { return doc_start_.back(); }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t doc_length(int64_t d) const;
  // Copies n tokens of document d from token `begin` into out.
  void copy(int64_t d, int64_t begin, int64_t n, int32_t* out) const;
  const ShardInfo& info() const { return shards_.front()->info(); }

 private:
  std::pair<const Shard*, int64_t> locate(int64_t d) const;  // shard and local document index
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<int64_t> doc_start_;  // doc_start_[s] = global index of shard s's first document; back() = total
  int64_t n_tokens_ = 0;
};

struct BlockOptions {
  std::string mode = "wrap";  // wrap | padded | packed
  int64_t length = 1024;
  bool insert_eos = true;     // wrap: EOS after every document
  int64_t group_docs = 0;     // wrap: 0 = one stream; 1000 = the reference's per-batch concatenation
  int32_t bos = 0, eos = 0, pad = 0;
};

class BlockLayout {
 public:
  BlockLayout(const Corpus& corpus, const BlockOptions& opt);
  int64_t n_blocks() const { return n_blocks_; }
  // Writes block b into ids[0..L) and mask[0..L).
  void fill(int64_t b, int32_t* ids, float* mask) const;

 private:
  void fill_wrap(int64_t b, int32_t* ids) const;
  const Corpus& corpus_;
  BlockOptions opt_;
  int64_t n_blocks_ = 0;
  // wrap: doc_pos_[d] = where document d starts in the concatenated stream (size n_docs + 1);
  // group_first_block_[g] / group_pos_[g] = first block of group g and where the group starts in the stream.
  std::vector<int64_t> doc_pos_, group_first_block_, group_pos_;
  // packed: row r holds documents [row_first_doc_[r], row_first_doc_[r + 1]).
  std::vector<int64_t> row_first_doc_;
};

}  // namespace duo
