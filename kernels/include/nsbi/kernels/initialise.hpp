#pragma once
// Initial weights from the counter-based RNG (docs/development.md, "Rules"): a pure function of the seed and
// the parameter's index in the flat buffer, so every rank and every run with the same seed starts from the
// same bits.

#include <cstddef>
#include <cstdint>

#include "nsbi/kernels/mlp.hpp"

namespace nsbi::kernels {

/// The half-width of layer `layer`'s uniform weight distribution: He/Kaiming sqrt(6 / n_in) for relu
/// networks, Xavier/Glorot sqrt(6 / (n_in + n_out)) for the others (every layer, the output one included).
double initialisation_bound(const MlpArchitecture& architecture, std::size_t layer);

/// Fills parameters (layout of mlp.hpp): weight k = bound (2u − 1) with u the first uniform of
/// rng::Stream(seed, Purpose::initialise, k), rounded to float; biases 0.
void initialise_parameters(const ExecutionSpace& space, const MlpArchitecture& architecture,
                           std::uint64_t seed, const FloatVector& parameters);
inline void initialise_parameters(const MlpArchitecture& architecture, std::uint64_t seed,
                                  const FloatVector& parameters) {
  initialise_parameters(ExecutionSpace(), architecture, seed, parameters);
}

}  // namespace nsbi::kernels
