// Sampling progress bar: see progress.h.
#include "sample/progress.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <ostream>
#include <sstream>
#include <unistd.h>

namespace duo {

namespace {
constexpr double kPipeInterval = 5.0;  // seconds between lines when stderr is not a terminal
constexpr double kTtyInterval = 0.1;
}  // namespace

std::string format_duration(double s) {
  std::ostringstream os;
  if (s >= 3600) os << (int64_t)(s / 3600) << "h" << std::setw(2) << std::setfill('0') << ((int64_t)s % 3600) / 60 << "m";
  else if (s >= 60) os << (int64_t)(s / 60) << "m" << std::setw(2) << std::setfill('0') << (int64_t)s % 60 << "s";
  else os << std::fixed << std::setprecision(1) << s << "s";
  return os.str();
}

Progress::Progress(std::ostream* out, int64_t batches, int64_t nfe_per_batch, int64_t steps)
    : out_(out), tty_(out == &std::cerr && isatty(STDERR_FILENO)), batches_(batches), per_batch_(nfe_per_batch), steps_(steps) {}

void Progress::start_batch(int64_t batch) {
  batch_ = batch;
  nfe_batch_ = 0;
  draw(true);
}

void Progress::tick() {
  ++nfe_batch_;
  ++nfe_total_;
  draw(false);
}

void Progress::finish() {
  draw(true);
  if (out_ && tty_) *out_ << "\n" << std::flush;
}

void Progress::draw(bool force) {
  if (!out_) return;
  const double t = timer_.seconds();
  if (!force && t - last_draw_ < (tty_ ? kTtyInterval : kPipeInterval)) return;
  last_draw_ = t;
  // Work done, in expected NFEs over the whole run; the ETA assumes every remaining NFE costs the mean so far.
  const double done = (double)(batch_ * per_batch_ + nfe_batch_), total = (double)(batches_ * per_batch_);
  const double eta = done > 0 ? t / done * (total - done) : 0.0;
  const int width = 24, filled = total > 0 ? (int)(width * done / total) : 0;
  std::ostringstream line;
  line << "[" << std::string((size_t)std::min(filled, width), '#') << std::string((size_t)(width - std::min(filled, width)), '.')
       << "] batch " << batch_ + 1 << "/" << batches_ << "  step " << std::min(nfe_batch_, steps_) << "/" << steps_
       << "  NFE " << nfe_batch_ << "/" << per_batch_ << " (total " << nfe_total_ << ")  elapsed " << format_duration(t)
       << "  ETA " << format_duration(eta);
  if (tty_) *out_ << "\r" << line.str() << "\033[K" << std::flush;
  else *out_ << line.str() << "\n" << std::flush;
}

}  // namespace duo
