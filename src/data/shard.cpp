#include "data/shard.h"
#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include "core/error.h"
#include "core/regular_file.h"

namespace duo {

static_assert(std::endian::native == std::endian::little, "shards are little-endian; add byte swapping");

namespace {

constexpr char kMagic[8] = {'D', 'U', 'O', 'T', 'O', 'K', 'E', 'N'};
constexpr const char* kHint = "the file is damaged or not a duo.cu shard; re-run duo-tokenize (data/<name>.sh)";

struct RawHeader {
  char magic[8];
  uint32_t version;
  uint32_t token_bytes;
  uint64_t vocab_size;
  uint64_t n_tokens;
  uint64_t n_docs;
  uint32_t crc32;
  uint32_t reserved0;
  char tokenizer[32];
  unsigned char reserved[48];
};
static_assert(sizeof(RawHeader) == kShardHeaderBytes);

uint64_t padded_token_bytes(uint64_t n_tokens, uint64_t token_bytes) { return (n_tokens * token_bytes + 7) / 8 * 8; }

// Validates a header against the file length; returns the parsed fields.
ShardInfo check_header(const std::string& path, const RawHeader& h, uint64_t file_bytes) {
  auto bad = [&](const char* field, const std::string& what) { fail(str(path, ": header field '", field, "'"), what, kHint); };
  if (std::memcmp(h.magic, kMagic, 8) != 0) bad("magic", "is not \"DUOTOKEN\"");
  if (h.version != kShardVersion)
    bad("version", str("is ", h.version, "; this build reads version ", kShardVersion));
  if (h.token_bytes != 2 && h.token_bytes != 4) bad("token_bytes", str("is ", h.token_bytes, "; must be 2 or 4"));
  if (h.vocab_size == 0 || h.vocab_size > (1ull << 32)) bad("vocab_size", str("is ", h.vocab_size));
  if (h.token_bytes == 2 && h.vocab_size > 65536)
    bad("vocab_size", str("is ", h.vocab_size, ", too large for uint16 tokens"));
  if (std::memchr(h.tokenizer, 0, sizeof h.tokenizer) == nullptr || h.tokenizer[0] == 0)
    bad("tokenizer", "is not a NUL-terminated name");
  for (const char* c = h.tokenizer; *c; ++c)
    if (*c < 0x21 || *c > 0x7E) bad("tokenizer", "contains a non-printable byte");
  if (h.reserved0 != 0 || std::any_of(h.reserved, h.reserved + sizeof h.reserved, [](unsigned char c) { return c; }))
    bad("reserved", "is not zero");
  // Sizes: reject counts that cannot fit before computing the expected length (no overflow).
  if (h.n_tokens > (file_bytes / h.token_bytes)) bad("n_tokens", str("is ", h.n_tokens, ", more than the file holds"));
  if (h.n_docs > file_bytes / 8) bad("n_docs", str("is ", h.n_docs, ", more than the file holds"));
  const uint64_t expect = kShardHeaderBytes + padded_token_bytes(h.n_tokens, h.token_bytes) + 8 * (h.n_docs + 1);
  if (expect != file_bytes)
    fail(str(path, ": file length"),
         str(file_bytes, " bytes, but the header (n_tokens=", h.n_tokens, ", n_docs=", h.n_docs, ", token_bytes=",
             h.token_bytes, ") implies ", expect),
         "the file is truncated or was not finished; re-run duo-tokenize");
  ShardInfo info;
  info.tokenizer = h.tokenizer;
  info.vocab_size = (int64_t)h.vocab_size;
  info.n_tokens = (int64_t)h.n_tokens;
  info.n_docs = (int64_t)h.n_docs;
  info.token_bytes = (int)h.token_bytes;
  return info;
}

}  // namespace

// ---- writer ----

ShardWriter::ShardWriter(std::string path, std::string tokenizer, int64_t vocab_size)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), tokenizer_(std::move(tokenizer)), vocab_size_(vocab_size),
      token_bytes_(vocab_size <= 65536 ? 2 : 4) {
  DUO_CHECK(!tokenizer_.empty() && tokenizer_.size() < 32, path_, "tokenizer name must be 1..31 characters", "");
  DUO_CHECK(vocab_size > 0 && vocab_size <= (1ll << 32), path_, str("bad vocabulary size ", vocab_size), "");
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(tmp_, "cannot create the shard file", "check that the output folder exists and is writable");
  RawHeader zero{};
  std::fwrite(&zero, sizeof zero, 1, f_);  // rewritten by finish()
}

ShardWriter::~ShardWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void ShardWriter::add_document(const uint32_t* ids, size_t n) {
  buf_.resize(n * token_bytes_);
  for (size_t i = 0; i < n; ++i) {
    DUO_CHECK(ids[i] < (uint64_t)vocab_size_, path_, str("token id ", ids[i], " >= vocab_size ", vocab_size_),
              "the tokenizer and the vocabulary size disagree");
    if (token_bytes_ == 2) {
      const uint16_t v = (uint16_t)ids[i];
      std::memcpy(&buf_[2 * i], &v, 2);
    } else {
      std::memcpy(&buf_[4 * i], &ids[i], 4);
    }
  }
  if (n && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
    fail(tmp_, "write failed", "check free disk space");
  crc_ = (uint32_t)crc32_z(crc_, buf_.data(), buf_.size());
  n_tokens_ += (int64_t)n;
  offsets_.push_back((uint64_t)n_tokens_);
}

void ShardWriter::finish() {
  DUO_ASSERT(f_ != nullptr);
  const uint64_t tb = (uint64_t)n_tokens_ * token_bytes_;
  const uint64_t pad = padded_token_bytes(n_tokens_, token_bytes_) - tb;
  const unsigned char zeros[8] = {};
  RawHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kShardVersion;
  h.token_bytes = (uint32_t)token_bytes_;
  h.vocab_size = (uint64_t)vocab_size_;
  h.n_tokens = (uint64_t)n_tokens_;
  h.n_docs = offsets_.size() - 1;
  h.crc32 = crc_;
  std::memcpy(h.tokenizer, tokenizer_.data(), tokenizer_.size());
  bool ok = std::fwrite(zeros, 1, pad, f_) == pad &&
            std::fwrite(offsets_.data(), 8, offsets_.size(), f_) == offsets_.size() && std::fseek(f_, 0, SEEK_SET) == 0 &&
            std::fwrite(&h, sizeof h, 1, f_) == 1 && std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, "could not write the shard", "check free disk space and permissions");
  }
}

// ---- reader ----

Shard::Shard(std::string path, bool verify_tokens) : path_(std::move(path)) {
  check_regular_file(path_, "the shard", "pass a shard file (data/<name>/train_000000.bin)");
  const int fd = ::open(path_.c_str(), O_RDONLY);
  if (fd < 0) fail(path_, "cannot open the shard", "check the path (data/<name>.sh writes shards to data/<name>/)");
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path_, "is not a regular file", "pass a shard file (data/<name>/train_000000.bin), not a folder");
  }
  if ((uint64_t)st.st_size < kShardHeaderBytes) {
    ::close(fd);
    fail(str(path_, ": file length"), str(st.st_size, " bytes is shorter than the 128-byte header"), kHint);
  }
  map_bytes_ = (size_t)st.st_size;
  map_ = mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path_, "mmap failed", "check that the file is a regular file");
  }
  try {
    RawHeader h;
    std::memcpy(&h, map_, sizeof h);
    info_ = check_header(path_, h, map_bytes_);
    tokens_ = (const unsigned char*)map_ + kShardHeaderBytes;
    offsets_ = (const uint64_t*)(tokens_ + padded_token_bytes(h.n_tokens, h.token_bytes));
    const uint64_t n = h.n_tokens;
    DUO_CHECK(offsets_[0] == 0, str(path_, ": document offsets"), str("offset[0] is ", offsets_[0], ", not 0"), kHint);
    for (uint64_t d = 0; d < h.n_docs; ++d)
      DUO_CHECK(offsets_[d] <= offsets_[d + 1] && offsets_[d + 1] <= n, str(path_, ": document offsets"),
                str("offset[", d + 1, "] = ", offsets_[d + 1], " is out of order or beyond n_tokens = ", n), kHint);
    DUO_CHECK(offsets_[h.n_docs] == n, str(path_, ": document offsets"),
              str("the last offset is ", offsets_[h.n_docs], ", not n_tokens = ", n), kHint);
    if (verify_tokens) {
      const uint32_t crc = (uint32_t)crc32_z(0, tokens_, n * h.token_bytes);
      DUO_CHECK(crc == h.crc32, str(path_, ": header field 'crc32'"),
                str("the tokens' crc32 is ", crc, ", the header says ", h.crc32), kHint);
      uint32_t max_id = 0;
      for (uint64_t i = 0; i < n; ++i) max_id = std::max(max_id, token((int64_t)i));
      DUO_CHECK(n == 0 || max_id < h.vocab_size, str(path_, ": tokens"),
                str("token id ", max_id, " >= vocab_size ", h.vocab_size), kHint);
    }
  } catch (...) {
    munmap(map_, map_bytes_);
    map_ = nullptr;
    throw;
  }
}

Shard::~Shard() {
  if (map_) munmap(map_, map_bytes_);
}

void Shard::copy(int64_t begin, int64_t n, int32_t* out) const {
  DUO_ASSERT(begin >= 0 && n >= 0 && begin + n <= info_.n_tokens);
  if (info_.token_bytes == 2) {
    const uint16_t* t = (const uint16_t*)tokens_ + begin;
    for (int64_t i = 0; i < n; ++i) out[i] = t[i];
  } else {
    const uint32_t* t = (const uint32_t*)tokens_ + begin;
    for (int64_t i = 0; i < n; ++i) out[i] = (int32_t)t[i];
  }
}

std::vector<uint32_t> Shard::document(int64_t d) const {
  DUO_ASSERT(d >= 0 && d < info_.n_docs);
  std::vector<uint32_t> v;
  for (int64_t i = doc_begin(d); i < doc_end(d); ++i) v.push_back(token(i));
  return v;
}

ShardInfo read_shard_info(const std::string& path) {
  check_regular_file(path, "the shard", "pass a shard file (data/<name>/train_000000.bin)");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, "cannot open the shard", "check the path");
  RawHeader h{};
  const bool got = std::fread(&h, sizeof h, 1, f) == 1;
  std::fseek(f, 0, SEEK_END);
  const long len = std::ftell(f);
  std::fclose(f);
  if (!got) fail(str(path, ": file length"), str(len, " bytes is shorter than the 128-byte header"), kHint);
  return check_header(path, h, (uint64_t)len);
}

std::vector<std::string> expand_shard_paths(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const auto& p : patterns) {
    glob_t g{};
    const int rc = glob(p.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
      globfree(&g);
      fail(p, "no shard file matches", "tokenize the dataset first (data/<name>.sh)");
    }
    std::vector<std::string> files(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    globfree(&g);
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

}  // namespace duo
