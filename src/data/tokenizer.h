// The tokenizer interface: text -> ids and back, with the special ids the loaders and samplers need.
//
// Three implementations, each exact against its reference (tests/fixtures/tokenizer/):
//   gpt2               byte-level BPE (bpe.h)            vocab 50258: 50257 BPE tokens + [PAD]=50257
//   bert-base-uncased  BERT basic + WordPiece (wordpiece.h)  vocab 30522
//   char               one id per code point (char_vocab.h)  vocab = n chars + <|endoftext|> + [PAD]
//
// Thread safety: a loaded tokenizer is immutable; encode() may be called from many threads at once. A thread
// that encodes a lot passes its own EncodeCache (from make_cache()) to reuse per-thread scratch (the GPT-2
// word cache and PCRE2 match data); without one, encode() allocates a temporary cache.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duo {

// Special token ids; -1 where the tokenizer has none.
struct SpecialIds {
  int64_t bos = -1, eos = -1, pad = -1, mask = -1, unk = -1;
};

// Special ids derived from a tokenizer name and its vocabulary size alone (what a shard header records), so the
// loaders need no vocab files: gpt2 -> BOS=EOS=50256, PAD=50257; bert-base-uncased -> [CLS]=101, [SEP]=102,
// [PAD]=0, [MASK]=103, [UNK]=100; char -> BOS=EOS=V-2, PAD=V-1 (see char_vocab.h).
SpecialIds special_ids_for(const std::string& tokenizer_name, int64_t vocab_size);

// Per-thread scratch of one tokenizer (opaque to callers).
struct EncodeCache {
  virtual ~EncodeCache() = default;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  // Model-facing vocabulary size (includes added specials such as GPT-2's [PAD]).
  virtual int64_t vocab_size() const = 0;
  virtual SpecialIds specials() const = 0;

  // Appends the ids of text (no special tokens are added, and special-token text such as "<|endoftext|>" is
  // encoded as ordinary text). text must be valid UTF-8: otherwise a duo::Error names the byte offset.
  virtual void encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache* cache) const = 0;
  virtual std::unique_ptr<EncodeCache> make_cache() const { return nullptr; }
  std::vector<uint32_t> encode(std::string_view text) const {
    std::vector<uint32_t> out;
    auto cache = make_cache();
    encode(text, out, cache.get());
    return out;
  }

  // ids -> text. Special ids decode to their names ("<|endoftext|>", "[PAD]", "[CLS]", ...); an id outside the
  // vocabulary is a duo::Error. GPT-2 may return bytes that are not valid UTF-8 (a cut multi-byte character).
  virtual std::string decode(std::span<const uint32_t> ids) const = 0;
  // The text of one id, for inspection (GPT-2: the raw bytes; BERT: the WordPiece string with "##").
  virtual std::string id_to_piece(uint32_t id) const = 0;
};

// name: gpt2 | bert-base-uncased | char. vocab_dir: the folder with the tokenizer files (gpt2: encoder.json +
// vocab.bpe or vocab.json + merges.txt; bert: vocab.txt; char: vocab_chars.txt).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& name, const std::string& vocab_dir);

// Throws a duo::Error (where: what names the text) when text is not valid UTF-8.
void require_utf8(std::string_view text, const char* who);

}  // namespace duo
