// The save directory of a training run (README "Failure behaviour"):
//  * one run at a time: the trainer holds an exclusive lock on `<dir>/run.lock` (flock) for its whole life, so a
//    second duo-train / duo-distill on the same --checkpointing.save_dir stops at start with an error naming the
//    process that holds it; the kernel drops the lock when that process ends, kill -9 included;
//  * no silent mixing of runs: a run that does not resume a checkpoint refuses a folder holding another run's
//    files (last / best / step_* checkpoints, the metrics file) unless --checkpointing.overwrite deletes them;
//  * no debris: temporary files of atomic writes (io/atomic_file.h, `<name>.tmp.<pid>`) whose writer is gone
//    (killed mid-checkpoint) are removed at start.
#pragma once
#include <string>
#include <vector>

namespace duo {

class RunDir {
 public:
  // Creates the folder if needed, takes its lock (duo::Error when another process holds it) and removes the
  // temporary files left by writers that no longer run. `program` goes into the lock file for the message.
  RunDir(std::string dir, const std::string& program);
  ~RunDir();  // releases the lock (the lock file stays: removing it would race with a waiting run)
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  const std::string& path() const { return dir_; }
  // The files of a run already in the folder: `last`, `best` and `step_*` checkpoints, and `metrics_path`
  // (which may live elsewhere), those that exist, sorted.
  std::vector<std::string> run_files(const std::string& metrics_path) const;
  // The temporary files removed at start (for the banner and the tests).
  const std::vector<std::string>& removed_temporaries() const { return removed_; }

 private:
  std::string dir_;
  int lock_fd_ = -1;
  std::vector<std::string> removed_;
};

// Whether `name` is an atomic write's temporary file (`<anything>.tmp.<digits>`); its writer's pid, else -1.
long temporary_file_pid(const std::string& name);

}  // namespace duo
