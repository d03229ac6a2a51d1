// Where the data-module tests find their inputs: the shared data folder (tokenizer files, tinyshakespeare) and
// the committed fixtures. The shared folder is $DUO_SHARED_DATA, or shared/data, ../shared/data or
// ../../shared/data seen from the repository root (a checkout, a worktree, the device machine's copy).
#pragma once
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include "core/error.h"

namespace duo::test {

inline std::string shared_data() {
  if (const char* e = std::getenv("DUO_SHARED_DATA")) return e;
  for (const char* d : {"shared/data", "../shared/data", "../../shared/data"})
    if (std::filesystem::exists(std::string(d) + "/tinyshakespeare.txt")) return d;
  fail("shared/data", "the shared data folder was not found",
       "run the tests from the repository root, or set DUO_SHARED_DATA to the folder with tinyshakespeare.txt");
}

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
