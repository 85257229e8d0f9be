#include "nsbi/core/log.hpp"

#include <cstdio>

namespace nsbi::log {
namespace {
int g_rank = 0;
bool g_verbose = false;

const char* prefix(Level level) {
  switch (level) {
    case Level::debug:
      return "debug: ";
    case Level::warning:
      return "warning: ";
    case Level::error:
      return "error: ";
    case Level::info:
      break;
  }
  return "";
}
}  // namespace

void configure(int rank_, bool all_ranks_verbose) {
  g_rank = rank_;
  g_verbose = all_ranks_verbose;
}
int rank() noexcept { return g_rank; }
bool verbose() noexcept { return g_verbose; }

void write(Level level, const std::string& message) {
  if (level == Level::debug && !g_verbose) return;
  // What ranks log is collective (they run the same stage), so rank 0 speaks for all unless --verbose.
  // Errors do not come through here: the CLI reports them from the rank that raised them.
  if (g_rank != 0 && !g_verbose) return;
  if (g_verbose)
    std::fprintf(stderr, "[rank %d] %s%s\n", g_rank, prefix(level), message.c_str());
  else
    std::fprintf(stderr, "%s%s\n", prefix(level), message.c_str());
  std::fflush(stderr);
}

}  // namespace nsbi::log
