#pragma once
// What Mlp and TangentMlp (mlp.cpp, tangent_mlp.cpp) share: the fused output layer, the double column
// sums their backward kernels reduce and the skip's gradient of residual blocks (their GEMMs: gemm.hpp).
// Internal to kernels/src.

#include <utility>

#include "nsbi/kernels/mlp.hpp"
#include "simd.hpp"

namespace nsbi::kernels::detail {

using RowPolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>;
using HostSums = Kokkos::View<double*, Kokkos::HostSpace>;

// The output layer: one output, a GEMV, which oneDNN runs at a fraction of its GEMM speed, so it is fused
// into the kernels of the last hidden layer, or has its own kernels when there is no hidden layer.
struct OutputLayer {
  ConstFloatVector weights;  // w_L [n_in]
  ConstFloatVector bias;     // b_L [1]

  // w_L · a for one row a [n_in] (the tangent of the logit when a is a tangent row).
  KOKKOS_INLINE_FUNCTION float dot(const float* a_row) const {
    const float* w = weights.data();
    const std::size_t n = weights.extent(0);
    float sum = 0.0f;
    NSBI_SIMD_SUM(sum)
    for (std::size_t j = 0; j < n; ++j) sum += w[j] * a_row[j];
    return sum;
  }
  // s = w_L · a + b_L.
  KOKKOS_INLINE_FUNCTION float logit(const float* a_row) const { return dot(a_row) + bias(0); }
};

inline OutputLayer output_layer(const MlpArchitecture& arch, const ConstFloatVector& parameters) {
  const std::size_t last = arch.hidden.size();
  return {Kokkos::subview(parameters, std::make_pair(arch.weight_offset(last), arch.bias_offset(last))),
          Kokkos::subview(parameters, std::make_pair(arch.bias_offset(last), arch.n_parameters()))};
}

// Sums of a kernel's per-row contributions to parameter gradients, in double, reduced over rows.
struct ColumnSums {
  using value_type = double[];
  std::size_t value_count;

  KOKKOS_INLINE_FUNCTION void init(value_type sums) const {
    for (std::size_t j = 0; j < value_count; ++j) sums[j] = 0.0;
  }
  KOKKOS_INLINE_FUNCTION void join(volatile value_type into, const volatile value_type from) const {
    for (std::size_t j = 0; j < value_count; ++j) into[j] += from[j];
  }
};

// The skip (residual blocks)'s share of a residual layer's input gradient: into(row, :) += from(row, :) (Mlp:
// rows; TangentMlp: stacked rows).
struct AddRows {
  FloatMatrix into;
  ConstFloatMatrix from;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row) const {
    const std::size_t n = into.extent(1);
    float* into_row = &into(row, 0);
    const float* from_row = &from(row, 0);
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) into_row[j] += from_row[j];
  }
};

// gradients[0, n) = sums[from, from + n), rounded to float.
inline void store_sums(const HostSums& sums, std::size_t from, std::size_t n, float* gradients) {
  for (std::size_t j = 0; j < n; ++j) gradients[j] = static_cast<float>(sums(from + j));
}

}  // namespace nsbi::kernels::detail
