#include "nsbi/kernels/initialise.hpp"

#include <cmath>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"

namespace nsbi::kernels {

double initialisation_bound(const MlpArchitecture& architecture, std::size_t layer) {
  const auto n_in = static_cast<double>(architecture.layer_inputs(layer));
  const auto n_out = static_cast<double>(architecture.layer_outputs(layer));
  return architecture.activation == Activation::relu ? std::sqrt(6.0 / n_in)
                                                     : std::sqrt(6.0 / (n_in + n_out));
}

void initialise_parameters(const ExecutionSpace& space, const MlpArchitecture& architecture,
                           std::uint64_t seed, const FloatVector& parameters) {
  NSBI_ASSERT(parameters.extent(0) == architecture.n_parameters(),
              "nsbi::kernels::initialise_parameters: wrong parameter count");
  for (std::size_t l = 0; l < architecture.n_layers(); ++l) {
    const double bound = initialisation_bound(architecture, l);
    const std::size_t first_bias = architecture.bias_offset(l);
    Kokkos::parallel_for(
        "nsbi::kernels::initialise_parameters",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>(
            space, architecture.weight_offset(l), architecture.weight_offset(l + 1)),
        KOKKOS_LAMBDA(std::size_t k) {
          rng::Stream stream(seed, rng::Purpose::initialise, k);
          parameters(k) = k < first_bias ? static_cast<float>(bound * (2.0 * stream.uniform() - 1.0)) : 0.0f;
        });
  }
}

}  // namespace nsbi::kernels
