#pragma once
// The array types kernels exchange: row-major (one sample per row) views in the default memory space.

#include <Kokkos_Core.hpp>

namespace nsbi {

using ExecutionSpace = Kokkos::DefaultExecutionSpace;
using MemorySpace = ExecutionSpace::memory_space;

/// Samples × features, one sample per row, so a block of rows is one contiguous range (as in the files).
using Matrix = Kokkos::View<double**, Kokkos::LayoutRight, MemorySpace>;
using ConstMatrix = Kokkos::View<const double**, Kokkos::LayoutRight, MemorySpace>;
using Vector = Kokkos::View<double*, MemorySpace>;

/// A labelled matrix whose contents the caller fills right away.
inline Matrix make_matrix(const std::string& label, std::size_t rows, std::size_t cols) {
  return Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), rows, cols);
}

}  // namespace nsbi
