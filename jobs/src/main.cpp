// nsbi: HDF5 -> MPI_Init -> Kokkos::initialize -> the command line -> finalize in reverse order.
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <string>
#include <vector>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/jobs/cli.hpp"

int main(int argc, char** argv) {
  // Before MPI_Init: nsbi, not MPI_Finalize, ends HDF5, and leaves it alone when a file could not be closed
  // (a failed write: HDF5 would crash releasing it).
  nsbi::h5::initialize_library();
  MPI_Init(&argc, &argv);
  int code = 0;
  {
    // Kokkos does not see the command line: it would answer --help with its own text. Its settings come
    // from its environment variables (KOKKOS_NUM_THREADS, KOKKOS_DEVICE_ID, ...).
    Kokkos::ScopeGuard kokkos(Kokkos::InitArguments{});
    const std::vector<std::string> args(argv, argv + argc);
    code = nsbi::jobs::run_command_line(nsbi::Communicator(MPI_COMM_WORLD), args);
  }
  nsbi::h5::finalize_library();
  MPI_Finalize();
  return code;
}
