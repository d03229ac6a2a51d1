// The message of the duo::Error a call throws, for tests that check what a user would read.
#pragma once
#include <string>
#include "core/error.h"

namespace duo::testing {

// Runs f and returns the duo::Error message it throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const duo::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace duo::testing
