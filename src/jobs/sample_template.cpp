#include "jobs/sample_template.h"

#include <fstream>
#include <sstream>
#include "core/error.h"

namespace duo {

int64_t SampleTemplate::fixed() const {
  int64_t n = 0;
  for (uint8_t k : keep) n += k != 0;
  return n;
}

int64_t SampleTemplate::prefix() const {
  int64_t n = 0;
  while (n < (int64_t)keep.size() && keep[(size_t)n]) ++n;
  return n;
}

namespace {

// Parses a whole non-negative integer; false when `s` is not one.
bool parse_count(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

SampleTemplate parse_template(const std::string& text_in, const std::string& source, const Tokenizer& tok, int64_t bos,
                              int64_t L, int64_t V) {
  std::string text = text_in;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  const std::string hint = "write text, [[N]] for N free positions and [[ids a b]] for fixed ids (docs/sampling.md §12.1)";
  std::vector<int32_t> ids;
  std::vector<uint8_t> keep;
  auto fix = [&](int64_t id, size_t at) {
    DUO_CHECK(id >= 0 && id < V, source, str("id ", id, " at byte ", at, " is outside the model's vocabulary of ", V),
              "use ids of the model's tokenizer");
    ids.push_back((int32_t)id);
    keep.push_back(1);
  };
  if (bos >= 0) fix(bos, 0);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("[[", pos);
    const size_t end_text = open == std::string::npos ? text.size() : open;
    if (end_text > pos)
      for (uint32_t id : tok.encode(std::string_view(text).substr(pos, end_text - pos))) fix((int64_t)id, pos);
    if (open == std::string::npos) break;
    const size_t close = text.find("]]", open + 2);
    DUO_CHECK(close != std::string::npos, source, str("the marker at byte ", open, " has no closing ]]"), hint);
    const std::string body = text.substr(open + 2, close - open - 2);
    std::istringstream words(body);
    std::string first;
    words >> first;
    int64_t n = 0;
    if (first == "ids") {
      std::string w;
      int64_t count = 0;
      while (words >> w) {
        DUO_CHECK(parse_count(w, n), source, str("'", w, "' in the marker at byte ", open, " is not a token id"), hint);
        fix(n, open);
        ++count;
      }
      DUO_CHECK(count > 0, source, str("the marker at byte ", open, " lists no ids"), hint);
    } else {
      std::string extra;
      DUO_CHECK(parse_count(first, n) && n >= 1 && !(words >> extra), source,
                str("the marker [[", body, "]] at byte ", open, " is neither [[N]] (N >= 1) nor [[ids ...]]"), hint);
      DUO_CHECK(n <= L, source, str("[[", n, "]] at byte ", open, " is longer than the samples (", L, " tokens)"),
                "use a shorter span or a longer --model.length");
      ids.insert(ids.end(), (size_t)n, 0);
      keep.insert(keep.end(), (size_t)n, 0);
    }
    pos = close + 2;
  }
  DUO_CHECK((int64_t)ids.size() <= L, source,
            str("the template covers ", ids.size(), " positions (BOS included), the samples have ", L),
            "shorten the template or use a longer --model.length");
  ids.resize((size_t)L, 0);
  keep.resize((size_t)L, 0);
  return {ids, keep};
}

SampleTemplate read_template(const std::string& path, const Tokenizer& tok, int64_t bos, int64_t L, int64_t V) {
  std::ifstream in(path, std::ios::binary);
  DUO_CHECK(bool(in), path, "cannot open the sampling template", "check --sampling.template");
  std::ostringstream all;
  all << in.rdbuf();
  return parse_template(all.str(), path, tok, bos, L, V);
}

SampleTemplate prefix_template(const std::vector<int32_t>& prefix, int64_t L) {
  SampleTemplate t;
  t.ids.assign((size_t)L, 0);
  t.keep.assign((size_t)L, 0);
  for (size_t j = 0; j < prefix.size() && (int64_t)j < L; ++j) {
    t.ids[j] = prefix[j];
    t.keep[j] = 1;
  }
  return t;
}

}  // namespace duo
