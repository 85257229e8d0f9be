#pragma once
// Rank-aware logging: by default only rank 0 speaks; `--verbose` lets every rank speak, each line prefixed
// with its rank. Messages go to stderr so that stdout stays free for machine-readable output.

#include <sstream>
#include <string>

namespace nsbi::log {

enum class Level { debug = 0, info = 1, warning = 2, error = 3 };

/// Set once, after MPI is initialised: this process' rank and whether every rank may print.
void configure(int rank, bool all_ranks_verbose);
int rank() noexcept;
bool verbose() noexcept;

void write(Level level, const std::string& message);

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

template <class... Args>
void info(const Args&... args) {
  write(Level::info, detail::concat(args...));
}
template <class... Args>
void warning(const Args&... args) {
  write(Level::warning, detail::concat(args...));
}
/// Debug lines appear only with --verbose.
template <class... Args>
void debug(const Args&... args) {
  write(Level::debug, detail::concat(args...));
}

}  // namespace nsbi::log
