#include "nsbi/jobs/signals.hpp"

#include <atomic>
#include <csignal>
#include <initializer_list>

namespace nsbi::jobs {
namespace {
// Set by the signal handlers and by request_stop() from other threads: lock-free, so both are safe.
std::atomic<int> g_stop{0};
static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be usable in a signal handler");
extern "C" void on_stop_signal(int) { g_stop.store(1); }
}  // namespace

void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGUSR1, SIGINT}) sigaction(signal, &action, nullptr);
}

bool stop_requested() { return g_stop.load() != 0; }

void request_stop() { g_stop.store(1); }

}  // namespace nsbi::jobs
