// Fuzz target: a token shard handed to duo-train / duo-eval / duo-inspect (data/shard.h, docs/data.md §6):
// header, length, document offsets, crc32 and ids, then every document read back.
#include "data/shard.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = duo::fuzz::write_file("shard.bin", duo::fuzz::as_text(data, size));
  for (bool verify : {true, false})
    duo::fuzz::expect_clean([&] {
      const duo::Shard s(path, verify);
      uint64_t sum = 0;
      for (int64_t d = 0; d < s.n_docs(); ++d)
        for (uint32_t id : s.document(d)) sum += id;
      (void)sum;
    });
  return 0;
}
