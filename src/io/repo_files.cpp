#include "io/repo_files.h"
#include <filesystem>
#include <system_error>

namespace duo {

namespace fs = std::filesystem;

std::string repo_file(const std::string& relative) {
  std::error_code ec;
  if (fs::exists(relative, ec)) return relative;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  fs::path dir = exe.parent_path();
  for (int up = 0; up < 3 && !dir.empty(); ++up, dir = dir.parent_path())
    if (fs::exists(dir / relative, ec)) return (dir / relative).string();
  return "";
}

std::string vendor_dir() {
  const std::string readme = repo_file("data/vendor/README.md");
  return readme.empty() ? "" : fs::path(readme).parent_path().string();
}

std::string find_vocab_dir(const std::string& name, const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  if (const std::string v = vendor_dir(); !v.empty() && fs::is_directory(fs::path(v) / name, ec))
    return (fs::path(v) / name).string();
  return "";
}

}  // namespace duo
