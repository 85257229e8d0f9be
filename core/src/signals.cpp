#include "nsbi/core/signals.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/error.hpp"

namespace nsbi {
namespace {
// Set by the signal handlers and from other threads: lock-free, so both are safe.
std::atomic<int> g_stop{0};
static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be usable in a signal handler");
extern "C" void on_stop_signal(int) { g_stop.store(1); }

std::atomic<bool> g_abort{false};
std::string g_abort_message;  // written before g_abort is set
}  // namespace

void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGUSR1, SIGINT}) sigaction(signal, &action, nullptr);
}

bool stop_requested() {
  if (g_abort.load()) {
    std::fprintf(stderr, "nsbi: error: %s\n", g_abort_message.c_str());
    std::fflush(stderr);
    Communicator().abort(ExitCode::usage);
  }
  return g_stop.load() != 0;
}

void request_abort(const std::string& message, bool alone) {
  if (alone) {
    std::fprintf(stderr, "nsbi: error: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(static_cast<int>(ExitCode::usage));
  }
  if (g_abort.load()) return;
  g_abort_message = message;
  g_abort.store(true);
}

}  // namespace nsbi
