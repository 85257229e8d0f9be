#pragma once
// How many threads oneDNN's GEMMs use in this process. Flat MPI (docs/development.md, "Rules") runs one rank
// per core with one thread each; a single process may use more. Kokkos kernels run on the Kokkos execution
// space (Serial here) whatever this says.

namespace nsbi::kernels {

/// Sets the thread count for the GEMMs that follow (OpenMP in Debian's oneDNN build; a sequential build
/// accepts only 1). threads < 1, or > 1 with a sequential build, is a ConfigError.
void set_gemm_threads(int threads);
int gemm_threads();

}  // namespace nsbi::kernels
