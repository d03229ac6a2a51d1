// Token shards: the on-disk format between duo-tokenize and the loaders (docs/data.md §6).
//
// Layout (little-endian):
//   offset  size  field
//        0     8  magic "DUOTOKEN"
//        8     4  version (1)
//       12     4  token_bytes: 2 (uint16 tokens, vocab <= 65536) or 4 (uint32)
//       16     8  vocab_size: every token id is < vocab_size
//       24     8  n_tokens
//       32     8  n_docs
//       40     4  crc32 (zlib) of the token bytes
//       44     4  reserved, 0
//       48    32  tokenizer name, NUL-padded ("gpt2", "bert-base-uncased", "char")
//       80    48  reserved, 0
//      128        tokens: n_tokens * token_bytes, then zero padding to a multiple of 8 bytes
//                 document offsets: n_docs + 1 uint64 (token index where document d starts; [0] = 0,
//                 [n_docs] = n_tokens), so document d is tokens [off[d], off[d+1]).
// Documents hold the tokens of one text without BOS/EOS; the loaders add those per mode.
// Why the offsets at the end: the writer streams tokens without knowing the final count.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace duo {

constexpr size_t kShardHeaderBytes = 128;
constexpr uint32_t kShardVersion = 1;

struct ShardInfo {
  std::string tokenizer;
  int64_t vocab_size = 0;
  int64_t n_tokens = 0;
  int64_t n_docs = 0;
  int token_bytes = 0;
};

// Writes one shard: add_document() repeatedly, then finish() (the file appears atomically: written to
// PATH.tmp, flushed, renamed). A writer destroyed without finish() removes its temporary file.
class ShardWriter {
 public:
  ShardWriter(std::string path, std::string tokenizer, int64_t vocab_size);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add_document(const uint32_t* ids, size_t n);
  int64_t n_tokens() const { return n_tokens_; }
  int64_t n_docs() const { return (int64_t)offsets_.size() - 1; }
  void finish();

 private:
  std::string path_, tmp_, tokenizer_;
  int64_t vocab_size_;
  int token_bytes_;
  std::FILE* f_ = nullptr;
  int64_t n_tokens_ = 0;
  uint32_t crc_ = 0;
  std::vector<uint64_t> offsets_{0};
  std::vector<unsigned char> buf_;
};

// A memory-mapped, validated shard. Opening checks every header field, the file length, the offsets
// (monotone, in range) and, unless verify_tokens is false, the crc32 and that every id is < vocab_size.
// Every problem is a duo::Error naming the file and the field.
class Shard {
 public:
  explicit Shard(std::string path, bool verify_tokens = true);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  const std::string& path() const { return path_; }
  const ShardInfo& info() const { return info_; }
  int64_t n_tokens() const { return info_.n_tokens; }
  int64_t n_docs() const { return info_.n_docs; }
  int64_t doc_begin(int64_t d) const { return (int64_t)offsets_[d]; }
  int64_t doc_end(int64_t d) const { return (int64_t)offsets_[d + 1]; }
  uint32_t token(int64_t i) const {
    return info_.token_bytes == 2 ? ((const uint16_t*)tokens_)[i] : ((const uint32_t*)tokens_)[i];
  }
  // Copies tokens [begin, begin + n) as int32 into out.
  void copy(int64_t begin, int64_t n, int32_t* out) const;
  std::vector<uint32_t> document(int64_t d) const;

 private:
  std::string path_;
  ShardInfo info_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  const uint64_t* offsets_ = nullptr;
};

// Reads only the header fields (cheap; for listing and inspection). Same validation of the header as Shard.
ShardInfo read_shard_info(const std::string& path);

// Expands a list of paths / glob patterns ("data/owt/train_*.bin") into a sorted list of files; an entry that
// matches nothing is an error.
std::vector<std::string> expand_shard_paths(const std::vector<std::string>& patterns);

}  // namespace duo
