#pragma once
// The standard normal distribution's CDF Φ and quantile Φ⁻¹, kernel-safe (no heap, no exceptions, no
// recursion): the truncated normal proposal draws by inversion with them (sims/proposal.hpp), and the
// inference statistics take their quantiles from here. Arguments are the caller's to check.
//
// They call the platform's erf, erfc, exp and log (Kokkos::Experimental, the C library on the host): the
// same bits on every rank of one build. Call them outside `omp simd` loops, where a vector variant of those
// functions could give other bits than the scalar one.

#include <Kokkos_Macros.hpp>
#include <Kokkos_MathematicalFunctions.hpp>

namespace nsbi::normal {

namespace detail {

constexpr double sqrt_half = 0.70710678118654752440;
constexpr double log_sqrt_two_pi = 0.91893853320467274178;

// Acklam's rational approximation of Φ⁻¹ (relative error below 1.2e-9) for 0 < p ≤ 1/2.
KOKKOS_INLINE_FUNCTION double quantile_approximation(double p) {
  if (p < 0.02425) {
    const double r = Kokkos::Experimental::sqrt(-2.0 * Kokkos::Experimental::log(p));
    return (((((-7.784894002430293e-03 * r + -3.223964580411365e-01) * r + -2.400758277161838e+00) * r +
              -2.549732539343734e+00) *
                 r +
             4.374664141464968e+00) *
                r +
            2.938163982698783e+00) /
           ((((7.784695709041462e-03 * r + 3.224671290700398e-01) * r + 2.445134137142996e+00) * r +
             3.754408661907416e+00) *
                r +
            1.0);
  }
  const double q = p - 0.5;
  const double r = q * q;
  return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r + -2.759285104469687e+02) * r +
            1.383577518672690e+02) *
               r +
           -3.066479806614716e+01) *
              r +
          2.506628277459239e+00) *
         q /
         (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r + -1.556989798598866e+02) * r +
            6.680131188771972e+01) *
               r +
           -1.328068155288572e+01) *
              r +
          1.0);
}

}  // namespace detail

/// Φ(z) = erfc(−z/√2)/2: accurate to its own ulp in the lower tail (z < 0), where 1 − Φ(−z) would cancel.
KOKKOS_INLINE_FUNCTION double cdf(double z) {
  return 0.5 * Kokkos::Experimental::erfc(-detail::sqrt_half * z);
}

/// Φ⁻¹(p) for 0 < p < 1, to about an ulp: Acklam's approximation, then two Halley steps near the centre or
/// two Newton steps on log Φ in the tail. Above 1/2 it returns −Φ⁻¹(1 − p) (1 − p is exact there), so both
/// tails keep their relative accuracy.
KOKKOS_INLINE_FUNCTION double quantile(double p) {
  const bool upper = p > 0.5;
  if (upper) p = 1.0 - p;
  double x = detail::quantile_approximation(p);
  for (int step = 0; step < 2; ++step) {
    if (p > 0.25) {
      // Near the centre Φ(x) − p = erf(x/√2)/2 − (p − 1/2), both sides accurate to their own ulp.
      const double residual = 0.5 * Kokkos::Experimental::erf(detail::sqrt_half * x) - (p - 0.5);
      const double u = residual * Kokkos::Experimental::exp(0.5 * x * x + detail::log_sqrt_two_pi);
      x -= u / (1.0 + 0.5 * x * u);  // Halley's step for Φ(x) = p
    } else {
      // In the tail Newton's method on log Φ(x) = log p: no φ(x) to underflow, and the residual is relative.
      const double tail = cdf(x);
      if (!(tail > 0)) break;
      const double mills = Kokkos::Experimental::exp(Kokkos::Experimental::log(tail) + 0.5 * x * x +
                                                     detail::log_sqrt_two_pi);  // Φ(x)/φ(x)
      x -= Kokkos::Experimental::log(tail / p) * mills;
    }
  }
  return upper ? -x : x;
}

}  // namespace nsbi::normal
