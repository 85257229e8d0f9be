// kernel_math: accuracy in ulp against long double references (x87, 64-bit significand: 2^11 times finer
// than double, so the reference's own error is below 0.001 ulp), over 10^6 random arguments plus the edges
// the samplers reach, and the same bits from SIMD and scalar code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"

namespace {

namespace km = nsbi::kernel_math;
namespace rng = nsbi::rng;

constexpr long double pi_l = 3.141592653589793238462643383279502884L;

// |approx - reference| in units of the last place of the double nearest the reference (the smallest
// subnormal at zero).
template <class T>
double ulp_error(T approx, long double reference) {
  const T nearest = static_cast<T>(reference);
  const T magnitude = std::fabs(nearest);
  const T ulp = magnitude == T(0) ? std::numeric_limits<T>::denorm_min()
                                  : std::nextafter(magnitude, std::numeric_limits<T>::infinity()) - magnitude;
  return static_cast<double>(std::fabs(static_cast<long double>(approx) - reference) / ulp);
}

// 10^6 uniforms on (0,1) with the samplers' 53-bit resolution, then the ends of that range.
std::vector<double> unit_interval_arguments() {
  std::vector<double> u;
  for (std::uint64_t i = 0; u.size() < 1000000; ++i) {
    const rng::UniformPair pair = rng::StreamBlocks(7, rng::Purpose::simulate, i).uniforms(0);
    u.push_back(pair.first);
    u.push_back(pair.second);
  }
  for (int k = 1; k <= 1000; ++k) {
    u.push_back(k * 0x1p-53);
    u.push_back(1.0 - k * 0x1p-53);
    u.push_back(0.5 + k * 0x1p-53);
    u.push_back(0.5 - k * 0x1p-54);
  }
  u.push_back(0x1p-54);
  return u;
}

// sin and cos of 2 pi t to long double precision: t minus the nearest quarter turn is exact in long double.
void reference_sin_cos_turns(double t, long double& s, long double& c) {
  const long double q = 4.0L * t;
  const long double n = std::nearbyint(q);
  const long double x = (q - n) * (pi_l / 2.0L);
  const long double sx = std::sin(x);
  const long double cx = std::cos(x);
  switch (static_cast<int>(std::fmod(n, 4.0L) + 4.0L) % 4) {
    case 0:
      s = sx;
      c = cx;
      break;
    case 1:
      s = cx;
      c = -sx;
      break;
    case 2:
      s = -sx;
      c = -cx;
      break;
    default:
      s = -cx;
      c = sx;
      break;
  }
}

// The largest ulp error of `f` against the long-double `reference` over `x`, and where it occurs.
template <class T, class F, class Reference>
std::pair<double, T> worst_ulp_error(const std::vector<T>& x, F f, Reference reference) {
  double worst = 0.0;
  T worst_at = 0;
  for (T v : x) {
    const double e = ulp_error<T>(f(v), reference(static_cast<long double>(v)));
    if (e > worst) {
      worst = e;
      worst_at = v;
    }
  }
  return {worst, worst_at};
}

TEST(KernelMath, LogWithinOneUlp) {
  std::vector<double> x = unit_interval_arguments();
  // Products of two uniforms (Gamma(2)), ratios (von Mises), and the rest of the double range, subnormals
  // included; 1 +- a few ulp and both sides of sqrt(2)/2, where the reduction switches.
  const double sqrt_half = std::sqrt(0.5);
  const double sqrt_two = std::sqrt(2.0);
  for (double v :
       {0x1p-108, 1e-300, DBL_MIN, 1e-310, DBL_TRUE_MIN, 1.0, 2.0, 3.0, 1e10, 1e300, DBL_MAX,
        std::nextafter(1.0, 2.0), std::nextafter(2.0, 1.0), sqrt_half, std::nextafter(sqrt_half, 1.0),
        std::nextafter(sqrt_half, 0.0), sqrt_two, std::nextafter(sqrt_two, 2.0)})
    x.push_back(v);
  for (std::size_t i = 0; i + 1 < 200000; i += 2) {
    x.push_back(x[i] * x[i + 1]);
    x.push_back(x[i] / x[i + 1] * 1e3);
  }
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::log(v); }, [](long double v) { return std::log(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::log(1.0), 0.0);
  std::printf("log: max error %.3f ulp\n", worst);
}

TEST(KernelMath, SinCosTurnsWithinOneUlp) {
  std::vector<double> t = unit_interval_arguments();
  for (double v : {0.0, 0.125, 0.25, 0.375, 0.5, 0.75, -0.3, -0x1p-60, 1e6 + 0.3, 0x1p48 + 0.125})
    t.push_back(v);
  double worst_sin = 0.0;
  double worst_cos = 0.0;
  for (double v : t) {
    long double s = 0.0L;
    long double c = 0.0L;
    reference_sin_cos_turns(v, s, c);
    const km::SinCos sc = km::sin_cos_turns(v);
    worst_sin = std::max(worst_sin, ulp_error(sc.sin, s));
    worst_cos = std::max(worst_cos, ulp_error(sc.cos, c));
  }
  EXPECT_LT(worst_sin, 1.0);
  EXPECT_LT(worst_cos, 1.0);
  // Exact quarter turns give exact values.
  EXPECT_EQ(km::sin_cos_turns(0.25).sin, 1.0);
  EXPECT_EQ(km::sin_cos_turns(0.25).cos, 0.0);
  EXPECT_EQ(km::sin_cos_turns(0.5).cos, -1.0);
  EXPECT_EQ(km::sin_cos_turns(0.5).sin, 0.0);
  std::printf("sin_cos_turns: max error %.3f ulp (sin), %.3f ulp (cos)\n", worst_sin, worst_cos);
}

TEST(KernelMath, AcosWithinOneUlp) {
  std::vector<double> x;
  for (double u : unit_interval_arguments()) x.push_back(2.0 * u - 1.0);
  for (double v : {-1.0, 1.0, 0.0, 0.5, -0.5, 1e-20, -1e-20, std::nextafter(0.5, 0.0),
                   std::nextafter(0.5, 1.0), std::nextafter(-0.5, 0.0), std::nextafter(-0.5, -1.0),
                   std::nextafter(1.0, 0.0), std::nextafter(-1.0, 0.0)})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::acos(v); }, [](long double v) { return std::acos(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::acos(1.0), 0.0);
  EXPECT_EQ(km::acos(-1.0), 3.141592653589793);
  std::printf("acos: max error %.3f ulp\n", worst);
}

// Uniform on [lo, hi] from the Philox stream `seed` (reproducible), n values.
std::vector<double> uniform_arguments(std::uint64_t seed, std::size_t n, double lo, double hi) {
  std::vector<double> x;
  for (std::uint64_t i = 0; x.size() < n; ++i) {
    const rng::UniformPair pair = rng::StreamBlocks(seed, rng::Purpose::simulate, i).uniforms(0);
    x.push_back(lo + (hi - lo) * pair.first);
    x.push_back(lo + (hi - lo) * pair.second);
  }
  return x;
}

// Both signs of v 2^-e for the uniforms v and every e in [1, 60]: small arguments, where e^x - 1 and
// log(1 + x) must keep their relative accuracy.
std::vector<double> small_arguments() {
  std::vector<double> x;
  const std::vector<double> v = uniform_arguments(13, 20000, 1.0, 2.0);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double small = std::ldexp(v[i], -1 - static_cast<int>(i % 60));
    x.push_back(small);
    x.push_back(-small);
  }
  return x;
}

// The boundaries of the ln 2 reduction, k ln 2 +- ln 2 / 2 and their neighbours, for |k| <= 1100.
std::vector<double> reduction_boundaries() {
  std::vector<double> x;
  for (int k = -1100; k <= 1100; ++k) {
    const double b = (k + 0.5) * 0.6931471805599453;
    x.insert(x.end(), {b, std::nextafter(b, -INFINITY), std::nextafter(b, INFINITY), k * 0.6931471805599453});
  }
  return x;
}

TEST(KernelMath, ExpWithinOneUlp) {
  // Every finite result: normal, subnormal (below -708.4) and the last values before overflow.
  std::vector<double> x = uniform_arguments(17, 1000000, -745.13, 709.78);
  for (double v : uniform_arguments(19, 100000, -745.13, -708.0)) x.push_back(v);
  for (double v : uniform_arguments(23, 100000, -1.0, 1.0)) x.push_back(v);
  for (double v : small_arguments()) x.push_back(v);
  for (double v : reduction_boundaries())
    if (v >= -745.13 && v <= 709.78) x.push_back(v);
  for (double v : {0.0, -0.0, 1e-300, -1e-300, DBL_TRUE_MIN, 1.0, -1.0, 709.78, -745.13, -708.39, -708.40})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::exp(v); }, [](long double v) { return std::exp(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::exp(0.0), 1.0);
  EXPECT_EQ(km::exp(-0.0), 1.0);
  // Overflow to inf, underflow through the subnormals to 0; the ends of the double range.
  EXPECT_EQ(km::exp(709.79), INFINITY);
  EXPECT_EQ(km::exp(1e300), INFINITY);
  EXPECT_EQ(km::exp(INFINITY), INFINITY);
  EXPECT_EQ(km::exp(-745.14), 0.0);  // e^-745.14 < 2^-1075: rounds to 0
  EXPECT_EQ(km::exp(-745.13), DBL_TRUE_MIN);
  EXPECT_EQ(km::exp(-1e300), 0.0);
  EXPECT_EQ(km::exp(-INFINITY), 0.0);
  EXPECT_TRUE(std::isnan(km::exp(NAN)));
  std::printf("exp: max error %.3f ulp\n", worst);
}

TEST(KernelMath, Exp10WithinOneUlp) {
  std::vector<double> x = uniform_arguments(29, 1000000, -323.3, 308.25);
  for (double v : small_arguments()) x.push_back(v);
  for (int k = -323; k <= 308; ++k) x.push_back(k);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::exp10(v); }, [](long double v) { return std::pow(10.0L, v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  // Exact powers of ten are exact (correctly rounded) up to 10^22, the last one a double holds exactly.
  double power = 1.0;
  for (int k = 0; k <= 22; ++k, power *= 10.0) EXPECT_EQ(km::exp10(k), power) << k;
  EXPECT_EQ(km::exp10(308.26), INFINITY);
  EXPECT_EQ(km::exp10(-324.0), 0.0);
  EXPECT_EQ(km::exp10(DBL_MAX), INFINITY);
  EXPECT_EQ(km::exp10(-DBL_MAX), 0.0);
  std::printf("exp10: max error %.3f ulp\n", worst);
}

TEST(KernelMath, Expm1WithinOneUlp) {
  std::vector<double> x = uniform_arguments(31, 1000000, -40.0, 709.78);
  for (double v : uniform_arguments(37, 200000, -2.0, 2.0)) x.push_back(v);
  for (double v : small_arguments()) x.push_back(v);
  for (double v : reduction_boundaries())
    if (v >= -40.0 && v <= 709.78) x.push_back(v);
  for (double v : {1e-300, -1e-300, DBL_TRUE_MIN, 0x1p-54, -0x1p-54, 1.0, -1.0, 38.0, -38.0, 709.78})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::expm1(v); }, [](long double v) { return std::expm1(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::expm1(0.0), 0.0);
  EXPECT_EQ(km::expm1(-41.0), -1.0);
  EXPECT_EQ(km::expm1(-1e300), -1.0);
  EXPECT_EQ(km::expm1(709.79), INFINITY);
  EXPECT_EQ(km::expm1(1e300), INFINITY);
  std::printf("expm1: max error %.3f ulp\n", worst);
}

TEST(KernelMath, Log1pWithinOneUlp) {
  std::vector<double> x;
  for (double u : unit_interval_arguments())  // (-1, 0), down to -1 + 2^-53 (u = 2^-54 would round to -1)
    if (u >= 0x1p-53) x.push_back(u - 1.0);
  for (double v : uniform_arguments(41, 200000, 0.0, 10.0)) x.push_back(v);
  for (double v : small_arguments()) x.push_back(v);
  for (double v : uniform_arguments(43, 200000, -690.0, 690.0)) x.push_back(std::exp(v));  // x up to 1e300
  for (double v : {1e-300, -1e-300, DBL_TRUE_MIN, 0x1p-53, -0x1p-54, 1.0, -0.5, 0x1p53, DBL_MAX, 0x1p-30,
                   std::nextafter(0x1p-30, 0.0), -0x1p-30, std::nextafter(-0x1p-30, 0.0),
                   std::sqrt(2.0) - 1.0, std::sqrt(0.5) - 1.0})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::log1p(v); }, [](long double v) { return std::log1p(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::log1p(0.0), 0.0);
  EXPECT_EQ(km::log1p(1e-300), 1e-300);
  std::printf("log1p: max error %.3f ulp\n", worst);
}

// pow and log1p rest on log_extended's extra precision: hi + lo within 2^-62 of log x, relative (the long
// double reference's own error reaches 2^-64, so this checks 2^-62; against a 40-digit reference the
// error is below 2^-63.5).
TEST(KernelMath, LogExtendedBeyondDoublePrecision) {
  std::vector<double> x = unit_interval_arguments();
  for (double v : uniform_arguments(61, 200000, -700.0, 700.0)) x.push_back(std::exp(v));
  for (double v : small_arguments()) x.push_back(1.0 + v);
  for (double v : {1e-310, DBL_TRUE_MIN, DBL_MAX, std::sqrt(2.0), std::sqrt(0.5), std::nextafter(1.0, 2.0)})
    x.push_back(v);
  long double worst = 0.0L;
  double worst_at = 0.0;
  for (double v : x) {
    if (v == 1.0) continue;  // checked exactly below
    const km::detail::DoubleDouble l = km::detail::log_extended(v);
    const long double reference = std::log(static_cast<long double>(v));
    const long double error =
        std::fabs((static_cast<long double>(l.hi) + static_cast<long double>(l.lo) - reference) / reference);
    if (error > worst) {
      worst = error;
      worst_at = v;
    }
  }
  EXPECT_LT(worst, 0x1p-62L) << "at " << worst_at;
  EXPECT_EQ(km::detail::log_extended(1.0).hi, 0.0);
  EXPECT_EQ(km::detail::log_extended(1.0).lo, 0.0);
  std::printf("log_extended: max relative error 2^%.2f\n", static_cast<double>(std::log2(worst)));
}

TEST(KernelMath, PowWithinOneUlp) {
  // x over the whole positive range (subnormals included) and y such that y log x covers every finite
  // result; x near 1 with large y, where log x must be carried beyond a double's precision; small integers.
  std::vector<double> xs, ys;
  std::mt19937_64 bits(47);
  const std::vector<double> t = uniform_arguments(53, 1000000, -745.13, 709.78);
  for (double target : t) {
    const std::uint64_t b = bits() & 0x7fffffffffffffffull;
    if (b == 0 || b >= 0x7ff0000000000000ull) continue;
    double v;
    std::memcpy(&v, &b, sizeof v);
    if (v == 1.0) continue;
    xs.push_back(v);
    ys.push_back(target / std::log(v));
  }
  // Where log_extended's error is largest (|s| near its maximum, x near sqrt(2) and sqrt(1/2)) times the
  // largest |y log x|: the worst case of the argument's error.
  for (double u : uniform_arguments(67, 200000, 0.0, 1.0)) {
    const double v = u < 0.5 ? 1.4 + 0.0284 * u : 0.7071 + 0.04 * u;
    xs.push_back(v);
    ys.push_back((u < 0.25 || u > 0.75 ? 709.7 : -745.1) / std::log(v));
  }
  for (double u : uniform_arguments(59, 200000, -1.0, 1.0)) {
    xs.push_back(1.0 + std::ldexp(u, -20));
    ys.push_back(std::ldexp(600.0, 20));
    xs.push_back(10.0);
    ys.push_back(300.0 * u);
    xs.push_back(0.5 + std::fabs(u));
    ys.push_back(std::nearbyint(40.0 * u));
  }
  double worst = 0.0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const long double reference = std::pow(static_cast<long double>(xs[i]), static_cast<long double>(ys[i]));
    if (reference > DBL_MAX) continue;
    const double e = ulp_error(km::pow(xs[i], ys[i]), reference);
    if (e > worst) {
      worst = e;
      worst_at = i;
    }
  }
  EXPECT_LT(worst, 1.0) << "at x = " << xs[worst_at] << ", y = " << ys[worst_at];
  EXPECT_EQ(km::pow(1.0, 1e300), 1.0);
  EXPECT_EQ(km::pow(1.5, 1e300), INFINITY);
  EXPECT_EQ(km::pow(1.5, -DBL_MAX), 0.0);
  EXPECT_EQ(km::pow(7.0, 0.0), 1.0);
  EXPECT_EQ(km::pow(2.0, 10.0), 1024.0);
  EXPECT_EQ(km::pow(2.0, -1074.0), DBL_TRUE_MIN);
  EXPECT_EQ(km::pow(2.0, 1024.0), INFINITY);
  EXPECT_EQ(km::pow(0.5, 1e10), 0.0);
  EXPECT_EQ(km::pow(DBL_MAX, -2.0), 0.0);
  std::printf("pow: max error %.3f ulp\n", worst);
}

TEST(KernelMath, AtanWithinOneUlp) {
  std::vector<double> x = uniform_arguments(71, 1000000, -4.0, 4.0);
  for (double v : uniform_arguments(73, 200000, -700.0, 700.0)) {
    x.push_back(std::exp(v));
    x.push_back(-std::exp(v));
  }
  for (double v : small_arguments()) x.push_back(v);
  // The boundaries of the five ranges and their neighbours.
  for (double b : {0.4375, 0.6875, 1.1875, 2.4375, 0x1p66, 0x1p-29}) {
    for (double v : {b, std::nextafter(b, 0.0), std::nextafter(b, INFINITY)}) {
      x.push_back(v);
      x.push_back(-v);
    }
  }
  for (double v : {0.0, -0.0, DBL_TRUE_MIN, 1e-300, 0.5, 1.0, 1.5, -1.0, 1e300, DBL_MAX, -DBL_MAX})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::atan(v); }, [](long double v) { return std::atan(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::atan(0.0), 0.0);
  EXPECT_EQ(km::atan(1e-300), 1e-300);
  EXPECT_EQ(km::atan(1.0), 0.7853981633974483);
  EXPECT_EQ(km::atan(INFINITY), 1.5707963267948966);
  EXPECT_EQ(km::atan(-INFINITY), -1.5707963267948966);
  std::printf("atan: max error %.3f ulp\n", worst);
}

TEST(KernelMath, AtanhWithinOneUlp) {
  std::vector<double> x;
  for (double u : unit_interval_arguments()) {  // (-1, 1), down to 2^-53 from either end
    x.push_back(u);
    x.push_back(-u);
    x.push_back(2.0 * u - 1.0);
  }
  for (double v : small_arguments()) x.push_back(v);
  for (double v : {0.5, std::nextafter(0.5, 0.0), std::nextafter(0.5, 1.0), -0.5, std::nextafter(1.0, 0.0),
                   0x1p-31, std::nextafter(0x1p-31, 0.0), 0x1p-30, std::nextafter(0x1p-30, 1.0),
                   std::nextafter(-1.0, 0.0), DBL_TRUE_MIN, 1e-300})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](double v) { return km::atanh(v); }, [](long double v) { return std::atanh(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::atanh(0.0), 0.0);
  EXPECT_EQ(km::atanh(1e-300), 1e-300);
  std::printf("atanh: max error %.3f ulp\n", worst);
}

TEST(KernelMath, LgammaWithinOneUlpAndAbsoluteNearItsZeros) {
  std::vector<double> x = uniform_arguments(79, 300000, 1.0, 3.0);
  for (double v : uniform_arguments(83, 300000, 3.0, 20.0)) x.push_back(v);
  for (double v : uniform_arguments(89, 200000, 0.0, 665.0)) x.push_back(std::exp(v));        // up to 1e289
  for (double v : uniform_arguments(97, 200000, 0.0, 2e7)) x.push_back(std::floor(v) + 1.0);  // k + 1
  for (int k = 1; k <= 1000; ++k) x.push_back(k);
  for (double v : {1.0, 2.0, 9.0, 1e7, 0x1p52, 1e290}) {
    x.push_back(v);
    x.push_back(std::nextafter(v, INFINITY));
    x.push_back(std::nextafter(v, 0.0));
  }
  double worst = 0.0, worst_at = 0.0, worst_absolute = 0.0, worst_absolute_at = 0.0;
  for (double v : x) {
    if (v < 1.0) continue;
    const long double reference = std::lgamma(static_cast<long double>(v));
    const double result = km::lgamma(v);
    if (v < 3.0) {  // the error beyond the result's own rounding
      const double absolute = static_cast<double>(std::fabs(result - reference)) -
                              0.5 * (std::nextafter(std::fabs(result), INFINITY) - std::fabs(result));
      if (absolute > worst_absolute) {
        worst_absolute = absolute;
        worst_absolute_at = v;
      }
    }
    if (v >= 3.0 || std::fabs(reference) >= 0.125L) {
      const double e = ulp_error(result, reference);
      if (e > worst) {
        worst = e;
        worst_at = v;
      }
    }
  }
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_LT(worst_absolute, 0x1p-57) << "at " << worst_absolute_at;
  EXPECT_EQ(km::lgamma(1.0), 0.0);
  EXPECT_EQ(km::lgamma(2.0), 0.0);
  EXPECT_EQ(km::lgamma(3.0), std::log(2.0));
  std::printf("lgamma: max error %.3f ulp (x >= 3 or |lgamma| >= 1/8), 2^%.1f absolute on [1, 3]\n", worst,
              std::log2(worst_absolute));
}

// Scalar code: a call through a volatile pointer is compiled once, as a function, and never vectorised.
double scalar_log(double x) { return km::log(x); }
double scalar_sin(double t) { return km::sin_cos_turns(t).sin; }
double scalar_cos(double t) { return km::sin_cos_turns(t).cos; }
double scalar_acos(double x) { return km::acos(x); }
double scalar_sqrt(double x) { return km::sqrt(x); }
// The arguments of the SIMD test below, from u in (0,1): each function over most of its range.
double exp_argument(double u) { return 1460.0 * u - 750.0; }
double exp10_argument(double u) { return 640.0 * u - 325.0; }
double expm1_argument(double u) { return 90.0 * u - 45.0; }
double log1p_argument(double u) { return u / (1.0 - u) - 1.0 + 0x1p-40; }
double pow_base(double u) { return 1e3 * u * u; }
double pow_exponent(double u) { return 300.0 * (0.5 - u); }
double scalar_exp(double u) { return km::exp(exp_argument(u)); }
double scalar_exp10(double u) { return km::exp10(exp10_argument(u)); }
double scalar_expm1(double u) { return km::expm1(expm1_argument(u)); }
double scalar_log1p(double u) { return km::log1p(log1p_argument(u)); }
double scalar_pow(double u) { return km::pow(pow_base(u), pow_exponent(u)); }
double atan_argument(double u) { return (u - 0.5) / (u * (1.0 - u)); }
double scalar_atan(double u) { return km::atan(atan_argument(u)); }
double scalar_atanh(double u) { return km::atanh(2.0 * u - 1.0); }
double lgamma_argument(double u) { return 1.0 + 30.0 * u / (1.0 - u); }
double scalar_lgamma(double u) { return km::lgamma(lgamma_argument(u)); }

TEST(KernelMath, SimdAndScalarCodeGiveTheSameBits) {
  const std::vector<double> u = unit_interval_arguments();
  const std::size_t n = u.size();
  std::vector<double> log_v(n), sin_v(n), cos_v(n), acos_v(n), sqrt_v(n);
  std::vector<double> exp_v(n), exp10_v(n), expm1_v(n), log1p_v(n), pow_v(n), atan_v(n), atanh_v(n),
      lgamma_v(n);
  const double* in = u.data();
  double* out_log = log_v.data();
  double* out_sin = sin_v.data();
  double* out_cos = cos_v.data();
  double* out_acos = acos_v.data();
  double* out_sqrt = sqrt_v.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) {
    out_log[i] = km::log(in[i]);
    const km::SinCos sc = km::sin_cos_turns(in[i]);
    out_sin[i] = sc.sin;
    out_cos[i] = sc.cos;
    out_acos[i] = km::acos(2.0 * in[i] - 1.0);
    out_sqrt[i] = km::sqrt(in[i]);
  }
  double* out_exp = exp_v.data();
  double* out_exp10 = exp10_v.data();
  double* out_expm1 = expm1_v.data();
  double* out_log1p = log1p_v.data();
  double* out_pow = pow_v.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) {
    out_exp[i] = km::exp(exp_argument(in[i]));
    out_exp10[i] = km::exp10(exp10_argument(in[i]));
    out_expm1[i] = km::expm1(expm1_argument(in[i]));
    out_log1p[i] = km::log1p(log1p_argument(in[i]));
    out_pow[i] = km::pow(pow_base(in[i]), pow_exponent(in[i]));
  }
  double* out_atan = atan_v.data();
  double* out_atanh = atanh_v.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) {
    out_atan[i] = km::atan(atan_argument(in[i]));
    out_atanh[i] = km::atanh(2.0 * in[i] - 1.0);
  }
  double* out_lgamma = lgamma_v.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) out_lgamma[i] = km::lgamma(lgamma_argument(in[i]));
  double (*volatile log_f)(double) = scalar_log;
  double (*volatile sin_f)(double) = scalar_sin;
  double (*volatile cos_f)(double) = scalar_cos;
  double (*volatile acos_f)(double) = scalar_acos;
  double (*volatile sqrt_f)(double) = scalar_sqrt;
  double (*volatile exp_f)(double) = scalar_exp;
  double (*volatile exp10_f)(double) = scalar_exp10;
  double (*volatile expm1_f)(double) = scalar_expm1;
  double (*volatile log1p_f)(double) = scalar_log1p;
  double (*volatile pow_f)(double) = scalar_pow;
  double (*volatile atan_f)(double) = scalar_atan;
  double (*volatile atanh_f)(double) = scalar_atanh;
  double (*volatile lgamma_f)(double) = scalar_lgamma;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(log_v[i], log_f(u[i])) << u[i];
    ASSERT_EQ(sin_v[i], sin_f(u[i])) << u[i];
    ASSERT_EQ(cos_v[i], cos_f(u[i])) << u[i];
    ASSERT_EQ(acos_v[i], acos_f(2.0 * u[i] - 1.0)) << u[i];
    ASSERT_EQ(sqrt_v[i], sqrt_f(u[i])) << u[i];
    ASSERT_EQ(exp_v[i], exp_f(u[i])) << u[i];
    ASSERT_EQ(exp10_v[i], exp10_f(u[i])) << u[i];
    ASSERT_EQ(expm1_v[i], expm1_f(u[i])) << u[i];
    ASSERT_EQ(log1p_v[i], log1p_f(u[i])) << u[i];
    ASSERT_EQ(pow_v[i], pow_f(u[i])) << u[i];
    ASSERT_EQ(atan_v[i], atan_f(u[i])) << u[i];
    ASSERT_EQ(atanh_v[i], atanh_f(u[i])) << u[i];
    ASSERT_EQ(lgamma_v[i], lgamma_f(u[i])) << u[i];
  }
}

// Every 24-bit float uniform the simulators draw, k 2^-24 for k = 1 .. 2^24 - 1, and 2^-25.
std::vector<float> float_uniforms() {
  std::vector<float> u{0x1p-25f};
  for (std::uint32_t k = 1; k < (1u << 24); ++k) u.push_back(static_cast<float>(k) * 0x1p-24f);
  return u;
}

// Tolerances: the double functions' 1 ulp plus the float kernels' own polynomial error; sin_cos_turnsf
// rounds the product of the remainder with pi/2 once (half an ulp) and pi/2 itself (up to half an ulp more).
TEST(KernelMathFloat, LogfAndLogfPolynomialWithinOneUlp) {
  std::vector<float> x = float_uniforms();
  std::mt19937 bits(11);
  for (int i = 0; i < 1000000; ++i) {  // the whole positive float range, subnormals included
    const std::uint32_t b = bits() & 0x7fffffffu;
    if (b == 0 || b >= 0x7f800000u) continue;
    float v;
    std::memcpy(&v, &b, sizeof v);
    x.push_back(v);
  }
  for (float v : {FLT_MIN, FLT_TRUE_MIN, FLT_MAX, 1.0f, 2.0f, std::nextafter(1.0f, 2.0f),
                  std::nextafter(1.0f, 0.0f), std::sqrt(0.5f), std::sqrt(2.0f)})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](float v) { return km::logf(v); }, [](long double v) { return std::log(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::logf(1.0f), 0.0f);
  std::printf("logf: max error %.3f float ulp\n", worst);
  std::vector<float> normal;  // logf_polynomial's domain
  for (float v : x)
    if (v >= FLT_MIN) normal.push_back(v);
  const auto [worst_p, worst_p_at] = worst_ulp_error(
      normal, [](float v) { return km::logf_polynomial(v); }, [](long double v) { return std::log(v); });
  EXPECT_LT(worst_p, 1.0) << "at " << worst_p_at;
  EXPECT_EQ(km::logf_polynomial(1.0f), 0.0f);
  std::printf("logf_polynomial: max error %.3f float ulp\n", worst_p);
}

TEST(KernelMathFloat, SinCosKernelsAndTurnsWithinTwoUlp) {
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> small(-0.78539816f, 0.78539816f);
  double worst_ks = 0.0, worst_kc = 0.0;
  for (int i = 0; i < 2000000; ++i) {
    const float v = i % 2 == 0 ? small(gen) : 0.06f * small(gen);  // the detector's angles are below 0.06
    worst_ks = std::max(worst_ks,
                        ulp_error<float>(km::detail::kernel_sinf(v), std::sin(static_cast<long double>(v))));
    worst_kc = std::max(worst_kc,
                        ulp_error<float>(km::detail::kernel_cosf(v), std::cos(static_cast<long double>(v))));
  }
  EXPECT_LT(worst_ks, 1.0);
  EXPECT_LT(worst_kc, 1.0);
  double worst_sin = 0.0, worst_cos = 0.0;
  std::vector<float> t = float_uniforms();
  for (float v : {0.0f, 0.125f, 0.25f, 0.5f, 0.75f, -0.3f, 1000.3f}) t.push_back(v);
  for (float v : t) {
    long double s = 0.0L, c = 0.0L;
    reference_sin_cos_turns(v, s, c);
    const km::SinCosF sc = km::sin_cos_turnsf(v);
    worst_sin = std::max(worst_sin, ulp_error<float>(sc.sin, s));
    worst_cos = std::max(worst_cos, ulp_error<float>(sc.cos, c));
  }
  EXPECT_LT(worst_sin, 2.0);
  EXPECT_LT(worst_cos, 2.0);
  EXPECT_EQ(km::sin_cos_turnsf(0.25f).sin, 1.0f);
  EXPECT_EQ(km::sin_cos_turnsf(0.25f).cos, 0.0f);
  EXPECT_EQ(km::sin_cos_turnsf(0.5f).cos, -1.0f);
  std::printf("kernel_sinf %.3f, kernel_cosf %.3f, sin_cos_turnsf %.3f (sin) %.3f (cos) float ulp\n",
              worst_ks, worst_kc, worst_sin, worst_cos);
}

TEST(KernelMathFloat, AcosfWithinOneUlp) {
  std::vector<float> x;
  for (float u : float_uniforms()) x.push_back(2.0f * u - 1.0f);
  for (float v :
       {-1.0f, 1.0f, 0.0f, 0.5f, -0.5f, 1e-20f, std::nextafter(0.5f, 0.0f), std::nextafter(0.5f, 1.0f),
        std::nextafter(-0.5f, 0.0f), std::nextafter(-0.5f, -1.0f), std::nextafter(1.0f, 0.0f)})
    x.push_back(v);
  const auto [worst, worst_at] = worst_ulp_error(
      x, [](float v) { return km::acosf(v); }, [](long double v) { return std::acos(v); });
  EXPECT_LT(worst, 1.0) << "at " << worst_at;
  EXPECT_EQ(km::acosf(1.0f), 0.0f);
  std::printf("acosf: max error %.3f float ulp\n", worst);
}

// fmaf rounds a b + c once: (1 + 2^-13)(1 - 2^-13) - 1 = -2^-26 exactly, where a separate product would
// round to 1 and give 0. Over random operands the result is the correctly rounded one (a b has 48 bits, so
// a b + c is exact in long double's 64 unless the two differ by more than 2^16 in size, and then rounding it
// twice matters only at a tie), in a SIMD loop and in a scalar call alike.
float scalar_fmaf(float a, float b, float c) { return km::fmaf(a, b, c); }

TEST(KernelMathFloat, FmafRoundsOnceAndAlikeInSimdAndScalarCode) {
  EXPECT_EQ(km::fmaf(1.0f + 0x1p-13f, 1.0f - 0x1p-13f, -1.0f), -0x1p-26f);
  std::mt19937 gen(17);
  std::uniform_real_distribution<float> operand(-2.0f, 2.0f);
  const std::size_t n = 1 << 20;
  std::vector<float> a(n), b(n), c(n), fused(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = operand(gen);
    b[i] = operand(gen);
    c[i] = operand(gen);
  }
  const float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  float* out = fused.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) out[i] = km::fmaf(pa[i], pb[i], pc[i]);
  float (*volatile scalar)(float, float, float) = scalar_fmaf;
  for (std::size_t i = 0; i < n; ++i) {
    const long double exact = static_cast<long double>(a[i]) * b[i] + c[i];
    ASSERT_EQ(fused[i], static_cast<float>(exact)) << a[i] << " " << b[i] << " " << c[i];
    ASSERT_EQ(fused[i], scalar(a[i], b[i], c[i]));
  }
}

float scalar_logf(float x) { return km::logf(x); }
float scalar_logf_polynomial(float x) { return km::logf_polynomial(x); }
float scalar_sinf(float t) { return km::sin_cos_turnsf(t).sin; }
float scalar_acosf(float x) { return km::acosf(x); }

TEST(KernelMathFloat, SimdAndScalarCodeGiveTheSameBits) {
  const std::vector<float> u = float_uniforms();
  const std::size_t n = u.size();
  std::vector<float> log_v(n), log_p(n), sin_v(n), acos_v(n);
  const float* in = u.data();
  float* out_log = log_v.data();
  float* out_log_p = log_p.data();
  float* out_sin = sin_v.data();
  float* out_acos = acos_v.data();
  NSBI_SIMD_LOOP
  for (std::size_t i = 0; i < n; ++i) {
    out_log[i] = km::logf(in[i]);
    out_log_p[i] = km::logf_polynomial(in[i]);
    out_sin[i] = km::sin_cos_turnsf(in[i]).sin;
    out_acos[i] = km::acosf(2.0f * in[i] - 1.0f);
  }
  float (*volatile log_f)(float) = scalar_logf;
  float (*volatile log_p_f)(float) = scalar_logf_polynomial;
  float (*volatile sin_f)(float) = scalar_sinf;
  float (*volatile acos_f)(float) = scalar_acosf;
  for (std::size_t i = 0; i < n; i += 7) {
    ASSERT_EQ(log_v[i], log_f(u[i])) << u[i];
    ASSERT_EQ(log_p[i], log_p_f(u[i])) << u[i];
    ASSERT_EQ(sin_v[i], sin_f(u[i])) << u[i];
    ASSERT_EQ(acos_v[i], acos_f(2.0f * u[i] - 1.0f)) << u[i];
  }
}

}  // namespace
