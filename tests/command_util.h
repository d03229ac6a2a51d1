// Runs a command as a user would type it, for the tests of the executables (make test builds them all before it
// runs the suite): its exit status and its output, under a time limit, so a hang fails a test instead of stalling
// the suite.
#pragma once
#include <boost/test/unit_test.hpp>
#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace duo::testing {

struct CommandRun {
  int status = -1;  // pclose's wait status
  std::string out;  // stdout and stderr together
};

inline CommandRun run_command(const std::string& command, int timeout_s = 60) {
  CommandRun r;
  FILE* p = ::popen(("timeout " + std::to_string(timeout_s) + " " + command + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(p);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.status = ::pclose(p);
  return r;
}

// Exit code of a finished command: 1 for duo::Error, 124 for `timeout`, -1 when a signal ended it.
inline int exit_code(const CommandRun& r) { return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1; }

}  // namespace duo::testing
