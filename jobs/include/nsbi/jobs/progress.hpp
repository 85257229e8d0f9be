#pragma once
// The one progress reporter: rank 0 shows a bar on a terminal, or a line every `interval` seconds
// otherwise (batch logs), always with the rate and the time left.

#include <chrono>
#include <cstdint>
#include <string>

namespace nsbi::jobs {

/// Seconds on the steady clock since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// A duration as a person writes it, rounded to whole seconds first: "0s", "59s", "1m01s", "1h02m",
/// "1d03h". "?" for an unknown one: negative, NaN, infinite, or beyond a million days (an ETA that far off
/// says nothing; it would also overflow the integer seconds).
std::string format_duration(double seconds);

class Progress {
 public:
  /// `already_done` units were finished by an earlier (interrupted) run: they count towards the fraction
  /// but not the rate.
  Progress(std::string label, std::uint64_t total, std::string unit, bool speaks,
           std::uint64_t already_done = 0, double interval_seconds = 10.0);
  void update(std::uint64_t done);
  /// Prints the final line: total time and average rate.
  void finish();

 private:
  void print(bool final_line);

  std::string label_;
  std::uint64_t total_;
  std::string unit_;
  bool speaks_;
  bool terminal_;
  std::uint64_t start_done_;
  std::uint64_t done_;
  double interval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace nsbi::jobs
