// Shared by the libFuzzer targets (tests/fuzz/*.cpp; `make fuzz`, README "Fuzzing").
//
// Each target hands its input to a parser the way a user's file reaches it: most parsers take a path, so the
// bytes are written to a file in a scratch folder of this process first. The contract a target checks is the
// project's rule for bad input: a parser either succeeds or throws one duo::Error. Anything else is a finding
// that stops the fuzzer: a sanitizer report, a crash, an exception of another type (std::bad_alloc from a size
// read out of the file, a JSON library exception, std::out_of_range, ...), or a DUO_ASSERT ("internal check
// failed"), which marks a bug in duo.cu rather than bad input.
#pragma once
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include "core/error.h"

namespace duo::fuzz {

// A folder of this process, removed at exit: $TMPDIR/duo-fuzz.XXXXXX. (The string is never destroyed: the
// exit handler that removes the folder runs after the destructors of statics constructed later.)
inline const std::string& scratch_dir() {
  static const std::string& dir = *new std::string([] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/duo-fuzz.XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      std::perror("duo-fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] { std::filesystem::remove_all(scratch_dir()); });
    return pattern;
  }());
  return dir;
}

// Writes `bytes` to scratch_dir()/name (replacing it) and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
  if (!f.flush()) {
    std::perror(("duo-fuzz: cannot write " + path).c_str());
    std::abort();
  }
  return path;
}

// Runs parse(); a duo::Error is the expected answer to bad input, except an internal check (a bug).
template <class F>
void expect_clean(F&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    if (e.problem().rfind("internal check failed", 0) == 0) {
      std::fprintf(stderr, "duo-fuzz: internal check failed on this input (a bug, not bad input):\n%s\n", e.what());
      std::abort();
    }
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) { return {(const char*)data, size}; }

}  // namespace duo::fuzz
