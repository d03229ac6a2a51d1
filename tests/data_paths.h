// Where the data-module tests find their inputs: the repository's vendored files (data/vendor/: tokenizer
// files, tinyshakespeare) and the committed fixtures.
#pragma once
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include "core/error.h"
#include "io/repo_files.h"

namespace duo::test {

// data/vendor of this repository (found from the working directory or from the test binary's folder).
inline std::string vendor_data() {
  const std::string d = vendor_dir();
  if (d.empty()) fail("data/vendor", "the repository's vendored data folder was not found",
                      "run the tests from the repository root (make test does)");
  return d;
}

inline std::string tinyshakespeare_path() { return vendor_data() + "/tinyshakespeare/input.txt"; }

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open", "run the tests from the repository root");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A fresh empty folder under the system temp dir (named by process id, so parallel test runs do not meet),
// removed when the object goes away.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("duo-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace duo::test
