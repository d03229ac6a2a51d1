#include "train/run_dir.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include "core/error.h"

namespace duo {

namespace fs = std::filesystem;

long temporary_file_pid(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return -1;
  const std::string digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stol(digits);
}

namespace {

// A process with this id exists (kill(pid, 0) fails with ESRCH when none does; EPERM means it exists).
bool process_alive(long pid) { return pid > 0 && (::kill((pid_t)pid, 0) == 0 || errno == EPERM); }

}  // namespace

RunDir::RunDir(std::string dir, const std::string& program) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  DUO_CHECK(!ec && fs::is_directory(dir_), "--checkpointing.save_dir",
            str("cannot create the folder ", dir_, (ec ? ": " + ec.message() : std::string(": a file has that name"))),
            "choose a writable folder");
  const std::string lock = dir_ + "/run.lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  DUO_CHECK(lock_fd_ >= 0, lock, str("cannot create the run's lock file: ", std::strerror(errno)),
            "check that --checkpointing.save_dir is writable");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    std::getline(std::ifstream(lock), holder);
    ::close(lock_fd_);
    lock_fd_ = -1;
    DUO_CHECK(err != EWOULDBLOCK, dir_,
              "another training run is using this save directory" + (holder.empty() ? "" : " (" + holder + ")"),
              "wait for it to finish, or give this run its own --checkpointing.save_dir");
    fail(lock, str("cannot lock the run's lock file: ", std::strerror(err)), "check the file system supports flock");
  }
  const std::string who = str(program, " pid ", (long)::getpid(), "\n");
  // The holder's name is a courtesy for the message above; the lock itself is what matters.
  const bool named = ::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, who.data(), who.size(), 0) == (ssize_t)who.size();
  (void)named;
  // With the lock held no other run writes here: a temporary file whose writer is gone is debris.
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const long pid = temporary_file_pid(name);
    if (pid < 0 || pid == (long)::getpid() || process_alive(pid) || !e.is_regular_file(ec)) continue;
    if (fs::remove(e.path(), ec)) removed_.push_back(e.path().string());
  }
  std::sort(removed_.begin(), removed_.end());
}

RunDir::~RunDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing the descriptor releases the flock
}

std::vector<std::string> RunDir::run_files(const std::string& metrics_path) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const bool checkpoint = name == "last.safetensors" || name == "best.safetensors" ||
                            (name.rfind("step_", 0) == 0 && name.size() > 17 &&
                             name.compare(name.size() - 12, 12, ".safetensors") == 0);
    if (checkpoint) out.push_back(e.path().string());
  }
  if (fs::is_regular_file(metrics_path, ec) && fs::file_size(metrics_path, ec) > 0) out.push_back(metrics_path);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace duo
