#pragma once
// spin3d (specs/simulators.md §2): two simple hypotheses for x = (x1, x2, x3), exact likelihood known.
//   H0 (spin 0): (x1, x2) ~ N(0, [[1, 0.5], [0.5, 1]]),  x3 ~ U(-pi, pi)
//   H1 (spin 1): (x1, x2) ~ N((0.25, 0), diag(1, 1.5^2)), x3 ~ (1 + 0.3 sin 4 x3) / 2pi

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

  KOKKOS_INLINE_FUNCTION void sample(rng::Stream& stream, const double* theta, double* x) const {
    const double z1 = rng::normal(stream);
    const double z2 = rng::normal(stream);
    if (theta[0] < 0.5) {
      x[0] = z1;
      x[1] = h0_correlation * z1 + Kokkos::Experimental::sqrt(1.0 - h0_correlation * h0_correlation) * z2;
      x[2] = stream.uniform(-pi, pi);
    } else {
      x[0] = h1_mean_x1 + z1;
      x[1] = h1_sigma_x2 * z2;
      // Rejection from the uniform envelope (1 + a) / 2pi: accepts with probability 1 / (1 + a).
      double x3 = 0.0;
      do {
        x3 = stream.uniform(-pi, pi);
      } while (stream.uniform() * (1.0 + h1_modulation) >= 1.0 + h1_modulation * Kokkos::Experimental::sin(4.0 * x3));
      x[2] = x3;
    }
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
           Kokkos::Experimental::log(1.0 + h1_modulation * Kokkos::Experimental::sin(4.0 * x[2])) - log_two_pi;
  }
};

}  // namespace nsbi::sims
