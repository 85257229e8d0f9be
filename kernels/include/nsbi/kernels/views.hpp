#pragma once
// The array types kernels exchange: row-major (one sample per row) views in the default memory space.
// Data (θ, x, gold) are double, as in the files; the network works in float32 (Float* types).

#include <Kokkos_Core.hpp>
#include <string>

namespace nsbi {

using ExecutionSpace = Kokkos::DefaultExecutionSpace;
using MemorySpace = ExecutionSpace::memory_space;

/// Samples × features, one sample per row, so a block of rows is one contiguous range (as in the files).
using Matrix = Kokkos::View<double**, Kokkos::LayoutRight, MemorySpace>;
using ConstMatrix = Kokkos::View<const double**, Kokkos::LayoutRight, MemorySpace>;
using Vector = Kokkos::View<double*, MemorySpace>;
using ConstVector = Kokkos::View<const double*, MemorySpace>;

/// The network's arrays: inputs and activations (samples × features), logits, parameter buffers.
using FloatMatrix = Kokkos::View<float**, Kokkos::LayoutRight, MemorySpace>;
using ConstFloatMatrix = Kokkos::View<const float**, Kokkos::LayoutRight, MemorySpace>;
using FloatVector = Kokkos::View<float*, MemorySpace>;
using ConstFloatVector = Kokkos::View<const float*, MemorySpace>;

/// A labelled matrix whose contents the caller fills right away.
inline Matrix make_matrix(const std::string& label, std::size_t rows, std::size_t cols) {
  return Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), rows, cols);
}

inline FloatMatrix make_float_matrix(const std::string& label, std::size_t rows, std::size_t cols) {
  return FloatMatrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), rows, cols);
}

inline FloatVector make_float_vector(const std::string& label, std::size_t size) {
  return FloatVector(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), size);
}

}  // namespace nsbi
