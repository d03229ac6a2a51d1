// UTF-8 helpers shared by the tokenizers: decoding one code point, validation, replacement of invalid bytes.
// Why our own: the tokenizers need exact control over what counts as invalid (overlongs, surrogates, > U+10FFFF)
// so that every tokenizer sees the same code points, and PCRE2 is then run with PCRE2_NO_UTF_CHECK.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duo {

// Decodes the code point starting at s[i]; on success advances i and returns true. Rejects truncated sequences,
// overlong encodings, surrogates (U+D800..U+DFFF) and values above U+10FFFF, leaving i unchanged.
bool next_utf8(std::string_view s, size_t& i, char32_t& cp);

// Byte offset of the first invalid sequence, or std::string_view::npos when s is valid UTF-8.
size_t find_invalid_utf8(std::string_view s);

// s with every maximal invalid sequence replaced by U+FFFD (one per offending byte, like Python's
// bytes.decode(errors="replace") for single stray bytes).
std::string replace_invalid_utf8(std::string_view s);

void append_utf8(std::string& out, char32_t cp);

// s without leading and trailing whitespace as Python's str.strip() sees it (ASCII whitespace, \x1c-\x1f,
// U+0085 and the Unicode spaces).
std::string strip_whitespace(std::string_view s);

// "U+00E9 'é'" style description of a code point, for error messages.
std::string describe_code_point(char32_t cp);

}  // namespace duo
