// A sampling template (docs/sampling.md §12.1): which positions of every sample are fixed to which ids, read
// from a text file. Literal text is encoded with the model's tokenizer and fixed; markers in double brackets
// give free positions and raw ids:
//
//   The capital of France is[[3]]. It lies on the[[ids 5 6]] river[[2]]
//
//   [[N]]          N free positions (N >= 1), sampled
//   [[ids a b c]]  fixed token ids, as given
//
// Position 0 is BOS when the tokenizer has one (as for --sampling.prefix); the positions after the template's
// end are free. One trailing newline of the file is ignored.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "data/tokenizer.h"

namespace duo {

struct SampleTemplate {
  std::vector<int32_t> ids;   // (L): the fixed id where keep is 1, else 0
  std::vector<uint8_t> keep;  // (L): 1 = fixed
  int64_t fixed() const;      // number of fixed positions
  int64_t prefix() const;     // length of the leading run of fixed positions
};

// `source` names the template in errors (its file). bos < 0: no BOS. L: the sample length; V: the model's
// vocabulary (every fixed id must lie in [0, V)).
SampleTemplate parse_template(const std::string& text, const std::string& source, const Tokenizer& tok, int64_t bos,
                              int64_t L, int64_t V);
SampleTemplate read_template(const std::string& path, const Tokenizer& tok, int64_t bos, int64_t L, int64_t V);

// The template of a prefix: its ids at positions 0 .. n-1, the rest free.
SampleTemplate prefix_template(const std::vector<int32_t>& prefix, int64_t L);

}  // namespace duo
