#pragma once
// What Mlp and TangentMlp (mlp.cpp, tangent_mlp.cpp) share: the fused output layer, the double column sums
// their backward kernels reduce, and the oneDNN matmul wrapper. Internal to kernels/src.

#include <dnnl.hpp>
#include <unordered_map>
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

// gradients[0, n) = sums[from, from + n), rounded to float.
inline void store_sums(const HostSums& sums, std::size_t from, std::size_t n, float* gradients) {
  for (std::size_t j = 0; j < n; ++j) gradients[j] = static_cast<float>(sums(from + j));
}

using dnnl::memory;
using Tag = memory::format_tag;

// One oneDNN matmul dst [m, n] = src [m, k] × weights [k, n] with its memory objects, whose data handles are
// pointed at the caller's buffers on every run; the argument map is built once.
class Gemm {
 public:
  Gemm(const dnnl::engine& engine, memory::dim m, memory::dim k, memory::dim n, Tag src_tag,
       Tag weights_tag) {
    const memory::desc src_md({m, k}, memory::data_type::f32, src_tag);
    const memory::desc weights_md({k, n}, memory::data_type::f32, weights_tag);
    const memory::desc dst_md({m, n}, memory::data_type::f32, Tag::ab);
    // The caller's plan owns the scratchpad (one buffer for all its GEMMs), so executing allocates nothing.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, weights_md, dst_md), attr, engine);
    primitive_ = dnnl::matmul(pd);
    src_ = memory(src_md, engine, DNNL_MEMORY_NONE);
    weights_ = memory(weights_md, engine, DNNL_MEMORY_NONE);
    dst_ = memory(dst_md, engine, DNNL_MEMORY_NONE);
    scratchpad_ = memory(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE);
    args_ = {{DNNL_ARG_SRC, src_},
             {DNNL_ARG_WEIGHTS, weights_},
             {DNNL_ARG_DST, dst_},
             {DNNL_ARG_SCRATCHPAD, scratchpad_}};
  }

  std::size_t scratchpad_bytes() const { return scratchpad_.get_desc().get_size(); }
  void set_scratchpad(void* buffer) const { scratchpad_.set_data_handle(buffer); }

  void run(const dnnl::stream& stream, const float* src, const float* weights, float* dst) const {
    // oneDNN takes non-const handles; src and weights are only read.
    src_.set_data_handle(const_cast<float*>(src));
    weights_.set_data_handle(const_cast<float*>(weights));
    dst_.set_data_handle(dst);
    primitive_.execute(stream, args_);
  }

 private:
  dnnl::matmul primitive_;
  memory src_, weights_, dst_, scratchpad_;
  std::unordered_map<int, memory> args_;
};

}  // namespace nsbi::kernels::detail
