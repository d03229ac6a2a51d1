// tests/fixtures/distill.json, written by tools/reference/make_distill_fixture.py (tools/reference/README_distill.md).
#pragma once
#include <fstream>
#include <string>
#include <nlohmann/json.hpp>
#include "core/error.h"

namespace duo::testing {

inline const nlohmann::json& distill_fixture() {
  static const nlohmann::json j = [] {
    std::string here = __FILE__;
    std::string path = here.substr(0, here.find_last_of('/') + 1) + "fixtures/distill.json";
    std::ifstream f(path);
    DUO_CHECK(f.good(), path, "cannot open the distillation fixture",
              "run the tests from the repository root, or regenerate with "
              "/usr/bin/python3 tools/reference/make_distill_fixture.py");
    return nlohmann::json::parse(f);
  }();
  return j;
}

}  // namespace duo::testing
