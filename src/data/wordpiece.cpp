#include "data/wordpiece.h"
#include <utf8proc.h>
#include <filesystem>
#include <fstream>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {
namespace {

constexpr size_t kMaxWordChars = 100;  // BERT's max_input_chars_per_word
constexpr uint32_t kUnk = 100;

int category(char32_t c) { return utf8proc_category((utf8proc_int32_t)c); }

bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || category(c) == UTF8PROC_CATEGORY_ZS;
}

// Python's str.split() separators that survive cleaning: ' ' and the line/paragraph separators.
bool splits_words(char32_t c) {
  const int k = category(c);
  return c == ' ' || k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  const int k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideograph blocks BERT spaces out (not Hangul, Hiragana or Katakana).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_cased(char32_t c) {
  const int k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

// Unicode Case_Ignorable, as far as it matters next to a Greek sigma: marks, format characters, modifiers
// and the word-internal punctuation (apostrophes, full stop, colon, middle dot).
bool is_case_ignorable(char32_t c) {
  switch (c) {
    case '\'': case '.': case ':': case 0x00AD: case 0x00B7: case 0x0387: case 0x05F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default: break;
  }
  const int k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

// Python's str.lower() for one capital sigma at word[i]: final form when a cased letter precedes it and none
// follows (skipping case-ignorable characters on both sides).
bool is_final_sigma(const std::vector<char32_t>& w, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(w[j - 1])) --j;
  if (j == 0 || !is_cased(w[j - 1])) return false;
  size_t k = i + 1;
  while (k < w.size() && is_case_ignorable(w[k])) ++k;
  return !(k < w.size() && is_cased(w[k]));
}

std::vector<char32_t> to_code_points(std::string_view s) {
  std::vector<char32_t> v;
  size_t i = 0;
  char32_t c;
  while (i < s.size()) {
    DUO_ASSERT(next_utf8(s, i, c));
    v.push_back(c);
  }
  return v;
}

}  // namespace

BertTokenizer::BertTokenizer(const std::string& vocab_dir) {
  const std::string path = (std::filesystem::path(vocab_dir) / "vocab.txt").string();
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open the BERT vocabulary", "pass --vocab with the folder of vocab.txt (the repository ships it in data/vendor/bert-base-uncased)");
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = str(path, ":", pieces_.size() + 1);
    DUO_CHECK(!line.empty(), where, "empty vocabulary line", "this must be bert-base-uncased's vocab.txt");
    require_utf8(line, where.c_str());
    DUO_CHECK(ids_.emplace(line, (uint32_t)pieces_.size()).second, where, str("'", line, "' appears twice"),
              "this must be bert-base-uncased's vocab.txt");
    pieces_.push_back(line);
  }
  DUO_CHECK(pieces_.size() > 103 && pieces_[0] == "[PAD]" && pieces_[100] == "[UNK]" && pieces_[101] == "[CLS]" &&
                pieces_[102] == "[SEP]" && pieces_[103] == "[MASK]",
            path, "[PAD] [UNK] [CLS] [SEP] [MASK] are not at ids 0, 100, 101, 102, 103",
            "use the canonical bert-base-uncased vocab.txt (data/vendor/README.md gives its SHA-256)");
}

SpecialIds BertTokenizer::specials() const { return special_ids_for("bert-base-uncased", vocab_size()); }

std::vector<std::string> BertTokenizer::basic_tokenize(std::string_view text) const {
  require_utf8(text, "bert tokenizer");
  // Steps 1-2: clean and space out CJK, collecting whitespace-separated words as code points.
  std::vector<std::vector<char32_t>> words(1);
  for (char32_t c : to_code_points(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c) || splits_words(c)) {
      if (!words.back().empty()) words.emplace_back();
    } else if (is_cjk(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back().push_back(c);
      words.emplace_back();
    } else {
      words.back().push_back(c);
    }
  }
  // Steps 3-4: lower-case, strip accents, split off punctuation.
  std::vector<std::string> out;
  utf8proc_int32_t dec[32];
  for (const auto& w : words) {
    if (w.empty()) continue;
    std::string cur;
    for (size_t i = 0; i < w.size(); ++i) {
      char32_t lc = w[i] == 0x03A3 && is_final_sigma(w, i) ? 0x03C2 : (char32_t)utf8proc_tolower((utf8proc_int32_t)w[i]);
      utf8proc_int32_t last = 0;
      const utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)lc, dec, 32, UTF8PROC_DECOMPOSE, &last);
      DUO_ASSERT(n > 0 && n <= 32);
      for (utf8proc_ssize_t k = 0; k < n; ++k) {
        const char32_t d = (char32_t)dec[k];
        if (category(d) == UTF8PROC_CATEGORY_MN) continue;
        if (is_punctuation(d)) {
          if (!cur.empty()) out.push_back(std::move(cur));
          cur.clear();
          std::string p;
          append_utf8(p, d);
          out.push_back(std::move(p));
        } else {
          append_utf8(cur, d);
        }
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
  }
  return out;
}

void BertTokenizer::wordpiece(const std::string& word, std::vector<uint32_t>& out) const {
  // Character boundaries (byte offsets) so that pieces never cut a code point.
  std::vector<size_t> bounds{0};
  size_t i = 0;
  char32_t c;
  while (i < word.size()) {
    DUO_ASSERT(next_utf8(word, i, c));
    bounds.push_back(i);
  }
  const size_t n_chars = bounds.size() - 1;
  if (n_chars > kMaxWordChars) {
    out.push_back(kUnk);
    return;
  }
  const size_t start_size = out.size();
  std::string key;
  size_t start = 0;
  while (start < n_chars) {
    size_t end = n_chars;
    uint32_t found = UINT32_MAX;
    for (; end > start; --end) {
      key.assign(start > 0 ? "##" : "");
      key.append(word, bounds[start], bounds[end] - bounds[start]);
      auto f = ids_.find(key);
      if (f != ids_.end()) {
        found = f->second;
        break;
      }
    }
    if (found == UINT32_MAX) {  // no segmentation: the whole word is unknown
      out.resize(start_size);
      out.push_back(kUnk);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void BertTokenizer::encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache*) const {
  for (const std::string& w : basic_tokenize(text)) wordpiece(w, out);
}

std::string BertTokenizer::id_to_piece(uint32_t id) const {
  DUO_CHECK(id < pieces_.size(), "bert decode", str("id ", id, " is outside the vocabulary (", pieces_.size(), ")"),
            "the ids do not come from the bert-base-uncased tokenizer");
  return pieces_[id];
}

std::string BertTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  for (uint32_t id : ids) {
    const std::string& p = id_to_piece(id);
    if (p.rfind("##", 0) == 0 && !s.empty()) {  // HF: " ".join(pieces).replace(" ##", "")
      s.append(p, 2);
    } else {
      if (!s.empty()) s += ' ';
      s += p;
    }
  }
  // Hugging Face's clean_up_tokenization, in its order.
  static const std::pair<const char*, const char*> kFix[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kFix) {
    const std::string a = from, b = to;
    std::string r;
    size_t pos = 0, hit;
    while ((hit = s.find(a, pos)) != std::string::npos) {
      r.append(s, pos, hit - pos);
      r += b;
      pos = hit + a.size();
    }
    r.append(s, pos);
    s.swap(r);
  }
  return s;
}

std::unique_ptr<Tokenizer> load_bert(const std::string& vocab_dir) { return std::make_unique<BertTokenizer>(vocab_dir); }

}  // namespace duo
