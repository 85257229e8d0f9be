#include "nsbi/inference/host_arrays.hpp"

namespace nsbi::inference {

std::vector<double> host_values(const ConstMatrix& m) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m);
  return std::vector<double>(host.data(), host.data() + m.extent(0) * m.extent(1));
}

Matrix matrix_of_rows(const std::vector<std::vector<double>>& rows) {
  Matrix m("nsbi::inference::rows", rows.size(), rows.empty() ? 0 : rows.front().size());
  auto host = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < m.extent(0); ++i)
    for (std::size_t j = 0; j < m.extent(1); ++j) host(i, j) = rows[i][j];
  Kokkos::deep_copy(m, host);
  return m;
}

}  // namespace nsbi::inference
