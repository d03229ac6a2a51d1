// A scratch folder with a tiny char-level corpus for the training, distillation and end-to-end tests: the
// characters '0'..'9' (ids 0-9; <|endoftext|> = 10, [PAD] = 11, so V = 12) with an easy structure — each
// document counts upwards modulo 10 from a random start, so the next token is predictable from the last —
// its vocabulary file (vocab_dir(), for decoding) and, on request, a Diffusion Transformation table for V = 12.
#pragma once
#include <string>
#include <vector>

#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "core/philox.h"
#include "data/char_vocab.h"
#include "data/shard.h"
#include "io_test_util.h"

namespace duo::testing {

class TinyCorpus {
 public:
  static constexpr int64_t kVocab = 12;
  struct Split {
    int docs;
    uint64_t seed;
  };
  TinyCorpus(Split train, Split valid) {
    write("train", train);
    write("valid", valid);
    CharTokenizer({U'0', U'1', U'2', U'3', U'4', U'5', U'6', U'7', U'8', U'9'}).write(tmp_.file(kCharVocabFile));
  }
  std::string dir() const { return tmp_.path().string(); }
  std::string train_glob() const { return tmp_.file("train_*.bin"); }
  std::string valid_glob() const { return tmp_.file("valid_*.bin"); }
  std::string vocab_dir() const { return dir(); }
  std::string file(const std::string& name) const { return tmp_.file(name); }
  // Writes the integral table of V = 12 over the log-SNR range [lo, hi] and returns its path.
  std::string integral_table(double lo, double hi, int points) const {
    const std::string path = tmp_.file("integral_12.bin");
    IntegralTable::compute(DiffusionTransform(kVocab), lo, hi, points).write(path);
    return path;
  }

 private:
  void write(const std::string& split, Split s) {
    ShardWriter w(tmp_.file(split + "_000000.bin"), "char", kVocab);
    Philox r{s.seed, 0};
    for (int d = 0; d < s.docs; ++d) {
      std::vector<uint32_t> doc(20 + r.bits(2 * d) % 20);
      const uint32_t start = r.bits(2 * d + 1) % 10;
      for (size_t i = 0; i < doc.size(); ++i) doc[i] = (start + i) % 10;
      w.add_document(doc.data(), doc.size());
    }
    w.finish();
  }

  TempDir tmp_;
};

}  // namespace duo::testing
