// Character-level tokenizer: one id per Unicode code point seen in the corpus.
//
// Layout of a vocabulary of n characters (model vocabulary K = n + 2):
//   ids 0 .. n-1   the characters, sorted by code point (tinyshakespeare: n = 65, '\n' = 0, ' ' = 1, ...)
//   id  n          <|endoftext|>: BOS = EOS (the document separator of wrap mode), as GPT-2's 50256
//   id  n + 1      [PAD]: padding of padded/packed rows; never in the data. Like GPT-2's added [PAD] it is the
//                  mask token of the absorbing algorithms and part of DUO's uniform prior.
// File vocab_chars.txt (in the --vocab folder): a '#' comment line, then one code point per line as hex
// ("000A"), in id order. It is written by duo-tokenize from the corpus and read back by every later run.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>
#include "data/tokenizer.h"

namespace duo {

constexpr const char* kCharVocabFile = "vocab_chars.txt";

class CharTokenizer final : public Tokenizer {
 public:
  explicit CharTokenizer(std::vector<char32_t> chars);  // sorted, unique
  static CharTokenizer read(const std::string& path);
  void write(const std::string& path) const;

  std::string name() const override { return "char"; }
  int64_t vocab_size() const override { return (int64_t)chars_.size() + 2; }
  SpecialIds specials() const override;
  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache* cache) const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  std::string id_to_piece(uint32_t id) const override;
  const std::vector<char32_t>& chars() const { return chars_; }

 private:
  std::vector<char32_t> chars_;
  std::vector<int32_t> ascii_id_;                 // fast path: code point < 128 -> id or -1
  std::unordered_map<char32_t, uint32_t> id_of_;  // every character
};

// Collects the code points of texts into a sorted unique set (used to build a vocabulary from a corpus).
class CharCollector {
 public:
  void add(std::string_view text);  // text must be valid UTF-8
  void merge(const CharCollector& other);
  std::vector<char32_t> chars() const;

 private:
  std::vector<bool> seen_;  // indexed by code point, grown on demand
};

std::unique_ptr<Tokenizer> load_char_tokenizer(const std::string& vocab_dir);

}  // namespace duo
