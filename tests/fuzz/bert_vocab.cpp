// Fuzz target: BERT's vocab.txt (data/wordpiece.h); a loaded vocabulary tokenizes a fixed text and the input
// itself (when it is UTF-8), and decodes the ids.
#include "data/wordpiece.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = duo::fuzz::as_text(data, size);
  duo::fuzz::write_file("vocab.txt", text);
  duo::fuzz::expect_clean([&] {
    const duo::BertTokenizer tok(duo::fuzz::scratch_dir());
    (void)tok.decode(tok.encode("Hello, World! Caf\xc3\xa9 unaffable [MASK] \xe4\xb8\xad\xe6\x96\x87"));
    (void)tok.decode(tok.encode(text));
  });
  return 0;
}
