# Finds every external dependency once and records what was found in the generated config header.
# Requests are NSBI_WITH_* options; detected facts are NSBI_HAS_* variables (see nsbi_config.hpp.in).

find_package(MPI REQUIRED COMPONENTS C CXX)

set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "nsbi needs the parallel (MPI) build of HDF5, found a serial one "
                      "(${HDF5_INCLUDE_DIRS}). On Debian: apt-get install libhdf5-openmpi-dev")
endif()
# Check the header itself, not only what the wrapper compiler claims.
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${HDF5_INCLUDE_DIRS} ${MPI_C_INCLUDE_DIRS})
check_symbol_exists(H5_HAVE_PARALLEL "H5pubconf.h" NSBI_HAS_HDF5_PARALLEL)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT NSBI_HAS_HDF5_PARALLEL)
  message(FATAL_ERROR "H5pubconf.h in ${HDF5_INCLUDE_DIRS} does not define H5_HAVE_PARALLEL")
endif()
add_library(nsbi_hdf5 INTERFACE)
target_include_directories(nsbi_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_compile_definitions(nsbi_hdf5 INTERFACE ${HDF5_DEFINITIONS})
target_link_libraries(nsbi_hdf5 INTERFACE ${HDF5_C_LIBRARIES} MPI::MPI_C)

find_package(Kokkos REQUIRED)
add_library(nsbi_kokkos INTERFACE)
if(Kokkos_INCLUDE_DIRS)
  # A Trilinos-built Kokkos (Debian's): its Kokkos::kokkos target points at a wrong include prefix
  # (/usr/lib/include), so use the variables TriBITS exports instead.
  target_include_directories(nsbi_kokkos SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
  target_link_libraries(nsbi_kokkos INTERFACE ${Kokkos_LIBRARIES})
else()
  target_link_libraries(nsbi_kokkos INTERFACE Kokkos::kokkos)
endif()
message(STATUS "nsbi: Kokkos ${Kokkos_VERSION} (${Kokkos_DEVICES}) from ${Kokkos_INCLUDE_DIRS}")
set(NSBI_KOKKOS_DEVICES "${Kokkos_DEVICES}")

find_package(dnnl REQUIRED)
set(NSBI_HAS_DNNL ON)
# Debian's oneDNN runs its threads with OpenMP; kernels' set_gemm_threads calls omp_set_num_threads of that
# runtime. Only the library is linked: no -fopenmp, so Kokkos kernels stay on their execution space.
find_package(OpenMP REQUIRED COMPONENTS CXX)
add_library(nsbi_openmp_runtime INTERFACE)
target_link_libraries(nsbi_openmp_runtime INTERFACE ${OpenMP_CXX_LIBRARIES})
find_package(yaml-cpp REQUIRED)

if(NSBI_ENABLE_TESTS)
  find_package(GTest REQUIRED)
endif()
if(NSBI_ENABLE_BENCHMARKS AND NOT NSBI_ENABLE_SANITIZERS)
  find_package(benchmark REQUIRED)
endif()

find_package(Git QUIET)  # for the git revision nsbi records (cmake/NsbiGitRevision.cmake)
