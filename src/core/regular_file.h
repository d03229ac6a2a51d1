// Files a user hands us must be regular files: opening a FIFO blocks forever (until someone writes to it), a
// directory opens "successfully" and reads as empty, a device reads endlessly. check_regular_file looks before
// anything opens the path (stat does not block) and fails with one clear error instead.
#pragma once
#include <string>

namespace duo {

// Throws duo::Error naming `path` when it does not exist, cannot be examined, or is not a regular file (a
// symbolic link to a regular file is fine). `what` names the expected file in the message ("the shard",
// "the --config file"); `hint` says what to pass instead.
void check_regular_file(const std::string& path, const std::string& what, const std::string& hint);

}  // namespace duo
