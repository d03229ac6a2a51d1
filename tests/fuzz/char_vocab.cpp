// Fuzz target: the char vocabulary vocab_chars.txt (data/char_vocab.h); a loaded vocabulary encodes the input
// itself (when it is UTF-8, through the characters it knows) and decodes every id.
#include <vector>
#include "data/char_vocab.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = duo::fuzz::as_text(data, size);
  const std::string path = duo::fuzz::write_file(duo::kCharVocabFile, text);
  duo::fuzz::expect_clean([&] {
    const duo::CharTokenizer tok = duo::CharTokenizer::read(path);
    std::vector<uint32_t> all((size_t)tok.vocab_size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = (uint32_t)i;
    (void)tok.decode(all);
    (void)tok.decode(tok.encode(text));
  });
  return 0;
}
