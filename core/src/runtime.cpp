#include "nsbi/core/runtime.hpp"

#include <mpi.h>

#include <Kokkos_Core.hpp>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"

namespace nsbi {

Runtime::Runtime(int& argc, char**& argv, KokkosSettings kokkos_settings) {
  h5::initialize_library();
  NSBI_MPI_CHECK(MPI_Init(&argc, &argv));
  if (kokkos_settings == KokkosSettings::command_line)
    Kokkos::initialize(argc, argv);
  else
    Kokkos::initialize(Kokkos::InitArguments{});
}

Runtime::~Runtime() {
  Kokkos::finalize();
  h5::finalize_library();
  MPI_Finalize();  // unchecked: a destructor cannot throw, and the job has nothing left to report it to
}

}  // namespace nsbi
