// The floors of docs/architecture.md §1, kept: every `#include "…"` under src/, cuda/ and tools/ goes to the
// including file's own floor or to one its row of the table lists. The table is read from the document, so the
// picture the docs show and the rule the test applies cannot drift apart.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>
#include "data_paths.h"

namespace duo {
namespace {

namespace fs = std::filesystem;

struct Floors {
  std::vector<std::pair<std::string, std::string>> folders;  // folder prefix -> floor, longest prefix first
  std::map<std::string, std::set<std::string>> may_include;  // floor -> floors below it
};

std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream s(line);
  std::string cell;
  while (std::getline(s, cell, '|')) {
    const auto b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
    cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  return cells;  // cells[0] is the empty text before the first '|'
}

Floors read_floors(const std::string& doc) {
  Floors f;
  std::stringstream s(test::read_all(doc));
  std::string line;
  static const std::regex folder(R"(`([a-z/]+)/`)"), name(R"([a-z]+)");
  while (std::getline(s, line)) {
    if (!line.starts_with("| ")) continue;
    const auto c = split_cells(line);
    if (c.size() < 5 || c[1] == "floor" || c[1].starts_with("-")) continue;
    for (auto it = std::sregex_iterator(c[2].begin(), c[2].end(), folder); it != std::sregex_iterator(); ++it)
      f.folders.emplace_back((*it)[1].str() + "/", c[1]);
    std::set<std::string>& below = f.may_include[c[1]];
    if (c[4] == "every floor") below.insert("*");
    for (auto it = std::sregex_iterator(c[4].begin(), c[4].end(), name); it != std::sregex_iterator(); ++it)
      below.insert(it->str());
  }
  std::sort(f.folders.begin(), f.folders.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return f;
}

std::string floor_of(const Floors& f, const std::string& path) {
  for (const auto& [prefix, floor] : f.folders)
    if (path.starts_with(prefix)) return floor;
  return "";
}

// Where an include resolves: next to the including file, else under src/ or cuda/ (the build's -I paths).
std::string resolve(const fs::path& from, const std::string& target) {
  for (const fs::path& p : {from.parent_path() / target, fs::path("src") / target, fs::path("cuda") / target})
    if (fs::exists(p)) return p.lexically_normal().string();
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(floors)

BOOST_AUTO_TEST_CASE(includes_follow_the_table) {
  const Floors f = read_floors("docs/architecture.md");
  BOOST_REQUIRE(f.may_include.size() >= 12u);
  BOOST_TEST(f.may_include.at("core").empty());
  BOOST_TEST(f.may_include.at("math") == std::set<std::string>{"core"});
  BOOST_TEST(floor_of(f, "src/backend/cpu/linear.cpp") == "backend");
  BOOST_TEST(floor_of(f, "tools/duo-inspect.cpp") == "app");
  // docs/architecture.md §1's one exception, by file.
  const std::map<std::string, std::set<std::string>> exceptions = {{"src/backend/select.cpp", {"cuda"}}};

  static const std::regex include(R"(^\s*#\s*include\s+"([^"]+)\")");
  int64_t checked = 0;
  for (const char* root : {"src", "cuda", "tools"}) {
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || !(ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh")) continue;
      const std::string file = e.path().lexically_normal().string();
      const std::string from = floor_of(f, file);
      BOOST_TEST_CONTEXT(file) {
        BOOST_TEST(!from.empty(), "a folder that no floor of docs/architecture.md owns");
        std::stringstream s(test::read_all(file));
        std::string line;
        std::smatch m;
        while (std::getline(s, line)) {
          if (!std::regex_search(line, m, include)) continue;
          const std::string target = resolve(e.path(), m[1]);
          BOOST_TEST(!target.empty(), "#include \"" << m[1] << "\" does not resolve");
          if (target.empty()) continue;
          const std::string to = floor_of(f, target);
          const auto& below = f.may_include.at(from);
          const auto ex = exceptions.find(file);
          const bool ok = to == from || below.count(to) || below.count("*") ||
                          (ex != exceptions.end() && ex->second.count(to));
          BOOST_TEST(ok, file << " (" << from << ") includes " << target << " (" << to << "), a floor up");
          ++checked;
        }
      }
    }
  }
  BOOST_TEST(checked > 300);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace duo
