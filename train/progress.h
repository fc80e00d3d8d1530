// Progress of long work: a bar with rate and ETA redrawn in place when stderr is a
// terminal; nothing in place otherwise, so logs stay clean (the caller's periodic lines
// carry the ETA there).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mmgrad::train {

// "1:05", "12:00:03"; "?" for a negative or non-finite duration.
std::string format_duration(double seconds);

class Progress {
 public:
  // shown = false draws nothing (the other ranks of a data-parallel run).
  Progress(int64_t total, std::string label, int64_t start = 0, bool shown = true);
  ~Progress();
  // `done` items finished so far; `note` is shown after the bar (a short status).
  void update(int64_t done, const std::string& note = "");
  // Seconds left at the rate measured since construction.
  double eta_seconds(int64_t done) const;
  double rate(int64_t done) const;  // items per second
  // Clears the bar line so an ordinary line can be printed; the next update redraws it.
  void clear();
  void finish();
  bool interactive() const { return interactive_; }

 private:
  int64_t total_, start_;
  std::string label_;
  std::chrono::steady_clock::time_point t0_;
  bool interactive_, drawn_ = false;
};

}  // namespace mmgrad::train
