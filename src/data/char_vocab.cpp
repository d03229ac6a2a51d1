#include "data/char_vocab.h"
#include <algorithm>
#include <filesystem>
#include <fstream>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {

CharTokenizer::CharTokenizer(std::vector<char32_t> chars) : chars_(std::move(chars)), ascii_id_(128, -1) {
  DUO_CHECK(!chars_.empty(), "char vocabulary", "no characters", "the corpus used to build it was empty");
  for (size_t i = 0; i < chars_.size(); ++i) {
    DUO_ASSERT(i == 0 || chars_[i - 1] < chars_[i]);
    id_of_[chars_[i]] = (uint32_t)i;
    if (chars_[i] < 128) ascii_id_[chars_[i]] = (int32_t)i;
  }
}

CharTokenizer CharTokenizer::read(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    fail(path, "cannot open the char vocabulary",
         "build it first: duo-tokenize --tokenizer char --vocab DIR writes DIR/vocab_chars.txt from its input");
  std::vector<char32_t> chars;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    char* end = nullptr;
    const unsigned long cp = std::strtoul(line.c_str(), &end, 16);
    const std::string where = str(path, ":", lineno);
    DUO_CHECK(end && *end == '\0' && line.size() <= 6 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF), where,
              str("'", line, "' is not a hexadecimal code point"), "one code point per line, e.g. 000A");
    DUO_CHECK(chars.empty() || chars.back() < cp, where, "code points must be strictly increasing",
              "rebuild the vocabulary with duo-tokenize");
    chars.push_back((char32_t)cp);
  }
  DUO_CHECK(!chars.empty(), path, "the char vocabulary is empty", "rebuild it with duo-tokenize");
  return CharTokenizer(std::move(chars));
}

void CharTokenizer::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) fail(path, "cannot write the char vocabulary", "check that the folder exists and is writable");
    f << "# duo char vocabulary: one code point (hex) per line = ids 0.." << chars_.size() - 1 << "; then <|endoftext|>="
      << chars_.size() << ", [PAD]=" << chars_.size() + 1 << "\n";
    char buf[16];
    for (char32_t c : chars_) {
      std::snprintf(buf, sizeof buf, "%04X\n", (unsigned)c);
      f << buf;
    }
    if (!f.flush()) fail(path, "write failed", "check free disk space");
  }
  std::filesystem::rename(tmp, path);
}

SpecialIds CharTokenizer::specials() const { return special_ids_for("char", vocab_size()); }

void CharTokenizer::encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache*) const {
  size_t i = 0;
  char32_t cp;
  while (i < text.size()) {
    const unsigned char b = (unsigned char)text[i];
    if (b < 128 && ascii_id_[b] >= 0) {
      out.push_back((uint32_t)ascii_id_[b]);
      ++i;
      continue;
    }
    const size_t at = i;
    if (!next_utf8(text, i, cp)) require_utf8(text, "char tokenizer");
    auto f = id_of_.find(cp);
    if (f == id_of_.end())
      fail("char tokenizer", str("character ", describe_code_point(cp), " at byte ", at, " is not in the vocabulary"),
           "the char vocabulary is built from the training corpus; rebuild it (delete vocab_chars.txt and re-run "
           "duo-tokenize) with every input file");
    out.push_back(f->second);
  }
}

std::string CharTokenizer::id_to_piece(uint32_t id) const {
  const size_t n = chars_.size();
  DUO_CHECK(id < n + 2, "char decode", str("id ", id, " is outside the vocabulary (", n + 2, ")"),
            "the ids do not come from this char vocabulary");
  if (id == n) return "<|endoftext|>";
  if (id == n + 1) return "[PAD]";
  std::string s;
  append_utf8(s, chars_[id]);
  return s;
}

std::string CharTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  for (uint32_t id : ids) s += id_to_piece(id);
  return s;
}

void CharCollector::add(std::string_view text) {
  size_t i = 0;
  char32_t cp;
  while (i < text.size()) {
    if (!next_utf8(text, i, cp)) require_utf8(text, "char vocabulary");
    if (cp >= seen_.size()) seen_.resize(std::max<size_t>(cp + 1, 256), false);
    seen_[cp] = true;
  }
}

void CharCollector::merge(const CharCollector& other) {
  if (other.seen_.size() > seen_.size()) seen_.resize(other.seen_.size(), false);
  for (size_t c = 0; c < other.seen_.size(); ++c)
    if (other.seen_[c]) seen_[c] = true;
}

std::vector<char32_t> CharCollector::chars() const {
  std::vector<char32_t> v;
  for (size_t c = 0; c < seen_.size(); ++c)
    if (seen_[c]) v.push_back((char32_t)c);
  return v;
}

std::unique_ptr<Tokenizer> load_char_tokenizer(const std::string& vocab_dir) {
  return std::make_unique<CharTokenizer>(
      CharTokenizer::read((std::filesystem::path(vocab_dir) / kCharVocabFile).string()));
}

}  // namespace duo
