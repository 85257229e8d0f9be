#pragma once
// Matrices to and from plain host arrays, for callers that hold the library's matrices but include no Kokkos
// header themselves (the stages in jobs/).

#include <vector>

#include "nsbi/kernels/views.hpp"

namespace nsbi::inference {

/// The values of m, row-major, on the host.
std::vector<double> host_values(const ConstMatrix& m);

/// A matrix of the given rows (each as long as the first).
Matrix matrix_of_rows(const std::vector<std::vector<double>>& rows);

}  // namespace nsbi::inference
