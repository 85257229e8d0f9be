#pragma once
// The libraries every nsbi program runs on, started and ended in one place and one order: HDF5, then MPI,
// then Kokkos; ended in reverse. The header includes no Kokkos or MPI header, so the orchestration layer's
// main can use it.

namespace nsbi {

class Runtime {
 public:
  /// Where Kokkos takes its settings from: the command line (--kokkos-num-threads=..., which Kokkos removes
  /// from argv; tests and benchmarks) or only its environment variables (KOKKOS_NUM_THREADS, ...; the nsbi
  /// CLI, whose --help Kokkos would otherwise answer with its own text).
  enum class KokkosSettings { command_line, environment };

  /// HDF5 (h5::initialize_library: before MPI_Init, so that nsbi, not MPI_Finalize, ends HDF5) -> MPI_Init
  /// -> Kokkos::initialize. Once per process.
  Runtime(int& argc, char**& argv, KokkosSettings kokkos_settings);
  /// Kokkos::finalize -> h5::finalize_library (which leaves HDF5 alone when a file could not be closed: a
  /// failed write; HDF5 would crash releasing it) -> MPI_Finalize.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
};

}  // namespace nsbi
