// The work of duo-tokenize: documents from corpus files -> detokenizer -> tokenizer (all threads) -> shards,
// with a train/validation split and a progress line (MB/s, ETA).
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "data/text_input.h"

namespace duo {

struct TokenizeOptions {
  std::string tokenizer;             // gpt2 | bert-base-uncased | char
  std::string vocab_dir;             // tokenizer files; for char, where vocab_chars.txt is read or written
  std::vector<std::string> inputs;
  std::string output_dir;
  InputOptions input;
  std::string detokenizer = "none";
  std::string prefix = "train";      // shard names: <prefix>_000000.bin, ...; validation: valid_000000.bin
  int64_t shard_tokens = 100'000'000;  // a new shard starts once this many tokens are written
  int64_t valid_last_docs = 0;       // the last N documents go to validation (OpenWebText: 100000)
  double valid_fraction = 0;         // or the last fraction of the documents (counted in a first pass)
  int threads = 0;                   // 0: all cores
  bool progress = true;
};

struct TokenizeReport {
  int64_t docs[2] = {0, 0}, tokens[2] = {0, 0};  // [0] = <prefix>, [1] = valid
  std::vector<std::string> shards;
  uint64_t bytes = 0;
  double seconds = 0;
  int64_t vocab_size = 0;
};

TokenizeReport tokenize_to_shards(const TokenizeOptions& opt);

}  // namespace duo
