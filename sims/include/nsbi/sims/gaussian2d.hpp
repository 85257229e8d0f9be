#pragma once
// gaussian2d (docs/simulators.md): x ~ N((0, mu2), [[1, rho12], [rho12, 1]]), exact likelihood known.

#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

struct Gaussian2d {
  static constexpr int n_parameters = 2;  // mu2, rho12
  static constexpr int n_observables = 2;
  static constexpr bool has_exact_likelihood = true;

  static SimulatorInfo info() {
    SimulatorInfo info;
    info.name = "gaussian2d";
    info.doc = "2D Gaussian with unknown mean mu2 and correlation rho12 (the lecture's estimation problem)";
    info.parameters = {{"mu2", -1.0, 1.0, {}, "mean of x2"},
                       {"rho12", -0.99, 0.99, {}, "correlation of x1, x2"}};
    info.observables = {"x1", "x2"};
    info.has_exact_likelihood = true;
    return info;
  }

  static constexpr int vector_candidates = 0;  // no rejection step

  /// Block 0 of the row's stream: one Box–Muller pair (z1, z2).
  template <int max_candidates>
  KOKKOS_FORCEINLINE_FUNCTION bool sample(const rng::StreamBlocks& draws, const double* theta,
                                          double* x) const {
    const double mu2 = theta[0];
    const double rho = theta[1];
    const rng::NormalPair z = rng::normal_pair(draws.uniforms(0));
    x[0] = z.first;
    x[1] = mu2 + rho * z.first + kernel_math::sqrt(1.0 - rho * rho) * z.second;
    return true;
  }

  KOKKOS_INLINE_FUNCTION double log_likelihood(const double* theta, const double* x) const {
    const double mu2 = theta[0];
    const double rho = theta[1];
    const double d1 = x[0];
    const double d2 = x[1] - mu2;
    const double one_minus_rho2 = 1.0 - rho * rho;
    constexpr double log_two_pi = 1.8378770664093454836;
    return -0.5 * (d1 * d1 + d2 * d2 - 2.0 * rho * d1 * d2) / one_minus_rho2 -
           0.5 * Kokkos::Experimental::log(one_minus_rho2) - log_two_pi;
  }
};

}  // namespace nsbi::sims
