// Fuzz target: GPT-2's vocab.bpe (merge ranks, data/bpe.h) against the repository's encoder.json (read once);
// a loaded tokenizer encodes the input itself (when it is UTF-8) and decodes the ids. Run from the repository
// root.
#include "data/bpe.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const duo::Gpt2Tokenizer vocabulary("data/vendor/gpt2");
  const std::string_view text = duo::fuzz::as_text(data, size);
  const std::string path = duo::fuzz::write_file("vocab.bpe", text);
  duo::fuzz::expect_clean([&] {
    const duo::Gpt2Tokenizer tok(vocabulary, path);
    (void)tok.decode(tok.encode(text));
  });
  return 0;
}
