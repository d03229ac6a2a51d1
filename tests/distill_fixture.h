// tests/fixtures/distill.json, written by tools/reference/make_distill_fixture.py (tools/reference/README_distill.md).
#pragma once
#include <nlohmann/json.hpp>

#include "io_test_util.h"

namespace duo::testing {

inline const nlohmann::json& distill_fixture() {
  static const nlohmann::json j = read_json_fixture("distill.json", "tools/reference/make_distill_fixture.py");
  return j;
}

}  // namespace duo::testing
