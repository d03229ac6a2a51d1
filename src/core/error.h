// Errors that name the thing that went wrong (a file, a tensor, an option) and give the user a HINT.
// Every failure a user can cause is reported with duo::Error; main() of each executable prints it and exits 1.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace duo {

class Error : public std::runtime_error {
 public:
  // where: the file / tensor / option concerned; what: the problem; hint: what to do about it (may be empty).
  Error(std::string where, std::string what, std::string hint = "")
      : std::runtime_error(format(where, what, hint)), where_(std::move(where)), what_(std::move(what)),
        hint_(std::move(hint)) {}
  const std::string& where() const { return where_; }
  const std::string& problem() const { return what_; }
  const std::string& hint() const { return hint_; }

 private:
  static std::string format(const std::string& where, const std::string& what, const std::string& hint) {
    std::string s = where.empty() ? what : where + ": " + what;
    if (!hint.empty()) s += "\n---> HINT: " + hint;
    return s;
  }
  std::string where_, what_, hint_;
};

// Builds a message from streamable pieces: duo::str("got ", n, " tokens").
template <class... A>
std::string str(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& where, const std::string& what, const std::string& hint = "") {
  throw Error(where, what, hint);
}

}  // namespace duo

// Internal invariant (a bug in duo.cu if it fires, not a user error): names the source line.
#define DUO_ASSERT(cond)                                                                             \
  do {                                                                                               \
    if (!(cond))                                                                                     \
      throw ::duo::Error(::duo::str(__FILE__, ":", __LINE__), "internal check failed: " #cond,       \
                         "this is a bug in duo.cu; please report it with the command line you ran"); \
  } while (0)

// User-facing check: DUO_CHECK(n > 0, path, "empty file", "re-run the tokenizer").
#define DUO_CHECK(cond, where, what, hint)             \
  do {                                                 \
    if (!(cond)) ::duo::fail((where), (what), (hint)); \
  } while (0)
