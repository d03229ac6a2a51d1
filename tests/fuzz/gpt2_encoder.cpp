// Fuzz target: GPT-2's encoder.json (data/bpe.h), with the repository's vocab.bpe beside it. The parser wants
// exactly 50,257 entries, so most inputs end at that check; the interesting part is the JSON reader and the
// checks before it. A loaded tokenizer encodes and decodes a fixed text. Run from the repository root.
#include <filesystem>
#include "data/bpe.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool merges_copied = [] {
    std::filesystem::copy_file("data/vendor/gpt2/vocab.bpe",
                               duo::fuzz::scratch_dir() + "/vocab.bpe",
                               std::filesystem::copy_options::overwrite_existing);
    return true;
  }();
  (void)merges_copied;
  duo::fuzz::write_file("encoder.json", duo::fuzz::as_text(data, size));
  duo::fuzz::expect_clean([&] {
    const duo::Gpt2Tokenizer tok(duo::fuzz::scratch_dir());
    (void)tok.decode(tok.encode("Hello, world! 123 \xc3\xa9t\xc3\xa9\n"));
  });
  return 0;
}
