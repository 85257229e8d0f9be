#pragma once
// Elementary functions for kernel bodies, written as plain IEEE double arithmetic (range reduction and the
// fdlibm polynomials, no branches, no library calls). They give the same bits in a SIMD lane, in a scalar
// loop and on a GPU, which libm, libmvec and the CUDA math library do not: a simulated row must not depend
// on where it was computed (docs/development.md, "Rules"). This needs -ffp-contract=off
// (cmake/NsbiTargets.cmake): a fused multiply-add would round differently. Accuracy: within 1 ulp unless a
// function says otherwise (tests/core/test_kernel_math.cpp measures each).

#include <Kokkos_Macros.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>

// Marks a loop over independent rows for vectorisation (OpenMP SIMD, which -fopenmp-simd enables without
// the OpenMP runtime). Host code only: on a GPU every row is a thread.
#if defined(NSBI_HAS_OPENMP_SIMD) && !defined(__CUDA_ARCH__)
#define NSBI_SIMD_LOOP _Pragma("omp simd")
#else
#define NSBI_SIMD_LOOP
#endif
// Keeps a rarely taken path out of line, so that it does not weigh on the hot loop that calls it.
#if defined(__GNUC__) || defined(__clang__)
#define NSBI_NOINLINE __attribute__((noinline))
#else
#define NSBI_NOINLINE
#endif

namespace nsbi::kernel_math {

namespace detail {

// The same bits as another type of the same size (C++20's std::bit_cast).
template <class To, class From>
KOKKOS_FORCEINLINE_FUNCTION To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

KOKKOS_FORCEINLINE_FUNCTION std::uint64_t bits_of(double x) { return bit_cast<std::uint64_t>(x); }
KOKKOS_FORCEINLINE_FUNCTION double from_bits(std::uint64_t bits) { return bit_cast<double>(bits); }
KOKKOS_FORCEINLINE_FUNCTION std::uint32_t float_bits(float x) { return bit_cast<std::uint32_t>(x); }
KOKKOS_FORCEINLINE_FUNCTION float float_from_bits(std::uint32_t bits) { return bit_cast<float>(bits); }

// ln 2 = ln2_hi + ln2_lo (fdlibm): ln2_hi has 21 trailing zero bits, so k ln2_hi is exact for |k| < 2^21.
constexpr double ln2_hi = 0x1.62e42feep-1;
constexpr double ln2_lo = 0x1.a39ef35793c76p-33;

// pi/2 = pio2_hi + pio2_lo to ~2^-107 (fdlibm); pio2_hi is split into two 26-bit halves for exact products.
constexpr double pio2_hi = 0x1.921fb54442d18p0;
constexpr double pio2_lo = 0x1.1a62633145c07p-54;
constexpr double pio2_hi_high = 0x1.921fb58p0;
constexpr double pio2_hi_low = -0x1.dde974p-27;

// sin(x + y) and cos(x + y) for |x| <= pi/4, |y| <= ulp(x): fdlibm's __kernel_sin and (FreeBSD's)
// __kernel_cos.
KOKKOS_FORCEINLINE_FUNCTION double kernel_sin(double x, double y) {
  constexpr double s1 = -0x1.5555555555549p-3;
  constexpr double s2 = 0x1.111111110f8a6p-7;
  constexpr double s3 = -0x1.a01a019c161d5p-13;
  constexpr double s4 = 0x1.71de357b1fe7dp-19;
  constexpr double s5 = -0x1.ae5e68a2b9cebp-26;
  constexpr double s6 = 0x1.5d93a5acfd57cp-33;
  const double z = x * x;
  const double v = z * x;
  const double r = s2 + z * (s3 + z * (s4 + z * (s5 + z * s6)));
  return x - ((z * (0.5 * y - v * r) - y) - v * s1);
}

KOKKOS_FORCEINLINE_FUNCTION double kernel_cos(double x, double y) {
  constexpr double c1 = 0x1.555555555554cp-5;
  constexpr double c2 = -0x1.6c16c16c15177p-10;
  constexpr double c3 = 0x1.a01a019cb159p-16;
  constexpr double c4 = -0x1.27e4f809c52adp-22;
  constexpr double c5 = 0x1.1ee9ebdb4b1c4p-29;
  constexpr double c6 = -0x1.8fae9be8838d4p-37;
  const double z = x * x;
  const double w = z * z;
  const double r = z * (c1 + z * (c2 + z * c3)) + w * w * (c4 + z * (c5 + z * c6));
  const double hz = 0.5 * z;
  const double one_minus_hz = 1.0 - hz;
  return one_minus_hz + (((1.0 - one_minus_hz) - hz) + (z * r - x * y));
}

}  // namespace detail

/// The square root, correctly rounded (IEEE 754) on every platform. ::sqrt is a compiler builtin, an
/// instruction with -fno-math-errno, where std::sqrt is a function that large kernels may leave uninlined.
KOKKOS_FORCEINLINE_FUNCTION double sqrt(double x) { return ::sqrt(x); }

/// Natural logarithm of a finite x > 0 (normal or subnormal); fdlibm's __ieee754_log without its branches.
KOKKOS_FORCEINLINE_FUNCTION double log(double x) {
  constexpr double lg1 = 0x1.5555555555593p-1;
  constexpr double lg2 = 0x1.999999997fa04p-2;
  constexpr double lg3 = 0x1.2492494229359p-2;
  constexpr double lg4 = 0x1.c71c51d8e78afp-3;
  constexpr double lg5 = 0x1.7466496cb03dep-3;
  constexpr double lg6 = 0x1.39a09d078c69fp-3;
  constexpr double lg7 = 0x1.2f112df3e5244p-3;
  // Subnormals are scaled into the normal range first (exact).
  const bool subnormal = x < 0x1p-1022;
  const std::uint64_t bits = detail::bits_of(subnormal ? x * 0x1p54 : x);
  const std::int32_t high = static_cast<std::int32_t>(bits >> 32);
  const std::int32_t mantissa_high = high & 0x000fffff;
  // x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)): `up` moves mantissas above sqrt(2) down one binade.
  const std::int32_t up = (mantissa_high + 0x95f64) & 0x100000;
  const std::int32_t k = (high >> 20) - 1023 - (subnormal ? 54 : 0) + (up >> 20);
  const std::uint64_t reduced_high = static_cast<std::uint32_t>(mantissa_high | (up ^ 0x3ff00000));
  const double f = detail::from_bits((reduced_high << 32) | (bits & 0xffffffffu)) - 1.0;
  // log(1 + f) = 2 atanh(s) = 2 s + s R(s^2), s = f / (2 + f).
  const double s = f / (2.0 + f);
  const double dk = static_cast<double>(k);
  const double z = s * s;
  const double w = z * z;
  const double r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6));
  const double hfsq = 0.5 * f * f;
  // fdlibm's two ways of assembling the result; the first is more accurate for f away from zero.
  const bool wide = ((mantissa_high - 0x6147a) | (0x6b851 - mantissa_high)) > 0;
  const double away = dk * detail::ln2_hi - ((hfsq - (s * (hfsq + r) + dk * detail::ln2_lo)) - f);
  const double near = dk * detail::ln2_hi - ((s * (f - r) - dk * detail::ln2_lo) - f);
  return wide ? away : near;
}

/// sin(2 pi t) and cos(2 pi t) for |t| < 2^49: t is an angle in turns, so the reduction is exact (t minus
/// the nearest quarter turn) and only the quarter-turn remainder is multiplied by pi/2, in double-double.
struct SinCos {
  double sin;
  double cos;
};

KOKKOS_FORCEINLINE_FUNCTION SinCos sin_cos_turns(double t) {
  constexpr double round_shift = 0x1.8p52;  // adding it rounds |q| < 2^51 to an integer in the low bits
  const double q = 4.0 * t;                 // quarter turns, exact
  const double shifted = q + round_shift;
  const double n = shifted - round_shift;
  const double r = q - n;  // exact, in [-1/2, 1/2]
  const unsigned quadrant = static_cast<unsigned>(detail::bits_of(shifted) & 3u);
  // x + y = r (pi/2): Dekker's exact product of r and pio2_hi, plus r pio2_lo.
  const double x0 = r * detail::pio2_hi;
  const double split = r * 134217729.0;  // 2^27 + 1: Veltkamp's split of r into two 26-bit halves
  const double r_high = split - (split - r);
  const double r_low = r - r_high;
  const double product_error =
      (((r_high * detail::pio2_hi_high - x0) + r_high * detail::pio2_hi_low) + r_low * detail::pio2_hi_high) +
      r_low * detail::pio2_hi_low;
  const double y0 = product_error + r * detail::pio2_lo;
  const double x = x0 + y0;
  const double y = y0 - (x - x0);
  const double s = detail::kernel_sin(x, y);
  const double c = detail::kernel_cos(x, y);
  // sin(2 pi t) = sin(x + quadrant pi/2).
  const bool odd = (quadrant & 1u) != 0;
  const double sin_abs = odd ? c : s;
  const double cos_abs = odd ? s : c;
  return {(quadrant & 2u) != 0 ? -sin_abs : sin_abs, ((quadrant + 1u) & 2u) != 0 ? -cos_abs : cos_abs};
}

/// arccos(x) in [0, pi] for x in [-1, 1]: fdlibm's __ieee754_acos, its three argument ranges computed
/// together and selected.
KOKKOS_FORCEINLINE_FUNCTION double acos(double x) {
  constexpr double pi = 0x1.921fb54442d18p1;
  constexpr double ps0 = 0x1.5555555555555p-3;
  constexpr double ps1 = -0x1.4d61203eb6f7dp-2;
  constexpr double ps2 = 0x1.9c1550e884455p-3;
  constexpr double ps3 = -0x1.48228b5688f3bp-5;
  constexpr double ps4 = 0x1.9efe07501b288p-11;
  constexpr double ps5 = 0x1.23de10dfdf709p-15;
  constexpr double qs1 = -0x1.33a271c8a2d4bp1;
  constexpr double qs2 = 0x1.02ae59c598ac8p1;
  constexpr double qs3 = -0x1.6066c1b8d0159p-1;
  constexpr double qs4 = 0x1.3b8c5b12e9282p-4;
  const double ax = x < 0.0 ? -x : x;
  const bool central = ax < 0.5;
  // asin(sqrt(z)) / sqrt(z) - 1 = z R(z) with z = x^2 (|x| < 1/2) or (1 - |x|) / 2 (the ends).
  const double z = central ? x * x : (1.0 - ax) * 0.5;
  const double p = z * (ps0 + z * (ps1 + z * (ps2 + z * (ps3 + z * (ps4 + z * ps5)))));
  const double q = 1.0 + z * (qs1 + z * (qs2 + z * (qs3 + z * qs4)));
  const double r = p / q;
  const double s = sqrt(z);
  // x > 1/2: 2 asin(sqrt(z)) with sqrt(z) = s_high + c exactly to first order, s_high having 21 zero bits.
  const double s_high = detail::from_bits(detail::bits_of(s) & 0xffffffff00000000ull);
  const double s_sum = s + s_high;
  const double c = (z - s_high * s_high) / (s_sum > 0.0 ? s_sum : 1.0);  // x = 1: z = s = 0, c = 0
  const double upper = 2.0 * (s_high + (r * s + c));
  const double lower = pi - 2.0 * (s + (r * s - detail::pio2_lo));
  const double middle = detail::pio2_hi - (x - (detail::pio2_lo - x * r));
  return central ? middle : (x > 0.0 ? upper : lower);
}

namespace detail {

constexpr double inv_ln2 = 0x1.71547652b82fep0;
constexpr double round_shift = 0x1.8p52;  // adding it rounds |q| < 2^51 to an integer in the low bits

/// An unevaluated sum hi + lo, which carries about twice a double's precision.
struct DoubleDouble {
  double hi;
  double lo;
};

// x with its 32 low bits cleared: 21 significant bits, so that the product of two such values is exact.
KOKKOS_FORCEINLINE_FUNCTION double high_half(double x) {
  return from_bits(bits_of(x) & 0xffffffff00000000ull);
}

// 2^k for -1022 <= k <= 1023.
KOKKOS_FORCEINLINE_FUNCTION double pow2(std::int32_t k) {
  return from_bits(static_cast<std::uint64_t>(k + 1023) << 52);
}

// y 2^k for -1076 <= k <= 1024 in two exact steps (2^k alone may not be a normal double), so that a result
// in the subnormal range is rounded once and one beyond the range overflows to inf.
KOKKOS_FORCEINLINE_FUNCTION double scale_by_pow2(double y, std::int32_t k) {
  const std::int32_t k1 = k >> 1;
  return y * pow2(k1) * pow2(k - k1);
}

// a b exactly as a sum of two doubles (Dekker, with Veltkamp's splits into 26-bit halves), for |a|, |b| <
// 2^995 and a product that does not underflow.
KOKKOS_FORCEINLINE_FUNCTION DoubleDouble exact_product(double a, double b) {
  constexpr double split = 134217729.0;  // 2^27 + 1
  const double p = a * b;
  const double a_split = a * split;
  const double a_high = a_split - (a_split - a);
  const double a_low = a - a_high;
  const double b_split = b * split;
  const double b_high = b_split - (b_split - b);
  const double b_low = b - b_high;
  return {p, (((a_high * b_high - p) + a_high * b_low) + a_low * b_high) + a_low * b_low};
}

// a + b exactly as a sum of two doubles, for any order of magnitude (Knuth's two-sum).
KOKKOS_FORCEINLINE_FUNCTION DoubleDouble exact_sum(double a, double b) {
  const double s = a + b;
  const double b_virtual = s - a;
  return {s, (a - (s - b_virtual)) + (b - b_virtual)};
}

// The reduction of exp and expm1: x = k ln 2 + (hi - lo), |hi - lo| <= ln 2 / 2 (plus rounding), with
// hi = x - k ln2_hi exact for |k| <= 1076. k comes from the low bits of the shifted product, which is defined
// for every input (NaN included).
struct Ln2Reduction {
  std::int32_t k;
  double hi;
  double lo;
};

KOKKOS_FORCEINLINE_FUNCTION Ln2Reduction reduce_ln2(double x) {
  const double shifted = x * inv_ln2 + round_shift;
  const double dk = shifted - round_shift;
  return {static_cast<std::int32_t>(bits_of(shifted) & 0xffffffffu), x - dk * ln2_hi, dk * ln2_lo};
}

// fdlibm's exp polynomial: r (e^r + 1) / (e^r - 1) = 2 + r^2 P(r^2) to 2^-59 on |r| <= ln 2 / 2; this is
// r^2 P(r^2), the amount by which c = r - r^2 P(r^2) differs from r.
KOKKOS_FORCEINLINE_FUNCTION double exp_polynomial(double r) {
  constexpr double p1 = 0x1.555555555553ep-3;
  constexpr double p2 = -0x1.6c16c16bebd93p-9;
  constexpr double p3 = 0x1.1566aaf25de2cp-14;
  constexpr double p4 = -0x1.bbd41c5d26bf1p-20;
  constexpr double p5 = 0x1.6376972bea4d0p-25;
  const double z = r * r;
  return z * (p1 + z * (p2 + z * (p3 + z * (p4 + z * p5))));
}

/// e^(x + tail) for |tail| <= 2^-40 |x| (a double-double argument, which pow and exp10 need): fdlibm's
/// __ieee754_exp without its branches. x is clamped to [-746, 710], beyond which the result is 0 or inf
/// anyway.
KOKKOS_FORCEINLINE_FUNCTION double exp_sum(double x, double tail) {
  const double clamped = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);
  const Ln2Reduction red = reduce_ln2(clamped);
  const double lo = red.lo - tail;
  const double r = red.hi - lo;
  const double c = r - exp_polynomial(r);
  // e^r = 1 + r + r c / (2 - c), with r = hi - lo assembled last so that lo's rounding is not lost.
  const double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - red.hi);
  return scale_by_pow2(y, red.k);
}

/// log(x) as hi + lo within 2^-63.5 relative (pow and log1p need more than a double), for finite x > 0:
/// x = 2^k m, m in [sqrt(2)/2, sqrt(2)), f = m - 1 exact, log(m) = 2 atanh(s) = (2/3) s (3 + s^2 + s^4
/// Q(s^2)) with s = f / (1 + m). s, the factor in brackets and the product are each split into a 21-bit high
/// part and a remainder, so that the products of high parts are exact (the method of fdlibm's pow). Q is the
/// Taylor series to s^24 (truncated below 2^-65 relative). The error is mostly the few roundings of s^4 Q
/// (measured 2^-63.7 at the ends of the range against a 40-digit reference; tests/core/test_kernel_math.cpp).
KOKKOS_FORCEINLINE_FUNCTION DoubleDouble log_extended(double x) {
  constexpr double two_thirds = 0x1.5555555555555p-1;
  constexpr double two_thirds_high = 0x1.55555p-1;  // 21 bits
  constexpr double two_thirds_low = 0x1.5555555555555p-23;
  const bool subnormal = x < 0x1p-1022;
  const std::uint64_t bits = bits_of(subnormal ? x * 0x1p54 : x);
  const std::int32_t high = static_cast<std::int32_t>(bits >> 32);
  const std::int32_t mantissa_high = high & 0x000fffff;
  const std::int32_t up = (mantissa_high + 0x95f64) & 0x100000;  // as in log
  const std::int32_t k = (high >> 20) - 1023 - (subnormal ? 54 : 0) + (up >> 20);
  const std::uint64_t reduced_high = static_cast<std::uint32_t>(mantissa_high | (up ^ 0x3ff00000));
  const double m = from_bits((reduced_high << 32) | (bits & 0xffffffffu));
  const double f = m - 1.0;
  // s = f / d, d = 1 + m = d_high + d_low exactly to 2^-72; s = s_high + s_low.
  const double d = 1.0 + m;
  const double d_high = high_half(d);
  const double d_low = (d - d_high) + (m - (d - 1.0));
  const double s_rounded = f / d;
  const double s_high = high_half(s_rounded);
  const double s_low = ((f - s_high * d_high) - s_high * d_low) / d;  // f - s_high d_high is exact
  const double s = s_high + s_low;
  // s^2 = s_high^2 (exact) + s_low (s_high + s).
  const double s_high_squared = s_high * s_high;
  const double square_rest = s_low * (s_high + s);
  const double z = s_high_squared + square_rest;
  const double q_tail = 3.0 / 17 + z * (3.0 / 19 + z * (3.0 / 21 + z * (3.0 / 23 + z * (3.0 / 25))));
  const double q =
      z * z *
      (3.0 / 5 +
       z * (3.0 / 7 + z * (3.0 / 9 + z * (3.0 / 11 + z * (3.0 / 13 + z * (3.0 / 15 + z * q_tail))))));
  // t = 3 + s^2 + s^4 Q = t_high + t_low.
  const double rest = q + square_rest;
  const double t_high = high_half(3.0 + s_high_squared + rest);
  const double t_low = rest - ((t_high - 3.0) - s_high_squared);
  // s t = u + v, u exact; then (2/3) s t = z_high + z_low, z_high exact.
  const double u = s_high * t_high;
  const double v = s_low * t_high + t_low * s;
  const double p_high = high_half(u + v);
  const double p_low = v - (p_high - u);
  const double z_high = two_thirds_high * p_high;
  const double z_low = two_thirds_low * p_high + p_low * two_thirds;
  // + k ln 2: |k ln2_hi| >= ln 2 > |z_high| unless k = 0, so the sum's rounding error is exact.
  const double dk = static_cast<double>(k);
  const double a = dk * ln2_hi;
  const double sum = a + z_high;
  return {sum, ((a - sum) + z_high) + (z_low + dk * ln2_lo)};
}

}  // namespace detail

/// e^x for every x but NaN: fdlibm's __ieee754_exp without its branches, within 1 ulp (measured 0.90).
/// Results below the normal range are rounded once to a subnormal (e^x = 0 for x < -745.14); x > 709.78 gives
/// inf.
KOKKOS_FORCEINLINE_FUNCTION double exp(double x) { return detail::exp_sum(x, 0.0); }

/// 10^x for every x but NaN: e^(x ln 10) with x ln 10 carried in double-double, so it is as accurate as exp
/// (within 1 ulp, measured 0.87); 10^x = 0 below x = -323.6 and inf above 308.25.
KOKKOS_FORCEINLINE_FUNCTION double exp10(double x) {
  constexpr double ln10_hi = 0x1.26bb1bbb55516p1;  // ln 10 = ln10_hi + ln10_lo to 2^-105
  constexpr double ln10_lo = -0x1.f48ad494ea3e9p-53;
  // Clamped (the result is 0 or inf beyond) so that the exact product cannot overflow.
  const double clamped = x < -400.0 ? -400.0 : (x > 400.0 ? 400.0 : x);
  const detail::DoubleDouble product = detail::exact_product(clamped, ln10_hi);
  return detail::exp_sum(product.hi, product.lo + clamped * ln10_lo);
}

/// e^x - 1 for every x but NaN, accurate also where it is small: x = k ln 2 + r, e^r - 1 = r + r^2/2 + q in
/// double-double (q from exp's polynomial, r^2/2 exact), then e^x - 1 = 2^k ((1 - 2^-k) + (e^r - 1)) summed
/// exactly and rounded once. Within 1 ulp (measured 0.71); -1 for x < -40 (correctly rounded there), inf
/// above 709.78.
KOKKOS_FORCEINLINE_FUNCTION double expm1(double x) {
  const double clamped = x < -40.0 ? -40.0 : (x > 710.0 ? 710.0 : x);
  const detail::Ln2Reduction red = detail::reduce_ln2(clamped);
  const double r = red.hi - red.lo;
  const double r_error = (red.hi - r) - red.lo;  // r + r_error = hi - lo to 2^-106
  // From exp: e^r = 1 + r + r c / (2 - c), c = r - R; q = r c / (2 - c) - r^2 / 2 = r (r c - 2 R) / (2 (2 -
  // c)).
  const double big_r = detail::exp_polynomial(r);
  const double c = r - big_r;
  const double q = r * (r * c - 2.0 * big_r) / (2.0 * (2.0 - c));
  const detail::DoubleDouble half_square = detail::exact_product(r, 0.5 * r);
  const double e_high = r + half_square.hi;  // |r| >= r^2 / 2: the rounding error is exact
  const double e_low = ((r - e_high) + half_square.hi) + (half_square.lo + q + r_error * (1.0 + r));
  // 1 - 2^-k = one_minus + one_minus_error exactly (k is clamped so that 2^-k stays a normal double; for
  // k > 1000 the omitted 2^-k is far below the result's last place).
  const std::int32_t k_clamped = red.k > 1000 ? 1000 : red.k;
  const double minus_pow = detail::pow2(-k_clamped);
  const double one_minus = 1.0 - minus_pow;
  const double one_minus_error = (1.0 - one_minus) - minus_pow;  // exact, 0 for k <= 0
  const detail::DoubleDouble sum = detail::exact_sum(one_minus, e_high);
  return detail::scale_by_pow2(sum.hi + (sum.lo + (e_low + one_minus_error)), red.k);
}

namespace detail {

// log(1 + x + tail) for x + tail > -1, |tail| <= ulp(x): 1 + x = u + c exactly, then log(u) in double-double
// plus (c + tail) / u, rounded once. Below |x| = 2^-30 the series x + tail - x^2/2 + x^3/3 instead (its
// truncation error is below 2^-90 relative): there c is as large as the result, and c + tail would be
// rounded at the result's last place.
KOKKOS_FORCEINLINE_FUNCTION double log1p_sum(double x, double tail) {
  const DoubleDouble u = exact_sum(1.0, x);
  const DoubleDouble log_u = log_extended(u.hi);
  const double series = x + (tail + x * x * (x * (1.0 / 3) - 0.5));
  const bool small = (x < 0.0 ? -x : x) < 0x1p-30;
  return small ? series : log_u.hi + (log_u.lo + (u.lo + tail) / u.hi);
}

}  // namespace detail

/// log(1 + x) for finite x > -1, accurate also where it is small: 1 + x = u + c exactly, then log(u) in
/// double-double plus c / u, rounded once (a series below |x| = 2^-30). Within 1 ulp (measured 0.50).
KOKKOS_FORCEINLINE_FUNCTION double log1p(double x) { return detail::log1p_sum(x, 0.0); }

/// x^y for finite x > 0 and finite y: e^(y log x) with log x in double-double (detail::log_extended) and y
/// log x formed exactly. The argument's error, at most |y| |log x| 2^-63.5 <= 745 2^-63.5, adds at most 0.45
/// ulp to exp's 1 ulp: within 1.5 ulp (measured: 0.99). 0 or inf where x^y is beyond the double range.
KOKKOS_FORCEINLINE_FUNCTION double pow(double x, double y) {
  const detail::DoubleDouble log_x = detail::log_extended(x);
  // |log x| >= 2^-53 unless x = 1, so beyond |y| = 2^64 the result is 0, 1 or inf: clamping y there keeps
  // the exact product from overflowing.
  const double y_clamped = y < -0x1p64 ? -0x1p64 : (y > 0x1p64 ? 0x1p64 : y);
  const detail::DoubleDouble product = detail::exact_product(y_clamped, log_x.hi);
  return detail::exp_sum(product.hi, product.lo + y_clamped * log_x.lo);
}

/// arctan(x) in [-pi/2, pi/2] for every x but NaN: fdlibm's __ieee754_atan, its five argument ranges (|x|
/// below 7/16, 11/16, 19/16, 39/16 and above, reduced by atan(x) = atan(c) + atan((x - c) / (1 + c x)) with c
/// = 0, 1/2, 1, 3/2 and atan(x) = pi/2 - atan(1/x)) computed as one division and selected. Within 1 ulp
/// (measured 0.76).
KOKKOS_FORCEINLINE_FUNCTION double atan(double x) {
  constexpr double at0 = 0x1.555555555550dp-2;
  constexpr double at1 = -0x1.999999998ebc4p-3;
  constexpr double at2 = 0x1.24924920083ffp-3;
  constexpr double at3 = -0x1.c71c6fe231671p-4;
  constexpr double at4 = 0x1.745cdc54c206ep-4;
  constexpr double at5 = -0x1.3b0f2af749a6dp-4;
  constexpr double at6 = 0x1.10d66a0d03d51p-4;
  constexpr double at7 = -0x1.dde2d52defd9ap-5;
  constexpr double at8 = 0x1.97b4b24760debp-5;
  constexpr double at9 = -0x1.2b4442c6a6c2fp-5;
  constexpr double at10 = 0x1.0ad3ae322da11p-6;
  const double ax = x < 0.0 ? -x : x;
  const bool tiny = ax < 0.4375;
  const bool low = ax < 0.6875;
  const bool middle = ax < 1.1875;
  const bool high = ax < 2.4375;
  // atan(c) = atan_hi + atan_lo for the range's c (0: no reduction, the formula below then gives t - t S).
  const double atan_hi =
      tiny ? 0.0
           : (low ? 0x1.dac670561bb4fp-2
                  : (middle ? 0x1.921fb54442d18p-1 : (high ? 0x1.f730bd281f69bp-1 : detail::pio2_hi)));
  const double atan_lo =
      tiny ? 0.0
           : (low ? 0x1.a2b7f222f65e2p-56
                  : (middle ? 0x1.1a62633145c07p-55 : (high ? 0x1.007887af0cbbdp-56 : detail::pio2_lo)));
  const double numerator =
      tiny ? ax : (low ? 2.0 * ax - 1.0 : (middle ? ax - 1.0 : (high ? ax - 1.5 : -1.0)));
  const double denominator =
      tiny ? 1.0 : (low ? 2.0 + ax : (middle ? ax + 1.0 : (high ? 1.0 + 1.5 * ax : ax)));
  const double t = numerator / denominator;
  const double z = t * t;
  const double w = z * z;
  const double s1 = z * (at0 + w * (at2 + w * (at4 + w * (at6 + w * (at8 + w * at10)))));
  const double s2 = w * (at1 + w * (at3 + w * (at5 + w * (at7 + w * at9))));
  const double result = atan_hi - ((t * (s1 + s2) - atan_lo) - t);
  return x < 0.0 ? -result : result;
}

/// artanh(x) for |x| < 1: (1/2) log1p(2|x| / (1 - |x|)), the quotient carried in double-double (1 - |x|
/// summed exactly, the division's remainder from an exact product) so that only log1p's rounding remains.
/// Within 1 ulp (measured 0.50).
KOKKOS_FORCEINLINE_FUNCTION double atanh(double x) {
  const double ax = x < 0.0 ? -x : x;
  const double twice = ax + ax;
  const detail::DoubleDouble denominator = detail::exact_sum(1.0, -ax);
  const double q = twice / denominator.hi;
  const detail::DoubleDouble product = detail::exact_product(q, denominator.hi);
  const double q_low = (((twice - product.hi) - product.lo) - q * denominator.lo) / denominator.hi;
  const double result = 0.5 * detail::log1p_sum(q, q_low);
  return x < 0.0 ? -result : result;
}

namespace detail {

// (a.hi + a.lo)(b.hi + b.lo) to about 2^-104 relative, renormalised (|lo| <= ulp(hi) / 2).
KOKKOS_FORCEINLINE_FUNCTION DoubleDouble product_dd(const DoubleDouble& a, const DoubleDouble& b) {
  const DoubleDouble p = exact_product(a.hi, b.hi);
  const double lo = p.lo + (a.hi * b.lo + a.lo * b.hi);
  const double hi = p.hi + lo;
  return {hi, lo - (hi - p.hi)};
}

}  // namespace detail

/// log Gamma(x) for 1 <= x <= 1e290 (Poisson samplers call it with x = k + 1): Stirling's series at z = x + 8
/// for x < 9 (z = x from there), lgamma(x) = lgamma(z) - log(x (x + 1) ... (x + 7)), every term carried in
/// double-double (log by detail::log_extended), so that where the difference cancels (x in [1, 3], around
/// the zeros at 1 and 2, which are exact) the error beyond the result's rounding stays below 2^-57 absolute
/// (measured 2^-57.6). The series B_2k / (2k (2k-1) z^(2k-1)) to k = 12 is truncated below 2^-68 at z = 9.
/// Within 1 ulp for x >= 3 and wherever |lgamma(x)| >= 1/8 (measured 0.64).
KOKKOS_FORCEINLINE_FUNCTION double lgamma(double x) {
  constexpr double half_log_two_pi_hi = 0x1.d67f1c864beb5p-1;  // log(2 pi) / 2 = hi + lo to 2^-108
  constexpr double half_log_two_pi_lo = -0x1.65b5a1b7ff5dfp-55;
  const bool shifted = x < 9.0;
  // The product x (x + 1) ... (x + 7), each factor summed exactly, written out (a loop here would keep GCC
  // from vectorising the caller's); 1 when not shifted.
  const double s = shifted ? 1.0 : 0.0;
  const double x_or_one = shifted ? x : 1.0;
  detail::DoubleDouble product = detail::product_dd({x_or_one, 0.0}, detail::exact_sum(x_or_one, s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 2.0 * s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 3.0 * s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 4.0 * s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 5.0 * s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 6.0 * s));
  product = detail::product_dd(product, detail::exact_sum(x_or_one, 7.0 * s));
  const detail::DoubleDouble z = detail::exact_sum(x, shifted ? 8.0 : 0.0);
  // (z - 1/2) log z - z + log(2 pi) / 2 + series.
  const detail::DoubleDouble log_z_raw = detail::log_extended(z.hi);
  const detail::DoubleDouble log_z{log_z_raw.hi, log_z_raw.lo + z.lo / z.hi};
  const detail::DoubleDouble z_half_raw = detail::exact_sum(z.hi, -0.5);
  const detail::DoubleDouble z_half{z_half_raw.hi, z_half_raw.lo + z.lo};
  const detail::DoubleDouble main = detail::product_dd(z_half, log_z);
  const detail::DoubleDouble minus_z = detail::exact_sum(main.hi, -z.hi);
  const double inverse = 1.0 / z.hi;
  const double w = inverse * inverse;
  const double series_tail =
      -691.0 / 360360 +
      w * (1.0 / 156 +
           w * (-3617.0 / 122400 +
                w * (43867.0 / 244188 +
                     w * (-174611.0 / 125400 + w * (854513.0 / 63756 + w * (-236364091.0 / 1506960))))));
  const double series =
      inverse * (1.0 / 12 + w * (-1.0 / 360 +
                                 w * (1.0 / 1260 + w * (-1.0 / 1680 + w * (1.0 / 1188 + w * series_tail)))));
  const detail::DoubleDouble log_product_raw = detail::log_extended(product.hi);
  const double log_product_lo = log_product_raw.lo + product.lo / product.hi;
  // lgamma(z) - log(product): the large parts first, exactly.
  const detail::DoubleDouble head = detail::exact_sum(minus_z.hi, -log_product_raw.hi);
  const detail::DoubleDouble head2 = detail::exact_sum(head.hi, half_log_two_pi_hi);
  const double tail = ((((head.lo + head2.lo) + minus_z.lo) + main.lo) - z.lo) +
                      ((half_log_two_pi_lo - log_product_lo) + series);
  const double result = head2.hi + tail;
  return x == 1.0 || x == 2.0 ? 0.0 : result;
}

// Single precision, for draws from at most 24-bit uniforms where a double's resolution is never used: the
// same functions as above from FreeBSD's float fdlibm (logf, acosf) and Cephes (the sin and cos kernels),
// branch-free, so that a loop of them vectorises at twice the lanes of the double ones (16 with AVX-512).
// Accuracy: within 2 float ulp (tests/core/test_kernel_math.cpp).

namespace detail {

// c ? a : b on the bits: GCC may sink the computation of a and b into the arms of a float select, which then
// stays a branch and stops vectorisation; an integer select it keeps.
KOKKOS_FORCEINLINE_FUNCTION float select(bool c, float a, float b) {
  const std::uint32_t mask = 0u - static_cast<std::uint32_t>(c);
  return float_from_bits((float_bits(a) & mask) | (float_bits(b) & ~mask));
}

KOKKOS_FORCEINLINE_FUNCTION double select(bool c, double a, double b) {
  const std::uint64_t mask = 0u - static_cast<std::uint64_t>(c);
  return from_bits((bits_of(a) & mask) | (bits_of(b) & ~mask));
}

// sin(x) and cos(x) for |x| <= pi/4 (Cephes' sinf and cosf polynomials; cos assembled as fdlibm does, 1 -
// x^2/2 with its rounding error carried).
KOKKOS_FORCEINLINE_FUNCTION float kernel_sinf(float x) {
  constexpr float s1 = -1.6666654611e-1f;
  constexpr float s2 = 8.3321608736e-3f;
  constexpr float s3 = -1.9515295891e-4f;
  const float z = x * x;
  return x + (z * x) * (s1 + z * (s2 + z * s3));
}

KOKKOS_FORCEINLINE_FUNCTION float kernel_cosf(float x) {
  constexpr float c1 = 4.166664568298827e-2f;
  constexpr float c2 = -1.388731625493765e-3f;
  constexpr float c3 = 2.443315711809948e-5f;
  const float z = x * x;
  const float hz = 0.5f * z;
  const float one_minus_hz = 1.0f - hz;
  return one_minus_hz + (((1.0f - one_minus_hz) - hz) + (z * z) * (c1 + z * (c2 + z * c3)));
}

}  // namespace detail

/// The float square root, correctly rounded.
KOKKOS_FORCEINLINE_FUNCTION float sqrtf(float x) { return ::sqrtf(x); }

/// a b + c rounded once (IEEE fused multiply-add): the same bits everywhere, unlike a contraction that
/// -ffp-contract=off forbids because the compiler would make it in some places and not others. One
/// instruction, vectorised, where the instruction set has it (x86-64 with -march=native on CPUs since 2013,
/// ARMv8, GPUs); a build for baseline x86-64 (NSBI_NATIVE_ARCH off) gets the same bits from libm, much
/// slower. For float kernels whose speed is their instruction count.
KOKKOS_FORCEINLINE_FUNCTION float fmaf(float a, float b, float c) { return ::fmaf(a, b, c); }

/// Natural logarithm of a finite float x > 0 (normal or subnormal): FreeBSD's __ieee754_logf without its
/// branches (the general formula also covers its special case |x - 1| < 2^-9, as in log above).
KOKKOS_FORCEINLINE_FUNCTION float logf(float x) {
  constexpr float ln2_hi = 0x1.62e3p-1f;  // ln 2 = ln2_hi + ln2_lo, ln2_hi with 8 trailing zero bits
  constexpr float ln2_lo = 0x1.2fefa2p-17f;
  constexpr float lg1 = 0xaaaaaa.0p-24f;
  constexpr float lg2 = 0xccce13.0p-25f;
  constexpr float lg3 = 0x91e9ee.0p-25f;
  constexpr float lg4 = 0xf89e26.0p-26f;
  const bool subnormal = x < 0x1p-126f;
  const std::int32_t bits = static_cast<std::int32_t>(detail::float_bits(subnormal ? x * 0x1p25f : x));
  const std::int32_t mantissa = bits & 0x007fffff;
  // x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)): `up` moves mantissas above sqrt(2) down one binade.
  const std::int32_t up = (mantissa + (0x95f64 << 3)) & 0x800000;
  const std::int32_t k = (bits >> 23) - 127 - (subnormal ? 25 : 0) + (up >> 23);
  const float f = detail::float_from_bits(static_cast<std::uint32_t>(mantissa | (up ^ 0x3f800000))) - 1.0f;
  const float s = f / (2.0f + f);
  const float dk = static_cast<float>(k);
  const float z = s * s;
  const float w = z * z;
  const float r = z * (lg1 + w * lg3) + w * (lg2 + w * lg4);
  const float hfsq = 0.5f * f * f;
  const bool wide = ((mantissa - (0x6147a << 3)) | ((0x6b851 << 3) - mantissa)) > 0;
  const float away = dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
  const float near = dk * ln2_hi - ((s * (f - r) - dk * ln2_lo) - f);
  return detail::select(wide, away, near);
}

/// x = 2^k (1 + f) with f in [sqrt(2)/2 - 1, sqrt(2) - 1) (f exact), for a finite normal float x: the
/// argument reduction of logf_polynomial (logf's), in integer operations.
struct LogfReduced {
  float f;
  float k;
};

KOKKOS_FORCEINLINE_FUNCTION LogfReduced reduce_logf(float x) {
  const std::int32_t bits = static_cast<std::int32_t>(detail::float_bits(x));
  const std::int32_t mantissa = bits & 0x007fffff;
  const std::int32_t up = (mantissa + (0x95f64 << 3)) & 0x800000;
  const std::int32_t k = (bits >> 23) - 127 + (up >> 23);
  const float f = detail::float_from_bits(static_cast<std::uint32_t>(mantissa | (up ^ 0x3f800000))) - 1.0f;
  return {f, static_cast<float>(k)};
}

/// Natural logarithm of a finite normal float x >= 2^-126 without a division, for loops where logf's division
/// (and its subnormal scaling) is the cost: x = 2^k (1 + f) as in logf, ln(1 + f) = f - f^2/2 + f^3 R(f)
/// with R of degree 7 on f in [sqrt(2)/2 - 1, sqrt(2) - 1] (a least-squares fit at 4000 Chebyshev nodes in
/// numpy, weighted by f^2, the share of f^3 R in the result; its coefficients rounded to float), R evaluated
/// by Estrin's scheme (a short dependency chain). Within 1 float ulp (measured 0.90;
/// tests/core/test_kernel_math.cpp). Not logf's bits: logf stays as the simulators that use it drew.
KOKKOS_FORCEINLINE_FUNCTION float logf_polynomial(float x) {
  constexpr float ln2_hi = 0x1.62e3p-1f;  // as in logf: k ln2_hi is exact
  constexpr float ln2_lo = 0x1.2fefa2p-17f;
  constexpr float r0 = 0x1.555552p-2f, r1 = -0x1.000238p-2f, r2 = 0x1.99a102p-3f, r3 = -0x1.546f18p-3f;
  constexpr float r4 = 0x1.22c5c4p-3f, r5 = -0x1.0d8cb8p-3f, r6 = 0x1.05dd32p-3f, r7 = -0x1.39c982p-4f;
  const LogfReduced reduced = reduce_logf(x);
  const float f = reduced.f;
  const float dk = reduced.k;
  const float z = f * f;
  const float z2 = z * z;
  const float r = ((r0 + r1 * f) + (r2 + r3 * f) * z) + ((r4 + r5 * f) + (r6 + r7 * f) * z) * z2;
  return (f + (((z * f) * r + dk * ln2_lo) - 0.5f * z)) + dk * ln2_hi;
}

/// sin(2 pi t) and cos(2 pi t) in float for |t| < 2^20: the reduction to the nearest quarter turn is exact
/// and the remainder's product with pi/2 is rounded once.
struct SinCosF {
  float sin;
  float cos;
};

KOKKOS_FORCEINLINE_FUNCTION SinCosF sin_cos_turnsf(float t) {
  constexpr float round_shift = 0x1.8p23f;  // adding it rounds |q| < 2^22 to an integer in the low bits
  constexpr float pio2 = 0x1.921fb6p0f;
  const float q = 4.0f * t;  // quarter turns, exact
  const float shifted = q + round_shift;
  const float r = q - (shifted - round_shift);  // exact, in [-1/2, 1/2]
  const unsigned quadrant = detail::float_bits(shifted) & 3u;
  const float x = r * pio2;
  const float s = detail::kernel_sinf(x);
  const float c = detail::kernel_cosf(x);
  const bool odd = (quadrant & 1u) != 0;
  const float sin_abs = odd ? c : s;
  const float cos_abs = odd ? s : c;
  return {(quadrant & 2u) != 0 ? -sin_abs : sin_abs, ((quadrant + 1u) & 2u) != 0 ? -cos_abs : cos_abs};
}

/// arccos(x) in [0, pi] for float x in [-1, 1]: FreeBSD's __ieee754_acosf, its three argument ranges
/// computed together and selected.
KOKKOS_FORCEINLINE_FUNCTION float acosf(float x) {
  constexpr float pi = 0x1.921fb4p1f;  // pi rounded down; the rest is carried by 2 pio2_lo
  constexpr float pio2_hi = 0x1.921fb4p0f;
  constexpr float pio2_lo = 0x1.4442dp-24f;
  constexpr float ps0 = 1.6666586697e-1f;
  constexpr float ps1 = -4.2743422091e-2f;
  constexpr float ps2 = -8.6563630030e-3f;
  constexpr float qs1 = -7.0662963390e-1f;
  const float ax = x < 0.0f ? -x : x;
  const bool central = ax < 0.5f;
  const float z = central ? x * x : (1.0f - ax) * 0.5f;
  const float p = z * (ps0 + z * (ps1 + z * ps2));
  const float q = 1.0f + z * qs1;
  const float r = p / q;
  const float s = sqrtf(z);
  // x > 1/2: 2 asin(sqrt(z)) with sqrt(z) = s_high + c exactly to first order, s_high having 12 bits.
  const float s_high = detail::float_from_bits(detail::float_bits(s) & 0xfffff000u);
  const float s_sum = s + s_high;
  const float c = (z - s_high * s_high) / (s_sum > 0.0f ? s_sum : 1.0f);  // x = 1: z = s = 0, c = 0
  const float upper = 2.0f * (s_high + (r * s + c));
  const float lower = pi - 2.0f * (s + (r * s - pio2_lo));
  const float middle = pio2_hi - (x - (pio2_lo - x * r));
  return central ? middle : (x > 0.0f ? upper : lower);
}

}  // namespace nsbi::kernel_math
