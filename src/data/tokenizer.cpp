#include "data/tokenizer.h"
#include "core/error.h"
#include "data/bpe.h"
#include "data/char_vocab.h"
#include "data/unicode.h"
#include "data/wordpiece.h"

namespace duo {

SpecialIds special_ids_for(const std::string& name, int64_t vocab_size) {
  SpecialIds s;
  if (name == "gpt2") {
    s.bos = s.eos = kGpt2EndOfText;
    s.pad = kGpt2Pad;
  } else if (name == "bert-base-uncased") {
    s.pad = 0; s.unk = 100; s.bos = 101; s.eos = 102; s.mask = 103;
  } else if (name == "char") {
    DUO_CHECK(vocab_size >= 3, "char tokenizer", str("vocabulary size ", vocab_size, " is too small"),
              "a char vocabulary has at least one character plus <|endoftext|> and [PAD]");
    s.bos = s.eos = vocab_size - 2;
    s.pad = vocab_size - 1;
  } else {
    fail("tokenizer", str("unknown tokenizer name '", name, "'"), "use gpt2, bert-base-uncased or char");
  }
  return s;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& name, const std::string& vocab_dir) {
  if (name == "gpt2") return load_gpt2(vocab_dir);
  if (name == "bert-base-uncased") return load_bert(vocab_dir);
  if (name == "char") return load_char_tokenizer(vocab_dir);
  fail("--tokenizer", str("unknown tokenizer '", name, "'"), "use gpt2, bert-base-uncased or char");
}

void require_utf8(std::string_view text, const char* who) {
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    fail(who, str("invalid UTF-8 at byte ", bad, " of the text (byte 0x", std::hex, (unsigned)(unsigned char)text[bad],
                  ")"),
         "fix the input encoding, or run duo-tokenize with --invalid_utf8 replace (bad bytes become U+FFFD)");
}

}  // namespace duo
