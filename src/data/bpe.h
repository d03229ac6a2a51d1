// GPT-2 byte-level BPE, id-exact with OpenAI's encoder.py / tiktoken's r50k ("gpt2") encoding.
//
// Encoding a text:
//   1. pre-tokenise with GPT-2's regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (PCRE2, UTF + UCP, JIT). \s is spelled as an explicit class equal to Unicode White_Space, because
//      PCRE2's \s under UCP omits U+0085 while tiktoken's (Rust regex) and OpenAI's (Python regex) include it;
//   2. map each piece's bytes to their single-byte tokens (the byte<->unicode table of encoder.py);
//   3. merge adjacent pairs, lowest merge rank first, until no pair has a rank.
// Pieces seen before come from a per-thread word cache (most words repeat).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
#include "data/tokenizer.h"

namespace duo {

constexpr int64_t kGpt2EndOfText = 50256;  // <|endoftext|>: BOS and EOS
constexpr int64_t kGpt2Pad = 50257;        // [PAD], added by the reference (vocab 50258)

class Gpt2Tokenizer final : public Tokenizer {
 public:
  // Reads encoder.json + vocab.bpe (OpenAI names) or vocab.json + merges.txt (Hugging Face names).
  explicit Gpt2Tokenizer(const std::string& vocab_dir);
  // The vocabulary (encoder.json) of `vocabulary` with the merge ranks of another file: lets the merges file be
  // read on its own (its fuzz target, tests/fuzz/gpt2_merges.cpp) without re-reading the 1 MB encoder.json.
  Gpt2Tokenizer(const Gpt2Tokenizer& vocabulary, const std::string& merges_path);
  ~Gpt2Tokenizer() override;
  Gpt2Tokenizer(const Gpt2Tokenizer&) = delete;  // owns the compiled regex
  Gpt2Tokenizer& operator=(const Gpt2Tokenizer&) = delete;

  std::string name() const override { return "gpt2"; }
  int64_t vocab_size() const override { return kGpt2Pad + 1; }
  SpecialIds specials() const override;
  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache* cache) const override;
  std::unique_ptr<EncodeCache> make_cache() const override;
  std::string decode(std::span<const uint32_t> ids) const override;
  std::string id_to_piece(uint32_t id) const override;

 private:
  struct Merge {
    uint32_t rank, id;
  };
  void read_encoder(const std::string& path);  // fills byte_id_, id_bytes_, ids_
  void read_merges(const std::string& path);   // fills merges_ (needs ids_)
  void compile_regex();
  void bpe(std::string_view piece, std::vector<uint32_t>& out) const;

  void* regex_ = nullptr;                       // pcre2_code_8*, JIT-compiled; immutable after construction
  std::array<uint32_t, 256> byte_id_{};          // byte -> its single-byte token id
  std::unordered_map<uint64_t, Merge> merges_;   // (left id << 32 | right id) -> rank and merged id
  std::vector<std::string> id_bytes_;            // id -> the bytes it stands for
  std::unordered_map<std::string, uint32_t> ids_;  // encoder.json: byte-unicode string -> id
  std::string encoder_file_;                     // its file name, for messages
};

std::unique_ptr<Tokenizer> load_gpt2(const std::string& vocab_dir);

}  // namespace duo
