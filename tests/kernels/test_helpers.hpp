#pragma once
// Host <-> view copies and small numerical helpers for the kernels tests.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nsbi/kernels/views.hpp"

namespace nsbi::test {

inline FloatVector float_vector(const std::vector<float>& values) {
  FloatVector view = make_float_vector("test::vector", values.size());
  Kokkos::deep_copy(view, Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                              values.data(), values.size()));
  return view;
}

/// `view` filled with row-major host values (one of FloatMatrix, Matrix).
template <class MatrixView>
MatrixView filled(MatrixView view, const std::vector<typename MatrixView::non_const_value_type>& values) {
  using Value = typename MatrixView::non_const_value_type;
  Kokkos::deep_copy(
      view, Kokkos::View<const Value**, Kokkos::LayoutRight, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                values.data(), view.extent(0), view.extent(1)));
  return view;
}

inline FloatMatrix float_matrix(const std::vector<float>& values, std::size_t rows, std::size_t cols) {
  return filled(make_float_matrix("test::matrix", rows, cols), values);
}

inline Matrix matrix(const std::vector<double>& values, std::size_t rows, std::size_t cols) {
  return filled(make_matrix("test::matrix", rows, cols), values);
}

template <class View>
std::vector<typename View::non_const_value_type> to_host(const View& view) {
  std::vector<typename View::non_const_value_type> values(view.size());
  Kokkos::deep_copy(Kokkos::View<typename View::non_const_data_type, typename View::array_layout,
                                 Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(values.data(), view.layout()),
                    view);
  return values;
}

template <class T>
double max_abs(const std::vector<T>& values) {
  double m = 0.0;
  for (T v : values) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

/// max_k |a_k - b_k| / max_k |b_k|: the error relative to the largest reference value (norm-wise).
template <class A, class B>
double relative_error(const std::vector<A>& a, const std::vector<B>& b) {
  double worst = 0.0;
  for (std::size_t k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::fabs(static_cast<double>(a[k]) - static_cast<double>(b[k])));
  return worst / max_abs(b);
}

/// x rounded to the nearest bfloat16 (the top 16 bits of a float), ties to even; x finite.
inline float round_to_bf16(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  float rounded;
  std::memcpy(&rounded, &bits, sizeof rounded);
  return rounded;
}

}  // namespace nsbi::test
