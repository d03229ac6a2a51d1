#include "data/unicode.h"
#include <cstdio>
#include <cstring>

namespace duo {

bool next_utf8(std::string_view s, size_t& i, char32_t& cp) {
  const size_t n = s.size();
  if (i >= n) return false;
  const unsigned char c0 = (unsigned char)s[i];
  if (c0 < 0x80) {
    cp = c0;
    i += 1;
    return true;
  }
  int len;
  char32_t v, min;
  if ((c0 & 0xE0) == 0xC0) { len = 2; v = c0 & 0x1F; min = 0x80; }
  else if ((c0 & 0xF0) == 0xE0) { len = 3; v = c0 & 0x0F; min = 0x800; }
  else if ((c0 & 0xF8) == 0xF0) { len = 4; v = c0 & 0x07; min = 0x10000; }
  else return false;  // a continuation byte or 0xF8..0xFF cannot start a sequence
  if (i + len > n) return false;
  for (int k = 1; k < len; ++k) {
    const unsigned char c = (unsigned char)s[i + k];
    if ((c & 0xC0) != 0x80) return false;
    v = (v << 6) | (c & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
  cp = v;
  i += len;
  return true;
}

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    // ASCII fast path: most text is ASCII, and validation runs on every document.
    if ((unsigned char)s[i] < 0x80) { ++i; continue; }
    if (!next_utf8(s, i, cp)) return i;
  }
  return std::string_view::npos;
}

std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    const size_t start = i;
    if (next_utf8(s, i, cp)) {
      out.append(s.data() + start, i - start);
    } else {
      append_utf8(out, 0xFFFD);
      i = start + 1;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += (char)cp;
  } else if (cp < 0x800) {
    out += (char)(0xC0 | (cp >> 6));
    out += (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += (char)(0xE0 | (cp >> 12));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  } else {
    out += (char)(0xF0 | (cp >> 18));
    out += (char)(0x80 | ((cp >> 12) & 0x3F));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  }
}

std::string describe_code_point(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", (unsigned)cp);
  std::string s = buf;
  if (cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0)) {
    s += " '";
    append_utf8(s, cp);
    s += "'";
  }
  return s;
}

// Python's str.strip(): ASCII whitespace, the separators \x1c-\x1f, U+0085 and the Unicode spaces.
static bool strip_char_at(std::string_view s, size_t i, size_t& len) {
  const unsigned char c = (unsigned char)s[i];
  if (c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f)) { len = 1; return true; }
  static const char* const kSpaces[] = {"\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80", "\xE2\x80\xA8", "\xE2\x80\xA9",
                                        "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};
  for (const char* sp : kSpaces)
    if (s.substr(i, std::strlen(sp)) == sp) { len = std::strlen(sp); return true; }
  if (s.substr(i, 2) == "\xE2\x80" && i + 2 < s.size() && (unsigned char)s[i + 2] <= 0x8A) { len = 3; return true; }
  return false;
}

std::string strip_whitespace(std::string_view s) {
  size_t b = 0, len;
  while (b < s.size() && strip_char_at(s, b, len)) b += len;
  size_t e = s.size();
  while (e > b) {  // step back one UTF-8 character at a time
    size_t k = e - 1;
    while (k > b && ((unsigned char)s[k] & 0xC0) == 0x80) --k;
    if (!strip_char_at(s, k, len) || k + len != e) break;
    e = k;
  }
  return std::string(s.substr(b, e - b));
}


}  // namespace duo
