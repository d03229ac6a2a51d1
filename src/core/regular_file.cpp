#include "core/regular_file.h"
#include <sys/stat.h>
#include <cerrno>
#include <cstring>
#include "core/error.h"

namespace duo {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "a special file";
}

}  // namespace

void check_regular_file(const std::string& path, const std::string& what, const std::string& hint) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) fail(path, str("cannot open ", what, ": ", std::strerror(errno)), hint);
  if (!S_ISREG(st.st_mode))
    fail(path, str(what, " is ", kind_of(st.st_mode), ", not a regular file",
                   S_ISFIFO(st.st_mode) ? " (reading it would wait for a writer forever)" : ""),
         hint);
}

}  // namespace duo
