#include "nsbi/kernels/loss.hpp"

#include "nsbi/core/error.hpp"
#include "nsbi/kernels/float_math.hpp"

namespace nsbi::kernels {

namespace {

// The loss of a chunk of samples, whose gradients it writes. A chunk's loop is one SIMD reduction (OpenMP
// simd may reorder the sum inside a chunk, deterministically for a given build); chunks sum in double.
template <bool weighted>
struct BceChunk {
  static constexpr std::size_t size = 64;
  ConstFloatVector logits;
  ConstFloatVector labels;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  float inverse_batch;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t chunk, double& sum) const {
    const std::size_t first = chunk * size;
    const std::size_t last = first + size < logits.extent(0) ? first + size : logits.extent(0);
    const float* s_chunk = logits.data();
    const float* y_chunk = labels.data();
    float* g_chunk = logit_gradients.data();
    double partial = 0.0;
#if defined(NSBI_HAS_OPENMP_SIMD) && !defined(__CUDA_ARCH__)
#pragma omp simd reduction(+ : partial)
#endif
    for (std::size_t i = first; i < last; ++i) {
      const float s = s_chunk[i];
      const float y = y_chunk[i];
      float w = 1.0f;
      if constexpr (weighted) w = weights.data()[i];
      // exp only ever sees -|s|: e in (0, 1], nothing overflows. σ(s) - y is formed from the small tail
      // σ(-|s|), so that a confident right answer keeps its tiny gradient instead of rounding 1 - 1 to 0.
      const float e = float_math::exp_nonpositive(s >= 0.0f ? -s : s);
      const float tail = e / (1.0f + e);
      const float residual = s >= 0.0f ? (1.0f - y) - tail : tail - y;
      partial += static_cast<double>(w * (((s > 0.0f ? s : 0.0f) - s * y) + float_math::log1p_unit(e)));
      g_chunk[i] = w * residual * inverse_batch;
    }
    sum += partial;
  }
};

template <bool weighted>
double bce_sum(const ExecutionSpace& space, const BceChunk<weighted>& chunk) {
  const std::size_t n_chunks =
      (chunk.logits.extent(0) + BceChunk<weighted>::size - 1) / BceChunk<weighted>::size;
  double sum = 0.0;
  Kokkos::parallel_reduce(
      "nsbi::kernels::bce_with_logits",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>(space, 0, n_chunks), chunk, sum);
  return sum;
}

}  // namespace

double bce_with_logits(const ExecutionSpace& space, const ConstFloatVector& logits,
                       const ConstFloatVector& labels, const ConstFloatVector& weights, double global_batch,
                       const FloatVector& logit_gradients) {
  const std::size_t n = logits.extent(0);
  NSBI_ASSERT(labels.extent(0) == n && logit_gradients.extent(0) == n,
              "nsbi::kernels::bce_with_logits: logits, labels and gradients differ in length");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n,
              "nsbi::kernels::bce_with_logits: weights and logits differ in length");
  NSBI_ASSERT(global_batch > 0.0, "nsbi::kernels::bce_with_logits: the global batch must be positive");
  const auto inverse_batch = static_cast<float>(1.0 / global_batch);
  const double sum =
      weights.data() != nullptr
          ? bce_sum(space, BceChunk<true>{logits, labels, weights, logit_gradients, inverse_batch})
          : bce_sum(space, BceChunk<false>{logits, labels, weights, logit_gradients, inverse_batch});
  return sum / global_batch;
}

}  // namespace nsbi::kernels
