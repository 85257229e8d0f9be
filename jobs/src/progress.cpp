#include "nsbi/jobs/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace nsbi::jobs {
namespace {

std::string format_rate(double per_second, const std::string& unit) {
  char text[64];
  const char* prefix = "";
  if (per_second >= 1e9) {
    per_second /= 1e9;
    prefix = "G";
  } else if (per_second >= 1e6) {
    per_second /= 1e6;
    prefix = "M";
  } else if (per_second >= 1e3) {
    per_second /= 1e3;
    prefix = "k";
  }
  std::snprintf(text, sizeof text, "%.3g %s%s/s", per_second, prefix, unit.c_str());
  return text;
}

}  // namespace

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool speaks,
                   std::uint64_t already_done, double interval_seconds)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      speaks_(speaks),
      terminal_(isatty(STDERR_FILENO) != 0),
      start_done_(already_done),
      done_(already_done),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds >= 1e6 * 86400) return "?";
  const long long s = std::llround(seconds);
  char text[32];
  if (s >= 86400)
    std::snprintf(text, sizeof text, "%lldd%02lldh", s / 86400, (s / 3600) % 24);
  else if (s >= 3600)
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%llds", s);
  return text;
}

void Progress::update(std::uint64_t done) {
  done_ = done;
  if (!speaks_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (terminal_ ? 0.2 : interval_)) print(false);
}

void Progress::finish() {
  if (speaks_) print(true);
}

void Progress::print(bool final_line) {
  const auto now = std::chrono::steady_clock::now();
  last_print_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - start_done_) / elapsed : 0.0;
  const double fraction = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
  char line[256];
  if (final_line) {
    std::snprintf(line, sizeof line, "%s: %llu %s in %s (%s)", label_.c_str(),
                  static_cast<unsigned long long>(done_), unit_.c_str(), format_duration(elapsed).c_str(),
                  format_rate(rate, unit_).c_str());
  } else {
    std::snprintf(line, sizeof line, "%s: %5.1f%% %llu/%llu %s, %s, ETA %s", label_.c_str(), 100.0 * fraction,
                  static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_),
                  unit_.c_str(), format_rate(rate, unit_).c_str(), format_duration(eta).c_str());
  }
  if (terminal_) {
    constexpr int width = 24;
    const int filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %s\033[K%s", bar.c_str(), line, final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

}  // namespace nsbi::jobs
