// nsbi: the runtime (HDF5 -> MPI -> Kokkos) -> the command line -> the runtime ends in reverse order.
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/runtime.hpp"
#include "nsbi/jobs/cli.hpp"

int main(int argc, char** argv) {
  const nsbi::Runtime runtime(argc, argv, nsbi::Runtime::KokkosSettings::environment);
  const std::vector<std::string> args(argv, argv + argc);
  return nsbi::jobs::run_command_line(nsbi::Communicator(MPI_COMM_WORLD), args);
}
