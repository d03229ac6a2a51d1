#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/detokenize.h"
#include <pcre2.h>
#include <cstring>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {

struct Detokenizer::Step {
  enum Kind { kLiteral, kRegex, kStripPrefixNewline } kind;
  std::string from, to;  // kRegex: to uses PCRE2's $1 for Python's \1
  pcre2_code* re = nullptr;
  ~Step() { pcre2_code_free(re); }
};

namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string r;
  size_t pos = 0, hit;
  while ((hit = s.find(from, pos)) != std::string::npos) {
    r.append(s, pos, hit - pos);
    r += to;
    pos = hit + from.size();
  }
  r.append(s, pos);
  return r;
}

}  // namespace

Detokenizer::Detokenizer(const std::string& name) : name_(name) {
  auto lit = [&](std::string a, std::string b) {
    auto s = std::make_unique<Step>();
    s->kind = Step::kLiteral, s->from = std::move(a), s->to = std::move(b);
    steps_.push_back(std::move(s));
  };
  auto rx = [&](const std::string& pattern, std::string to) {
    auto s = std::make_unique<Step>();
    s->kind = Step::kRegex, s->from = pattern, s->to = std::move(to);
    int err;
    PCRE2_SIZE off;
    s->re = pcre2_compile((PCRE2_SPTR)pattern.c_str(), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    DUO_ASSERT(s->re != nullptr);
    steps_.push_back(std::move(s));
  };
  auto wikitext = [&] {
    lit("s '", "s'");
    rx(R"(/' [0-9]/)", "/'[0-9]/");  // the reference's pattern, literal slashes and all
    lit(" @-@ ", "-"); lit(" @,@ ", ","); lit(" @.@ ", ".");
    lit(" : ", ": "); lit(" ; ", "; "); lit(" . ", ". "); lit(" ! ", "! "); lit(" ? ", "? "); lit(" , ", ", ");
    rx(R"(\(\s*([^\)]*?)\s*\))", "($1)");
    rx(R"(\[\s*([^\]]*?)\s*\])", "[$1]");
    rx(R"(\{\s*([^}]*?)\s*\})", "{$1}");
    rx(R"("\s*([^"]*?)\s*")", "\"$1\"");
    rx(R"('\s*([^']*?)\s*')", "'$1'");
    lit("= = = =", "===="); lit("= = =", "==="); lit("= =", "==");
    lit(" \xC2\xB0 ", "\xC2\xB0");  // degree sign
    lit(" \n", "\n"); lit("\n ", "\n");
    lit(" N ", " 1 ");
    lit(" 's", "'s");
  };
  auto lm1b = [&] {
    lit("http : / / ", "http://"); lit("https : / / ", "https://");
    rx(R"( \'(\w+))", "'$1");
    rx(R"( (\w+) \. )", " $1. ");
    rx(R"( (\w+) \.$)", " $1.");
    lit(" ? ", "? "); rx(R"( \?$)", "?");
    lit(" ! ", "! "); rx(R"( \!$)", "!");
    lit(" , ", ", "); lit(" : ", ": "); lit(" ; ", "; "); lit(" / ", "/");
    rx(R"(\" ([^\"]+) \")", "\"$1\"");
    rx(R"(\' ([^\']+) \')", "'$1'");
    rx(R"(\( ([^\(\)]+) \))", "($1)");
    rx(R"(\[ ([^\[\]]+) \])", "[$1]");
    lit("$ ", "$"); lit("\xC2\xA3 ", "\xC2\xA3");  // pound sign
  };
  if (name == "none" || name.empty()) {
  } else if (name == "wikitext") {
    wikitext();
  } else if (name == "lm1b") {
    lm1b();
  } else if (name == "wikitext+lm1b") {
    wikitext();
    lm1b();
  } else if (name == "ptb") {
    lit(" 's", "'s"); lit("s ' ", "s' "); lit(" n't", "n't"); lit(" \n ", "\n"); lit("\\/", "/");
    for (int i = 0; i < 10; ++i) lit(" N ", " 1 ");  // the reference repeats it: overlapping " N N " needs two
    lit("$ 1", "$1"); lit("# 1", "#1"); lit("<unk>", "?");
  } else if (name == "lambada") {
    lit("\xE2\x80\x9C", "\""); lit("\xE2\x80\x9D", "\"");  // curly double quotes
    auto s = std::make_unique<Step>();
    s->kind = Step::kStripPrefixNewline;
    steps_.push_back(std::move(s));
  } else {
    fail("--detokenizer", str("unknown detokenizer '", name, "'"), "use none, lm1b, wikitext, ptb, lambada or wikitext+lm1b");
  }
}

Detokenizer::~Detokenizer() = default;

std::string Detokenizer::apply(std::string text) const {
  for (const auto& s : steps_) {
    if (s->kind == Step::kLiteral) {
      if (text.find(s->from) != std::string::npos) text = replace_all(text, s->from, s->to);
    } else if (s->kind == Step::kStripPrefixNewline) {
      const std::string stripped = strip_whitespace(text);
      text.assign(1, '\n');
      text += stripped;
    } else {
      PCRE2_SIZE out_len = text.size() + 64;
      std::string out(out_len, '\0');
      for (int attempt = 0; attempt < 2; ++attempt) {
        const int rc = pcre2_substitute(s->re, (PCRE2_SPTR)text.data(), text.size(), 0,
                                        PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_NO_UTF_CHECK,
                                        nullptr, nullptr, (PCRE2_SPTR)s->to.data(), s->to.size(),
                                        (PCRE2_UCHAR*)out.data(), &out_len);
        if (rc >= 0) {
          out.resize(out_len);
          text.swap(out);
          break;
        }
        DUO_ASSERT(rc == PCRE2_ERROR_NOMEMORY && attempt == 0);
        out.assign(out_len, '\0');  // out_len now holds the size needed
      }
    }
  }
  return text;
}

}  // namespace duo
