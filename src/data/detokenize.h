// Detokenizers of the reference (docs/data.md §4): string rewrites that undo the pre-tokenised spacing of old corpora
// ("don 't" -> "don't", " @-@ " -> "-") before our tokenizers see the text. Each is the reference's sequence of
// str.replace / re.sub calls, in the same order (regexes through PCRE2 with Unicode classes, like Python's re).
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace duo {

class Detokenizer {
 public:
  // name: none | lm1b | wikitext | ptb | lambada | wikitext+lm1b (the scientific_papers sets: WikiText then LM1B)
  explicit Detokenizer(const std::string& name);
  ~Detokenizer();
  Detokenizer(const Detokenizer&) = delete;
  Detokenizer& operator=(const Detokenizer&) = delete;

  std::string apply(std::string text) const;  // thread-safe
  const std::string& name() const { return name_; }

 private:
  struct Step;  // a literal replacement, a regex substitution or LAMBADA's strip-and-prefix
  std::string name_;
  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace duo
