// scripts/paper/: every training row of the papers' tables, as its script runs it, plans its device memory
// (DRY_RUN=1: duo-train --dry_run / duo-distill --dry_run with the row's options, no data or GPU needed), so a
// renamed option or a bad batch in a row fails here; every script of the folder parses (bash -n). The distillation
// row is left out of the plan: duo-distill --dry_run computes a real step's relaxed inputs on the host (2048 x 50258
// Gaussian draws, about 2.5 minutes on this CPU), too long for `make test`.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <string>
#include "command_util.h"

using duo::testing::exit_code;
using duo::testing::run_command;

BOOST_AUTO_TEST_SUITE(paper_scripts)

BOOST_AUTO_TEST_CASE(every_training_row_plans_its_memory) {
  int rows = 0;
  for (const auto& e : std::filesystem::directory_iterator("scripts/paper")) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".sh") continue;
    BOOST_TEST_CONTEXT(name) {
      const auto syntax = run_command("bash -n " + e.path().string());
      BOOST_TEST_INFO(syntax.out);
      BOOST_TEST(exit_code(syntax) == 0);
      if (!name.starts_with("train_")) continue;
      ++rows;
      const auto plan = run_command("env DRY_RUN=1 DUO_BIN=build bash " + e.path().string(), 120);
      BOOST_TEST_INFO(plan.out);
      BOOST_TEST(exit_code(plan) == 0);
      BOOST_TEST(plan.out.find("planned device memory of duo-") != std::string::npos);
      BOOST_TEST(plan.out.find("  total: ") != std::string::npos);
    }
  }
  BOOST_TEST(rows >= 9);
}

BOOST_AUTO_TEST_SUITE_END()
