// The metrics file of a training run (JSON lines, README "Formats"), written so that what a user relies on
// survives failures (README "Failure behaviour"):
//  * every line goes to the file in one write(2) of the whole line; a short or failed write (disk full) is cut
//    back off the file and stops the run with the error, so the file never ends mid-line;
//  * a resumed run first cuts the file back to the step it resumes from (the lines a killed run wrote after
//    its last checkpoint would otherwise appear twice), keeping only whole, parseable lines.
#pragma once
#include <cstdint>
#include <string>
#include <nlohmann/json.hpp>

namespace duo {

class MetricsLog {
 public:
  // resume_step < 0: a new run, the file starts empty. Otherwise keep_metrics_through(path, resume_step) first.
  MetricsLog(std::string path, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Appends j.dump() and a newline, whole or not at all; duo::Error naming the file when the write fails.
  void append(const nlohmann::json& j);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Rewrites the metrics file at `path` (atomically) keeping the lines, in order, that are whole JSON objects
// with "step" <= `step`; returns how many lines it dropped. A missing file is left missing (0 dropped).
int64_t keep_metrics_through(const std::string& path, int64_t step);

}  // namespace duo
