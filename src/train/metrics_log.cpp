#include "train/metrics_log.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include "core/error.h"
#include "core/regular_file.h"
#include "io/atomic_file.h"

namespace duo {

int64_t keep_metrics_through(const std::string& path, int64_t step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  check_regular_file(path, "the metrics file", "pass a file path to --metrics");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::string kept;
  int64_t dropped = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) {  // a last line without its newline: a torn write
      ++dropped;
      break;
    }
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step)
      kept += line + "\n";
    else
      ++dropped;
  }
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

MetricsLog::MetricsLog(std::string path, int64_t resume_step) : path_(std::move(path)) {
  if (resume_step >= 0) keep_metrics_through(path_, resume_step);
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (resume_step >= 0 ? 0 : O_TRUNC);
  fd_ = ::open(path_.c_str(), flags, 0644);
  DUO_CHECK(fd_ >= 0, path_, str("cannot open the metrics file for writing: ", std::strerror(errno)),
            "check --metrics and that its folder is writable");
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const nlohmann::json& j) {
  const std::string line = j.dump() + "\n";
  struct stat st{};
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  size_t done = 0;
  int err = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += (size_t)n;
  }
  if (done == line.size()) return;
  // Cut the partial line back off, so the file stays whole lines (a reader, duo-plot, a resumed run).
  if (before >= 0 && done > 0) (void)!::ftruncate(fd_, before);
  fail(path_, str("writing a metrics line failed: ", std::strerror(err)),
       "free disk space, then resume the run (--checkpointing.resume_from_ckpt true): the file is cut back to "
       "the checkpoint's step");
}

}  // namespace duo
