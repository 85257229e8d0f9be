#pragma once
// spin3d (docs/simulators.md): two simple hypotheses for x = (x1, x2, x3), exact likelihood known.
//   H0 (spin 0): (x1, x2) ~ N(0, [[1, 0.5], [0.5, 1]]),  x3 ~ U(-pi, pi)
//   H1 (spin 1): (x1, x2) ~ N((0.25, 0), diag(1, 1.5^2)), x3 ~ (1 + 0.3 sin 4 x3) / 2pi

#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

struct Spin3d {
  static constexpr int n_parameters = 1;  // spin: 0 or 1
  static constexpr int n_observables = 3;
  static constexpr bool has_exact_likelihood = true;

  static constexpr double h0_correlation = 0.5;
  static constexpr double h1_mean_x1 = 0.25;
  static constexpr double h1_sigma_x2 = 1.5;
  static constexpr double h1_modulation = 0.3;  // amplitude of sin 4 x3
  static constexpr double pi = 3.14159265358979323846;

  static SimulatorInfo info() {
    SimulatorInfo info;
    info.name = "spin3d";
    info.doc = "spin-0 versus spin-1 hypothesis test in 3 observables (the lecture's hypothesis test)";
    info.parameters = {{"spin", 0.0, 1.0, {0.0, 1.0}, "hypothesis label: 0 (H0) or 1 (H1)"}};
    info.observables = {"x1", "x2", "x3"};
    info.has_exact_likelihood = true;
    return info;
  }

  // H1's x3 by rejection from the uniform envelope (1 + a) / 2pi, which accepts with probability 1 / (1 + a).
  static constexpr int vector_candidates = 3;
  struct ModulatedX3 {
    /// x3 = -pi + 2 pi u.first, accepted if u.second (1 + a) < 1 + a sin 4 x3.
    KOKKOS_FORCEINLINE_FUNCTION bool candidate(const rng::UniformPair& u, double& x3) const {
      x3 = -pi + 2.0 * pi * u.first;
      // sin 4 x3 = sin(2 pi (4 u)) up to the rounding of x3: exact turns, no reduction error.
      const double sin_4x3 = kernel_math::sin_cos_turns(4.0 * u.first).sin;
      return u.second * (1.0 + h1_modulation) < 1.0 + h1_modulation * sin_4x3;
    }
  };

  /// The row's stream, block by block (two uniforms each): 0, Box–Muller pair (z1, z2); 1 + k, candidate k
  /// for x3 (position, acceptance), of which H0 takes the position of candidate 0 as it is.
  template <int max_candidates>
  KOKKOS_FORCEINLINE_FUNCTION bool sample(const rng::StreamBlocks& draws, const double* theta,
                                          double* x) const {
    const bool h0 = theta[0] < 0.5;
    const rng::NormalPair z = rng::normal_pair(draws.uniforms(0));
    double x3 = 0.0;
    const bool found = rng::first_accepted<max_candidates>(draws, 1, ModulatedX3{}, x3);
    const double h0_x3 = -pi + 2.0 * pi * draws.uniforms(1).first;
    x[0] = h0 ? z.first : h1_mean_x1 + z.first;
    x[1] = h0 ? h0_correlation * z.first + kernel_math::sqrt(1.0 - h0_correlation * h0_correlation) * z.second
              : h1_sigma_x2 * z.second;
    x[2] = h0 ? h0_x3 : x3;
    return found || h0;
  }

  KOKKOS_INLINE_FUNCTION double log_likelihood(const double* theta, const double* x) const {
    constexpr double log_two_pi = 1.8378770664093454836;
    if (theta[0] < 0.5) {
      const double r = h0_correlation;
      const double q = (x[0] * x[0] + x[1] * x[1] - 2.0 * r * x[0] * x[1]) / (1.0 - r * r);
      return -0.5 * q - 0.5 * Kokkos::Experimental::log(1.0 - r * r) - log_two_pi - log_two_pi;
    }
    const double d1 = x[0] - h1_mean_x1;
    const double d2 = x[1] / h1_sigma_x2;
    return -0.5 * (d1 * d1 + d2 * d2) - Kokkos::Experimental::log(h1_sigma_x2) - log_two_pi +
           Kokkos::Experimental::log(1.0 + h1_modulation * Kokkos::Experimental::sin(4.0 * x[2])) -
           log_two_pi;
  }
};

}  // namespace nsbi::sims
