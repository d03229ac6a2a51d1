// scripts/paper/: every training row of the papers' tables, as its script runs it, plans its device memory
// (DRY_RUN=1: duo-train --dry_run / duo-distill --dry_run with the row's options, no data or GPU needed), so a
// renamed option or a bad batch in a row fails here; every script of the folder parses (bash -n).
#include <boost/test/unit_test.hpp>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>

namespace {

std::string run(const std::string& command, int& status) {
  std::string out;
  FILE* p = ::popen(("timeout 120 " + command + " 2>&1").c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  status = ::pclose(p);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(paper_scripts)

BOOST_AUTO_TEST_CASE(every_training_row_plans_its_memory) {
  int rows = 0;
  for (const auto& e : std::filesystem::directory_iterator("scripts/paper")) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".sh") continue;
    BOOST_TEST_CONTEXT(name) {
      int status = -1;
      const std::string syntax = run("bash -n " + e.path().string(), status);
      BOOST_TEST_INFO(syntax);
      BOOST_TEST(status == 0);
      if (!name.starts_with("train_") && !name.starts_with("distill_")) continue;
      ++rows;
      const std::string out = run("env DRY_RUN=1 DUO_BIN=build bash " + e.path().string(), status);
      BOOST_TEST_INFO(out);
      BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
      BOOST_TEST(out.find("planned device memory of duo-") != std::string::npos);
      BOOST_TEST(out.find("  total: ") != std::string::npos);
    }
  }
  BOOST_TEST(rows >= 10);
}

BOOST_AUTO_TEST_SUITE_END()
