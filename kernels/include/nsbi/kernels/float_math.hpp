#pragma once
// float32 elementary functions for the activation kernels, written as branch-free arithmetic (Cody–Waite
// range reduction and Cephes' minimax polynomials) so that the compiler vectorises the kernels' row loops:
// libm's expf/tanhf/log1pf are scalar calls, about ten times slower per element on a SIMD machine, and the
// smooth activations of a 512-wide network evaluate millions of them per step. Accuracy: within a few ulp
// (tests/kernels/test_float_math.cpp); the network's float32 GEMMs round more than that.

#include <Kokkos_Macros.hpp>
#include <cstdint>
#include <cstring>

namespace nsbi::kernels::float_math {

namespace detail {

KOKKOS_FORCEINLINE_FUNCTION float from_bits(std::uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

KOKKOS_FORCEINLINE_FUNCTION float select(bool condition, float if_true, float if_false) {
  return condition ? if_true : if_false;
}

}  // namespace detail

/// exp(x) for x <= 0, to within 2 ulp down to x = -87; below -87 it returns exp(-87) ~ 1.6e-38 instead of a
/// subnormal or 0 (added to 1, or multiplied by a moderate z, either is 0 to float precision).
KOKKOS_FORCEINLINE_FUNCTION float exp_nonpositive(float x) {
  constexpr float log2e = 1.44269504088896341f;
  constexpr float ln2_hi = 0.693359375f;  // ln 2 = ln2_hi + ln2_lo, ln2_hi with 9 significant bits
  constexpr float ln2_lo = -2.12194440e-4f;
  constexpr float round_shift = 0x1.8p23f;  // adding it rounds |v| < 2^22 to an integer in the low bits
  x = x < -87.0f ? -87.0f : x;
  const float shifted = x * log2e + round_shift;
  const float n = shifted - round_shift;          // round(x / ln 2), in [-126, 0]
  const float r = (x - n * ln2_hi) - n * ln2_lo;  // |r| <= ln 2 / 2
  // exp(r) - 1 = r + r^2 P(r) (Cephes' expf), by Horner's rule.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float exp_r = (p * (r * r) + r) + 1.0f;
  const auto exponent = static_cast<std::int32_t>(n);  // 2^n as a float: biased exponent n + 127 >= 1
  return exp_r * detail::from_bits(static_cast<std::uint32_t>(exponent + 127) << 23);
}

/// 1 / (1 + exp(-z)); exp only ever sees -|z|, so nothing overflows.
KOKKOS_FORCEINLINE_FUNCTION float sigmoid(float z) {
  const float e = exp_nonpositive(z >= 0.0f ? -z : z);
  const float s = 1.0f / (1.0f + e);
  return detail::select(z >= 0.0f, s, e * s);
}

/// log(1 + e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) <= 1/3, whose series in s^2 <= 1/9 reaches
/// float precision after eight terms (Taylor coefficients 1 / (2k + 1)).
KOKKOS_FORCEINLINE_FUNCTION float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float series = 1.0f / 15.0f;
  series = series * s2 + 1.0f / 13.0f;
  series = series * s2 + 1.0f / 11.0f;
  series = series * s2 + 1.0f / 9.0f;
  series = series * s2 + 1.0f / 7.0f;
  series = series * s2 + 1.0f / 5.0f;
  series = series * s2 + 1.0f / 3.0f;
  series = series * s2 + 1.0f;
  return 2.0f * s * series;
}

/// log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)).
KOKKOS_FORCEINLINE_FUNCTION float softplus(float z) {
  const float e = exp_nonpositive(z >= 0.0f ? -z : z);
  return (z > 0.0f ? z : 0.0f) + log1p_unit(e);
}

/// tanh(z): Cephes' odd polynomial for |z| < 0.625, (1 - e) / (1 + e) with e = exp(-2|z|) <= 0.29 beyond
/// (no cancellation there); both are computed and one is selected.
KOKKOS_FORCEINLINE_FUNCTION float tanh(float z) {
  const float a = z >= 0.0f ? z : -z;
  const float z2 = z * z;
  float p = -5.70498872745e-3f;
  p = p * z2 + 2.06390887954e-2f;
  p = p * z2 - 5.37397155531e-2f;
  p = p * z2 + 1.33314422036e-1f;
  p = p * z2 - 3.33332819422e-1f;
  const float small = (p * z2) * z + z;
  const float e = exp_nonpositive(-2.0f * a);
  const float large = (1.0f - e) / (1.0f + e);
  return detail::select(a < 0.625f, small, z >= 0.0f ? large : -large);
}

}  // namespace nsbi::kernels::float_math
