#pragma once
// SIGTERM / SIGUSR1 / SIGINT (SLURM preemption, Ctrl-C) set a flag; long stages poll it between blocks,
// save their progress and stop with exit code 4.

namespace nsbi::jobs {

void install_stop_handlers();
/// Whether this process was asked to stop (ranks agree on it with Communicator::any).
bool stop_requested();
/// Makes stop_requested() true, as a stop signal does (from any thread: the campaign lock, when another run
/// took its lease over).
void request_stop();

}  // namespace nsbi::jobs
