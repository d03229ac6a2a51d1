// The code cites the maths by section (`docs/sampling.md §4`, `docs/diffusion.md §5.2–§5.5`): every citation in
// the sources, scripts and READMEs must name a docs/ file that exists and a section heading it has, so a renumbered
// or deleted section fails here rather than leaving comments that point nowhere. Also: nothing the project reads
// or cites lies outside the repository (no neighbouring folder, no private specification file).
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include "data_paths.h"

namespace duo {
namespace {

namespace fs = std::filesystem;

// The section numbers of a docs page: "## 5. Title" -> "5", "### 5.2 Title" -> "5.2".
std::set<std::string> sections_of(const std::string& page) {
  std::set<std::string> out;
  static const std::regex heading(R"(^#{2,4} (\d+(?:\.\d+)*)\.? )");
  std::string::size_type pos = 0;
  while (pos < page.size()) {
    const auto end = page.find('\n', pos);
    const std::string line = page.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    std::smatch m;
    if (std::regex_search(line, m, heading)) out.insert(m[1]);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

std::vector<fs::path> project_text_files() {
  std::vector<fs::path> files = {"README.md", "Makefile", "integral/README.md"};
  for (const char* dir : {"src", "cuda", "tools", "tests", "bench", "scripts", "data", "docs"}) {
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      const auto& e = *it;
      // Hidden folders are not the project's text (bench/.venv holds a PyTorch for `make bench`).
      if (e.is_directory() && e.path().filename().string().starts_with(".")) {
        it.disable_recursion_pending();
        continue;
      }
      if (!e.is_regular_file()) continue;
      const fs::path& p = e.path();
      if (p.string().starts_with("data/vendor") || p.string().starts_with("tests/fixtures")) continue;
      const std::string ext = p.extension().string();
      if (ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh" || ext == ".py" || ext == ".sh" ||
          ext == ".md")
        files.push_back(p);
    }
  }
  return files;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(docs)

BOOST_AUTO_TEST_CASE(every_citation_names_an_existing_section) {
  std::map<std::string, std::set<std::string>> pages;
  for (const auto& e : fs::directory_iterator("docs"))
    if (e.path().extension() == ".md") pages[e.path().filename().string()] = sections_of(test::read_all(e.path()));
  BOOST_REQUIRE(pages.size() >= 10u);
  BOOST_TEST(pages["model.md"].count("5.1") == 1u);  // the heading parser itself

  // docs/<page>.md, optionally followed by §N[.M], a range –§N[.M], and more ", §N" / " and §N" of the same page.
  static const std::regex cite(R"(docs/([a-z_]+\.md)((?: ?(?:§\d+(?:\.\d+)?)(?:(?:–|, | and )§\d+(?:\.\d+)?)*)?))");
  static const std::regex section(R"(§(\d+(?:\.\d+)?))");
  int64_t citations = 0;
  for (const fs::path& file : project_text_files()) {
    const std::string text = test::read_all(file);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), cite); it != std::sregex_iterator(); ++it) {
      const std::string page = (*it)[1], secs = (*it)[2];
      if (page == "README.md" && file.string().starts_with("docs/")) continue;
      BOOST_TEST_CONTEXT(file.string() << ": " << it->str()) {
        BOOST_TEST(fs::exists(fs::path("docs") / page));
        const auto found = pages.find(page);
        if (found == pages.end()) continue;
        for (auto s = std::sregex_iterator(secs.begin(), secs.end(), section); s != std::sregex_iterator(); ++s) {
          BOOST_TEST(found->second.count((*s)[1]) == 1u, "no section §" << (*s)[1] << " in docs/" << page);
          ++citations;
        }
      }
    }
  }
  BOOST_TEST(citations > 100);  // the code does cite the docs
}

BOOST_AUTO_TEST_CASE(nothing_points_outside_the_repository) {
  static const std::regex outside(R"(\.\./shared|shared[/](data|spec)|duo_(system|algorithms)\.md)");
  for (const fs::path& file : project_text_files()) {
    const std::string text = test::read_all(file);
    std::smatch m;
    if (std::regex_search(text, m, outside)) BOOST_ERROR(file.string() << " names " << m.str());
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace duo
