#include "nsbi/kernels/adamw.hpp"

#include <Kokkos_MathematicalFunctions.hpp>
#include <cmath>

#include "nsbi/core/error.hpp"
#include "nsbi/core/kernel_math.hpp"

namespace nsbi::kernels {

AdamWState::AdamWState(std::size_t n_parameters)
    : first_moment("nsbi::kernels::AdamWState::first_moment", n_parameters),
      second_moment("nsbi::kernels::AdamWState::second_moment", n_parameters) {}

void adamw_step(const ExecutionSpace& space, const AdamWConfig& config, AdamWState& state,
                const FloatVector& parameters, const ConstFloatVector& gradients) {
  const std::size_t n = parameters.extent(0);
  NSBI_ASSERT(
      gradients.extent(0) == n && state.first_moment.extent(0) == n && state.second_moment.extent(0) == n,
      "nsbi::kernels::adamw_step: parameters, gradients and state differ in length");
  state.step += 1;
  const double t = static_cast<double>(state.step);
  // The per-step scalars in double, as PyTorch computes them on the host; the update itself is float.
  const auto decay = static_cast<float>(1.0 - config.learning_rate * config.weight_decay);
  const auto beta1 = static_cast<float>(config.beta1);
  const auto beta2 = static_cast<float>(config.beta2);
  const auto one_minus_beta1 = static_cast<float>(1.0 - config.beta1);
  const auto one_minus_beta2 = static_cast<float>(1.0 - config.beta2);
  const auto step_size = static_cast<float>(config.learning_rate / (1.0 - std::pow(config.beta1, t)));
  const auto root_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(config.beta2, t)));
  const auto epsilon = static_cast<float>(config.epsilon);
  // Chunks of parameters, each a SIMD loop over raw pointers (a loop over view elements does not vectorise:
  // the compiler cannot rule out that the views overlap).
  constexpr std::size_t chunk = 1024;
  float* p = parameters.data();
  float* m = state.first_moment.data();
  float* v = state.second_moment.data();
  const float* g = gradients.data();
  Kokkos::parallel_for(
      "nsbi::kernels::adamw_step",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>(space, 0, (n + chunk - 1) / chunk),
      KOKKOS_LAMBDA(std::size_t c) {
        const std::size_t last = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        NSBI_SIMD_LOOP
        for (std::size_t k = c * chunk; k < last; ++k) {
          const float m_k = beta1 * m[k] + one_minus_beta1 * g[k];
          const float v_k = beta2 * v[k] + one_minus_beta2 * (g[k] * g[k]);
          m[k] = m_k;
          v[k] = v_k;
          const float denominator = Kokkos::Experimental::sqrt(v_k) / root_correction2 + epsilon;
          p[k] = p[k] * decay - step_size * (m_k / denominator);
        }
      });
}

}  // namespace nsbi::kernels
