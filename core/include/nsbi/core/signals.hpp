#pragma once
// SIGTERM / SIGUSR1 / SIGINT (SLURM preemption, Ctrl-C) set a flag; long stages poll it between blocks,
// save their progress and stop with exit code 4.

#include <string>

namespace nsbi {

void install_stop_handlers();
/// Whether this process was asked to stop (ranks agree on it with Communicator::any).
bool stop_requested();
/// From any thread: prints `message` as an error and ends the job with exit code 2, saving nothing more: at
/// once when this process is the whole job (`alone`), else at its next stop_requested() (MPI_Abort, which
/// only the main thread calls). The campaign lock asks for it when another run took its lease over: saving
/// the progress would write beside that run.
void request_abort(const std::string& message, bool alone);

}  // namespace nsbi
