#include "train/progress.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include <fmt/format.h>
#include <unistd.h>

namespace mmgrad::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

Progress::Progress(int64_t total, std::string label, int64_t start, bool shown)
    : total_(total), start_(start), label_(std::move(label)), t0_(std::chrono::steady_clock::now()),
      interactive_(shown && isatty(fileno(stderr)) != 0) {}

Progress::~Progress() { clear(); }

double Progress::rate(int64_t done) const {
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  return dt > 0 ? static_cast<double>(done - start_) / dt : 0.0;
}

double Progress::eta_seconds(int64_t done) const {
  const double r = rate(done);
  return r > 0 ? static_cast<double>(total_ - done) / r : -1.0;
}

void Progress::update(int64_t done, const std::string& note) {
  if (!interactive_) return;
  constexpr int kWidth = 30;
  const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  fmt::print(stderr, "\r\033[K{} [{}] {}/{} {:3.0f}% {:.2f}/s ETA {} {}", label_, bar, done, total_, frac * 100,
             rate(done), format_duration(eta_seconds(done)), note);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::clear() {
  if (interactive_ && drawn_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

void Progress::finish() { clear(); }

}  // namespace mmgrad::train
