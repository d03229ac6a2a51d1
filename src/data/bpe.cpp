#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/bpe.h"
#include <pcre2.h>
#include <filesystem>
#include <fstream>
#include <queue>
#include <nlohmann/json.hpp>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {
namespace {

namespace fs = std::filesystem;

// GPT-2's pattern with \s written out as Unicode White_Space (\t-\r, U+0085 and the Z categories).
constexpr const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\t-\r\x{85}\p{Z}\p{L}\p{N}]+)"
    R"(|[\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}])|[\t-\r\x{85}\p{Z}]+)";

// encoder.py's bytes_to_unicode(): printable bytes map to themselves, the other 68 to U+0100 onwards, so every
// byte has a visible character in encoder.json / vocab.bpe.
std::array<char32_t, 256> bytes_to_unicode() {
  std::array<char32_t, 256> m{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    m[b] = printable ? (char32_t)b : next++;
  }
  return m;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.string(), "cannot open the tokenizer file", "check --vocab (the folder with the tokenizer files)");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Per-thread scratch: PCRE2 match data and the word cache.
struct Gpt2Cache : EncodeCache {
  explicit Gpt2Cache(const pcre2_code* re) : md(pcre2_match_data_create_from_pattern(re, nullptr)) {
    if (!md) throw std::bad_alloc();
  }
  ~Gpt2Cache() override { pcre2_match_data_free(md); }
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  pcre2_match_data* md;
  std::unordered_map<std::string, std::vector<uint32_t>, Hash, std::equal_to<>> words;
};

constexpr size_t kMaxCachedWords = 1 << 18;  // bounds memory on huge corpora; cleared when full
constexpr size_t kMaxCachedPieceBytes = 64;  // long pieces (runs of symbols) rarely repeat

}  // namespace

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& vocab_dir) {
  fs::path dir(vocab_dir), enc = dir / "encoder.json", merges = dir / "vocab.bpe";
  if (!fs::exists(enc) && fs::exists(dir / "vocab.json")) {
    enc = dir / "vocab.json";
    merges = dir / "merges.txt";
  }
  if (!fs::exists(enc) || !fs::exists(merges))
    fail(vocab_dir, "no GPT-2 tokenizer files (encoder.json + vocab.bpe, or vocab.json + merges.txt)",
         "pass --vocab with a folder of OpenAI's GPT-2 files (the repository ships them in data/vendor/gpt2)");

  read_encoder(enc.string());
  read_merges(merges.string());
  compile_regex();
}

Gpt2Tokenizer::Gpt2Tokenizer(const Gpt2Tokenizer& vocabulary, const std::string& merges_path)
    : byte_id_(vocabulary.byte_id_), id_bytes_(vocabulary.id_bytes_), ids_(vocabulary.ids_),
      encoder_file_(vocabulary.encoder_file_) {
  read_merges(merges_path);
  compile_regex();
}

void Gpt2Tokenizer::read_encoder(const std::string& path) {
  const fs::path enc(path);
  encoder_file_ = enc.filename().string();
  // Vocabulary: byte-unicode string -> id.
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(enc));
  } catch (const nlohmann::json::exception& e) {
    fail(enc.string(), str("malformed JSON: ", e.what()), "re-download the GPT-2 encoder.json");
  }
  DUO_CHECK(j.is_object() && j.size() == (size_t)kGpt2EndOfText + 1, enc.string(),
            str("expected an object of 50257 entries, found ", j.is_object() ? j.size() : 0),
            "this must be OpenAI's GPT-2 encoder.json");
  const auto b2u = bytes_to_unicode();
  std::unordered_map<char32_t, uint8_t> u2b;
  for (int b = 0; b < 256; ++b) u2b[b2u[b]] = (uint8_t)b;
  id_bytes_.assign(kGpt2Pad + 1, "");
  std::vector<bool> seen(kGpt2Pad, false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    DUO_CHECK(it.value().is_number_unsigned() && it.value().get<uint64_t>() < (uint64_t)kGpt2Pad, enc.string(),
              str("entry '", it.key(), "' has an id that is not in 0..50256"), "this must be GPT-2's encoder.json");
    const uint32_t id = it.value().get<uint32_t>();
    DUO_CHECK(!seen[id], enc.string(), str("id ", id, " appears twice"), "this must be GPT-2's encoder.json");
    seen[id] = true;
    ids_[it.key()] = id;
    if (id == kGpt2EndOfText) {
      id_bytes_[id] = it.key();
      continue;
    }
    std::string bytes;
    size_t i = 0;
    char32_t cp;
    while (i < it.key().size()) {
      const bool ok = next_utf8(it.key(), i, cp);
      auto f = ok ? u2b.find(cp) : u2b.end();
      DUO_CHECK(f != u2b.end(), enc.string(), str("entry '", it.key(), "' is not a byte-level token"),
                "this must be GPT-2's encoder.json");
      bytes += (char)f->second;
    }
    id_bytes_[id] = bytes;
  }
  id_bytes_[kGpt2Pad] = "[PAD]";
  for (int b = 0; b < 256; ++b) {
    std::string u;
    append_utf8(u, b2u[b]);
    auto f = ids_.find(u);
    DUO_CHECK(f != ids_.end(), enc.string(), str("no token for byte ", b), "this must be GPT-2's encoder.json");
    byte_id_[b] = f->second;
  }
}

void Gpt2Tokenizer::read_merges(const std::string& path) {
  const fs::path merges(path);
  // Merge ranks: line k of the merges file (after the #version header) has rank k.
  std::ifstream mf(merges, std::ios::binary);
  if (!mf) fail(merges.string(), "cannot open the merges file", "check --vocab");
  std::string line;
  int64_t lineno = 0;
  uint32_t rank = 0;
  while (std::getline(mf, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("#version", 0) == 0) continue;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    const std::string where = str(merges.string(), ":", lineno);
    DUO_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() && line.find(' ', sp + 1) == std::string::npos,
              where, "a merge line must be two symbols separated by one space", "this must be GPT-2's vocab.bpe");
    const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    auto ia = ids_.find(a), ib = ids_.find(b), iab = ids_.find(a + b);
    DUO_CHECK(ia != ids_.end() && ib != ids_.end() && iab != ids_.end(), where,
              str("merge '", line, "' uses a symbol that is not in ", encoder_file_),
              "encoder.json and vocab.bpe must come from the same release");
    merges_.emplace(((uint64_t)ia->second << 32) | ib->second, Merge{rank++, iab->second});
  }
  DUO_CHECK(rank > 0, merges.string(), "no merges found", "this must be GPT-2's vocab.bpe");
}

void Gpt2Tokenizer::compile_regex() {
  int err;
  PCRE2_SIZE erroff;
  pcre2_code* re = pcre2_compile((PCRE2_SPTR)kPattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &erroff,
                                 nullptr);
  DUO_ASSERT(re != nullptr);
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is unavailable
  regex_ = re;
}

Gpt2Tokenizer::~Gpt2Tokenizer() { pcre2_code_free((pcre2_code*)regex_); }

SpecialIds Gpt2Tokenizer::specials() const { return special_ids_for("gpt2", vocab_size()); }

std::unique_ptr<EncodeCache> Gpt2Tokenizer::make_cache() const {
  return std::make_unique<Gpt2Cache>((const pcre2_code*)regex_);
}

// Merges the byte tokens of one piece: repeatedly the adjacent pair with the lowest merge rank, the leftmost of
// equal ranks (this reproduces encoder.py's "merge every occurrence of the best pair, left to right").
// Symbols form a linked list and candidate pairs sit in a min-heap keyed by (rank, position); entries made stale
// by a merge are skipped when popped. That is O(n log n) per piece: long runs of letters or digits (base64 blobs,
// tables) would take seconds with the textbook O(n^2) rescan.
void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<uint32_t>& out) const {
  const int n = (int)piece.size();
  if (n == 0) return;
  struct Sym {
    uint32_t id;
    int prev, next;  // -1 at the ends
  };
  struct Cand {
    uint32_t rank;
    int left, right;
    uint32_t left_id, right_id, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<Sym> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = {byte_id_[(unsigned char)piece[i]], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    auto f = merges_.find(((uint64_t)sym[l].id << 32) | sym[r].id);
    if (f != merges_.end()) heap.push({f->second.rank, l, r, sym[l].id, sym[r].id, f->second.id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    // Stale when either symbol was merged away or changed since the entry was made.
    if (sym[c.left].next != c.right || sym[c.left].id != c.left_id || sym[c.right].id != c.right_id) continue;
    sym[c.left].id = c.merged;
    sym[c.left].next = sym[c.right].next;
    if (sym[c.right].next >= 0) sym[sym[c.right].next].prev = c.left;
    sym[c.right].id = UINT32_MAX;  // dead
    sym[c.right].next = -2;
    push(sym[c.left].prev, c.left);
    push(c.left, sym[c.left].next);
  }
  for (int i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void Gpt2Tokenizer::encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache* cache) const {
  require_utf8(text, "gpt2 tokenizer");
  std::unique_ptr<EncodeCache> own;
  if (!cache) own = make_cache(), cache = own.get();
  auto& c = static_cast<Gpt2Cache&>(*cache);
  const auto* re = (const pcre2_code*)regex_;
  PCRE2_SIZE pos = 0;
  while (pos < text.size()) {
    // NO_UTF_CHECK: validated above; without it PCRE2 would re-validate the rest of the text on every call.
    const int rc = pcre2_match(re, (PCRE2_SPTR)text.data(), text.size(), pos, PCRE2_NO_UTF_CHECK, c.md, nullptr);
    DUO_ASSERT(rc > 0);  // the last alternatives match any character, so there is always a match
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(c.md);
    DUO_ASSERT(ov[0] == pos && ov[1] > pos);
    const std::string_view piece = text.substr(ov[0], ov[1] - ov[0]);
    pos = ov[1];
    if (piece.size() == 1) {  // single bytes need no merge and no cache
      out.push_back(byte_id_[(unsigned char)piece[0]]);
      continue;
    }
    if (piece.size() > kMaxCachedPieceBytes) {
      bpe(piece, out);
      continue;
    }
    auto f = c.words.find(piece);
    if (f != c.words.end()) {
      out.insert(out.end(), f->second.begin(), f->second.end());
      continue;
    }
    const size_t start = out.size();
    bpe(piece, out);
    if (c.words.size() >= kMaxCachedWords) c.words.clear();
    c.words.emplace(std::string(piece), std::vector<uint32_t>(out.begin() + start, out.end()));
  }
}

std::string Gpt2Tokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  for (uint32_t id : ids) {
    DUO_CHECK(id < id_bytes_.size(), "gpt2 decode", str("id ", id, " is outside the vocabulary (50258)"),
              "the ids do not come from the gpt2 tokenizer");
    s += id_bytes_[id];
  }
  return s;
}

std::string Gpt2Tokenizer::id_to_piece(uint32_t id) const { return decode(std::span<const uint32_t>(&id, 1)); }

std::unique_ptr<Tokenizer> load_gpt2(const std::string& vocab_dir) { return std::make_unique<Gpt2Tokenizer>(vocab_dir); }

}  // namespace duo
