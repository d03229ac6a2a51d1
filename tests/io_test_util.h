// Helpers shared by the I/O tests: a scratch directory removed at the end of the test, raw file writing
// (for hand-made corrupt files), and the path of a committed fixture.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace duo::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "duo-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Committed fixtures live in tests/fixtures; the tests run from the repository root (make test does).
// DUO_FIXTURES overrides the folder.
inline std::string fixture(const std::string& name) {
  const char* dir = std::getenv("DUO_FIXTURES");
  return std::string(dir ? dir : "tests/fixtures") + "/" + name;
}

// A committed JSON fixture (tests/fixtures/<name>), parsed on first use; `generator` names the script that
// writes it, for the error's HINT.
inline nlohmann::json read_json_fixture(const std::string& name, const std::string& generator) {
  const std::string path = fixture(name);
  std::ifstream f(path);
  DUO_CHECK(f.good(), path, "cannot open the fixture",
            "run the tests from the repository root, or regenerate it with /usr/bin/python3 " + generator);
  return nlohmann::json::parse(f);
}

}  // namespace duo::testing
