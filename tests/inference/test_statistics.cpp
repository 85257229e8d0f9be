// The statistical building blocks of docs/statistics.md against values that do not come from the code
// under test: closed forms, published table values, direct binomial sums, definitions checked by brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/inference/statistics.hpp"

namespace nsbi::inference {
namespace {

constexpr double pi = 3.14159265358979323846;
constexpr double sqrt_half = 0.70710678118654752440;

// The root of an increasing function on [lo, hi] by plain bisection down to adjacent doubles: slow, but it
// relies on nothing but the sign of f, so it is an independent reference for the solvers under test.
double bisect(const std::function<double(double)>& f, double lo, double hi) {
  for (int i = 0; i < 5000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (f(mid) < 0 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Φ⁻¹(p) from std::erf / std::erfc by bisection; erf is used near the centre where Φ(x) − 1/2 must keep its
// relative accuracy, erfc in the tails.
double reference_normal_quantile(double p) {
  if (p > 0.5) return -reference_normal_quantile(1.0 - p);
  if (p > 0.25) return bisect([p](double x) { return 0.5 * std::erf(sqrt_half * x) - (p - 0.5); }, -1.0, 0.0);
  return bisect([p](double x) { return std::log(0.5 * std::erfc(-sqrt_half * x)) - std::log(p); }, -40.0,
                0.0);
}

// Closed forms of the χ² upper tail for integer dof (with y = x/2): even dof 2m: e^{−y} Σ_{j<m} y^j/j!;
// odd dof 2m+1: erfc(√y) + e^{−y} Σ_{j=1..m} y^{j−1/2}/Γ(j+1/2).
double chi2_upper_tail(double x, int dof) {
  const double y = 0.5 * x;
  double sum = 0;
  if (dof % 2 == 0) {
    double term = 1;
    for (int j = 0; j < dof / 2; ++j) {
      sum += term;
      term *= y / (j + 1);
    }
    return std::exp(-y) * sum;
  }
  double term = 2.0 * std::sqrt(y / pi);  // y^{1/2}/Γ(3/2)
  for (int j = 1; j <= dof / 2; ++j) {
    sum += term;
    term *= y / (j + 0.5);
  }
  return std::erfc(std::sqrt(y)) + std::exp(-y) * sum;
}

// For even dof the lower tail is a Poisson upper tail, e^{−y} Σ_{j≥m} y^j/j!: a sum of positive terms that
// keeps the relative accuracy of small probabilities.
double chi2_lower_tail_even(double x, int dof) {
  const double y = 0.5 * x;
  double term = std::exp(-y);
  for (int j = 1; j <= dof / 2; ++j) term *= y / j;
  double sum = 0;
  for (int j = dof / 2; j < 100000 && term > 1e-30 * sum; ++j) {
    sum += term;
    term *= y / (j + 1);
  }
  return sum;
}

double log_binomial_coefficient(std::uint64_t n, std::uint64_t j) {
  return std::lgamma(n + 1.0) - std::lgamma(j + 1.0) - std::lgamma(static_cast<double>(n - j) + 1.0);
}
double binomial_pmf(std::uint64_t j, std::uint64_t n, double p) {
  return std::exp(log_binomial_coefficient(n, j) + static_cast<double>(j) * std::log(p) +
                  static_cast<double>(n - j) * std::log1p(-p));
}
// P(X ≥ k) and P(X ≤ k) for X ~ Binomial(n, p), summed term by term.
double binomial_at_least(std::uint64_t k, std::uint64_t n, double p) {
  double sum = 0;
  for (std::uint64_t j = k; j <= n; ++j) sum += binomial_pmf(j, n, p);
  return sum;
}
double binomial_at_most(std::uint64_t k, std::uint64_t n, double p) {
  double sum = 0;
  for (std::uint64_t j = 0; j <= k; ++j) sum += binomial_pmf(j, n, p);
  return sum;
}

// ---------------------------------------------------------------------------------------------------------
// Normal quantile

TEST(NormalQuantile, PublishedValues) {
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-12 * 1.96);
  EXPECT_NEAR(normal_quantile(0.025), -1.959963984540054, 1e-12 * 1.96);
  EXPECT_NEAR(normal_quantile(1e-10), -6.361340902404056, 1e-12 * 6.4);
  EXPECT_EQ(normal_quantile(0.5), 0.0);
}

TEST(NormalQuantile, InvertsErfcToTwelveDigitsFromTheCentreToTheFarTail) {
  std::vector<double> ps = {0.5 + 1e-12, 0.5 - 1e-9, 0.3, 0.26, 0.25, 0.24, 0.1, 0.02425, 0.0242, 1e-3};
  for (int e = 4; e <= 300; e += 7) ps.push_back(std::pow(10.0, -e));
  for (const double p : std::vector<double>(ps)) ps.push_back(1.0 - p);
  for (const double p : ps) {
    if (!(p > 0 && p < 1)) continue;
    const double expected = reference_normal_quantile(p);
    EXPECT_NEAR(normal_quantile(p), expected, 1e-12 * std::fabs(expected) + 1e-300) << "p = " << p;
  }
}

TEST(NormalQuantile, RejectsProbabilitiesOutsideTheOpenUnitInterval) {
  EXPECT_THROW(normal_quantile(0.0), InternalError);
  EXPECT_THROW(normal_quantile(1.0), InternalError);
  EXPECT_THROW(normal_quantile(-0.5), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// χ²

TEST(Chi2Cdf, MatchesTheClosedFormsForIntegerDof) {
  for (int dof = 1; dof <= 12; ++dof) {
    for (const double x : {1e-6, 0.01, 0.3, 0.999, 1.0, 2.0, 3.5, 5.0, 7.9, 12.0, 25.0, 60.0, 150.0}) {
      const double upper = chi2_upper_tail(x, dof);
      EXPECT_NEAR(chi2_cdf(x, dof), 1.0 - upper, 2e-15) << "dof " << dof << ", x " << x;
      if (dof % 2 == 0) {
        const double lower = chi2_lower_tail_even(x, dof);
        EXPECT_NEAR(chi2_cdf(x, dof), lower, 1e-13 * lower) << "dof " << dof << ", x " << x;
      }
    }
  }
}

TEST(Chi2Cdf, TwoDofIsOneMinusAnExponential) {
  for (const double x : {0.0, 1e-9, 0.5, 2.0, 6.0, 30.0})
    EXPECT_NEAR(chi2_cdf(x, 2), -std::expm1(-0.5 * x), 4e-15 * -std::expm1(-0.5 * x) + 1e-300) << x;
  EXPECT_EQ(chi2_cdf(0.0, 5), 0.0);
  EXPECT_EQ(chi2_cdf(HUGE_VAL, 5), 1.0);
}

TEST(Chi2Quantile, PublishedTableValues) {
  EXPECT_NEAR(chi2_quantile(0.95, 1), 3.841458820694124, 1e-10 * 3.84);
  EXPECT_NEAR(chi2_quantile(0.95, 2), 5.991464547107979, 1e-10 * 5.99);
  EXPECT_NEAR(chi2_quantile(0.95, 3), 7.814727903251178, 1e-10 * 7.81);
  EXPECT_NEAR(chi2_quantile(0.0, 4), 0.0, 0.0);
}

TEST(Chi2Quantile, OneDofIsTheSquaredNormalQuantile) {
  for (const double level : {1e-14, 1e-6, 0.1, 0.5, 0.6827, 0.9, 0.95, 0.99, 1 - 1e-9, 1 - 1e-14}) {
    // erf(√(x/2)) = level, solved by bisection on std::erf / std::erfc.
    const double u = level < 0.5 ? bisect([&](double v) { return std::erf(v) - level; }, 0.0, 10.0)
                                 : bisect([&](double v) { return (1.0 - level) - std::erfc(v); }, 0.0, 10.0);
    const double expected = 2.0 * u * u;
    EXPECT_NEAR(chi2_quantile(level, 1), expected, 1e-10 * expected) << "level " << level;
    // The form (Φ⁻¹((1 + level)/2))² only where rounding (1 + level)/2 costs no accuracy.
    if (level > 1e-3 && level < 0.999) {
      const double z = normal_quantile(0.5 * (1.0 + level));
      EXPECT_NEAR(chi2_quantile(level, 1), z * z, 1e-10 * expected) << "level " << level;
    }
  }
}

TEST(Chi2Quantile, TwoDofIsMinusTwiceTheLogOfTheTail) {
  for (const double level : {1e-14, 1e-6, 0.1, 0.5, 0.6827, 0.9, 0.95, 0.99, 1 - 1e-9, 1 - 1e-14}) {
    const double expected = -2.0 * std::log1p(-level);
    EXPECT_NEAR(chi2_quantile(level, 2), expected, 1e-10 * expected) << "level " << level;
  }
}

TEST(Chi2Quantile, InvertsTheCdfForManyDof) {
  for (const int dof : {1, 2, 3, 5, 10, 30, 100, 1000}) {
    for (const double level : {1e-8, 0.05, 0.5, 0.6827, 0.95, 0.999999}) {
      const double x = chi2_quantile(level, dof);
      // chi2_cdf itself is checked against closed forms above; here the quantile must return to the level.
      if (level < 0.5)
        EXPECT_NEAR(chi2_cdf(x, dof), level, 1e-12 * level) << "dof " << dof << ", level " << level;
      else
        EXPECT_NEAR(1.0 - chi2_cdf(x, dof), 1.0 - level, 1e-9 * (1.0 - level)) << "dof " << dof;
    }
  }
}

TEST(Chi2Quantile, RejectsBadArguments) {
  EXPECT_THROW(chi2_quantile(1.0, 1), InternalError);
  EXPECT_THROW(chi2_quantile(-0.1, 1), InternalError);
  EXPECT_THROW(chi2_quantile(0.5, 0), InternalError);
  EXPECT_THROW(chi2_cdf(-1.0, 1), InternalError);
  EXPECT_THROW(chi2_cdf(1.0, 0), InternalError);
}

TEST(WilksLevels, AreOneSigmaNinetyFiveAndTwoSigmaWithTheirThresholds) {
  const std::vector<double> levels = wilks_confidence_levels();
  ASSERT_EQ(levels.size(), 3u);
  EXPECT_NEAR(levels[0], 0.6826894921370859, 1e-15);
  EXPECT_EQ(levels[1], 0.95);
  EXPECT_NEAR(levels[2], 0.9544997361036416, 1e-15);
  // dof 1: the 1σ and 2σ thresholds are exactly 1 and 4.
  EXPECT_NEAR(chi2_quantile(levels[0], 1), 1.0, 1e-10);
  EXPECT_NEAR(chi2_quantile(levels[2], 1), 4.0, 4e-10);
  // dof 2: −2 ln(1 − level), 2.2957 and 6.1801.
  EXPECT_NEAR(chi2_quantile(levels[0], 2), 2.295748928898636, 1e-10 * 2.3);
  EXPECT_NEAR(chi2_quantile(levels[1], 2), 5.991464547107979, 1e-10 * 6.0);
  EXPECT_NEAR(chi2_quantile(levels[2], 2), 6.180074306244173, 1e-10 * 6.2);
}

// ---------------------------------------------------------------------------------------------------------
// Incomplete beta

TEST(IncompleteBeta, ClosedFormsWithAUnitParameter) {
  for (const double x : {0.0, 1e-8, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    for (const double s : {0.3, 1.0, 2.5, 17.0, 400.0}) {
      EXPECT_NEAR(incomplete_beta(x, 1.0, s), -std::expm1(s * std::log1p(-x)), 1e-14) << x << " " << s;
      // x^s is sensitive to the rounding of ln x in proportion to s |ln x|.
      const double power = std::pow(x, s);
      const double tolerance = x > 0 ? 4e-16 * (10.0 + s * std::fabs(std::log(x))) * power : 0.0;
      EXPECT_NEAR(incomplete_beta(x, s, 1.0), power, tolerance + 1e-300) << x << " " << s;
    }
  }
}

TEST(IncompleteBeta, SymmetricCasesAndTheArcsineLaw) {
  for (const double a : {0.2, 1.0, 3.5, 50.0, 2000.0})
    EXPECT_NEAR(incomplete_beta(0.5, a, a), 0.5, 1e-13) << a;
  for (const double x : {1e-6, 0.1, 0.5, 0.9, 0.999999})
    // Above 1/2 the reference is taken from 1 − x (exact there): asin is ill-conditioned near 1.
    EXPECT_NEAR(incomplete_beta(x, 0.5, 0.5),
                x < 0.5 ? 2.0 / pi * std::asin(std::sqrt(x)) : 1.0 - 2.0 / pi * std::asin(std::sqrt(1.0 - x)),
                1e-14)
        << x;
}

TEST(IncompleteBeta, IntegerParametersAreBinomialTails) {
  // I_x(a, b) = P(X ≥ a) for X ~ Binomial(a + b − 1, x).
  for (const int a : {1, 2, 5, 13, 40}) {
    for (const int b : {1, 3, 8, 25}) {
      for (const double x : {0.01, 0.2, 0.45, 0.6, 0.93}) {
        const auto n = static_cast<std::uint64_t>(a + b - 1);
        const double expected = binomial_at_least(static_cast<std::uint64_t>(a), n, x);
        EXPECT_NEAR(incomplete_beta(x, a, b), expected, 1e-13 + 1e-12 * expected)
            << a << " " << b << " " << x;
      }
    }
  }
}

TEST(IncompleteBeta, ReflectionAndScipyValues) {
  for (const double x : {0.05, 0.3, 0.62, 0.97})
    EXPECT_NEAR(incomplete_beta(x, 2.7, 9.1) + incomplete_beta(1.0 - x, 9.1, 2.7), 1.0, 1e-14) << x;
  // scipy.special.betainc, for non-integer parameters in both branches of the continued fraction.
  EXPECT_NEAR(incomplete_beta(0.45, 250.5, 300.25), 0.4108754082182641, 1e-12);
  EXPECT_NEAR(incomplete_beta(0.02, 0.3, 7.5), 0.603750262713655, 1e-13);
  EXPECT_NEAR(incomplete_beta(0.97, 12.5, 0.7), 0.5215126164383919, 1e-13);
}

TEST(BetaQuantile, ClosedFormsAndScipyValues) {
  for (const double p : {0.0, 1e-12, 0.025, 0.3, 0.5, 0.8, 0.975, 1 - 1e-12, 1.0}) {
    for (const double s : {0.4, 1.0, 3.0, 120.0}) {
      EXPECT_NEAR(beta_quantile(p, 1.0, s), -std::expm1(std::log1p(-p) / s), 1e-12) << p << " " << s;
      EXPECT_NEAR(beta_quantile(p, s, 1.0), std::pow(p, 1.0 / s), 1e-12) << p << " " << s;
    }
  }
  EXPECT_NEAR(beta_quantile(0.025, 250.5, 300.25), 0.41345614291861477, 1e-12);
  EXPECT_NEAR(beta_quantile(0.9, 0.3, 7.5), 0.11626338766498914, 1e-12);
  EXPECT_NEAR(beta_quantile(0.5, 7.0, 7.0), 0.5, 1e-12);
}

TEST(BetaQuantile, RejectsBadArguments) {
  EXPECT_THROW(beta_quantile(1.5, 1, 1), InternalError);
  EXPECT_THROW(beta_quantile(0.5, 0, 1), InternalError);
  EXPECT_THROW(incomplete_beta(-0.1, 1, 1), InternalError);
  EXPECT_THROW(incomplete_beta(0.5, 1, -2), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// Clopper–Pearson

TEST(ClopperPearson, ZeroAndAllSuccessesHaveClosedForms) {
  for (const std::uint64_t n : {1u, 10u, 137u, 5000u}) {
    const BinomialInterval none = clopper_pearson(0, n);
    EXPECT_EQ(none.lower, 0.0);
    EXPECT_NEAR(none.upper, 1.0 - std::pow(0.025, 1.0 / n), 1e-12) << n;
    const BinomialInterval all = clopper_pearson(n, n);
    EXPECT_NEAR(all.lower, std::pow(0.025, 1.0 / n), 1e-12) << n;
    EXPECT_EQ(all.upper, 1.0);
  }
}

TEST(ClopperPearson, BoundsPutTheHalfLevelInEachBinomialTail) {
  for (const double level : {0.95, 0.6827, 0.99}) {
    const double tail = 0.5 * (1.0 - level);
    for (const std::uint64_t n : {1u, 2u, 10u, 57u, 400u}) {
      for (std::uint64_t k = 0; k <= n; k += (n > 20 ? n / 9 : 1)) {
        const BinomialInterval interval = clopper_pearson(k, n, level);
        // The lower bound is where observing k or more becomes as unlikely as the tail, the upper bound where
        // observing k or fewer does; both found here by bisection on directly summed binomial probabilities.
        if (k > 0) {
          const double lower = bisect([&](double p) { return binomial_at_least(k, n, p) - tail; }, 0.0, 1.0);
          EXPECT_NEAR(interval.lower, lower, 1e-12) << "k " << k << ", n " << n << ", level " << level;
          EXPECT_NEAR(binomial_at_least(k, n, interval.lower), tail, 1e-10 * tail);
        }
        if (k < n) {
          const double upper = bisect([&](double p) { return tail - binomial_at_most(k, n, p); }, 0.0, 1.0);
          EXPECT_NEAR(interval.upper, upper, 1e-12) << "k " << k << ", n " << n << ", level " << level;
          EXPECT_NEAR(binomial_at_most(k, n, interval.upper), tail, 1e-10 * tail);
        }
        const double fraction = static_cast<double>(k) / static_cast<double>(n);
        EXPECT_LE(interval.lower, fraction);
        EXPECT_GE(interval.upper, fraction);
      }
    }
  }
}

TEST(ClopperPearson, RejectsImpossibleCountsAndLevels) {
  EXPECT_THROW(clopper_pearson(11, 10), InternalError);
  EXPECT_THROW(clopper_pearson(0, 0), InternalError);
  EXPECT_THROW(clopper_pearson(3, 10, 1.0), InternalError);
  EXPECT_THROW(clopper_pearson(3, 10, 0.0), InternalError);
}

TEST(BinomialStandardError, IsTheBinomialFormula) {
  EXPECT_EQ(binomial_standard_error(0, 50), 0.0);
  EXPECT_EQ(binomial_standard_error(50, 50), 0.0);
  EXPECT_NEAR(binomial_standard_error(25, 100), std::sqrt(0.25 * 0.75 / 100.0), 1e-16);
  EXPECT_NEAR(binomial_standard_error(1, 3), std::sqrt(2.0 / 27.0), 1e-16);
  EXPECT_THROW(binomial_standard_error(4, 3), InternalError);
  EXPECT_THROW(binomial_standard_error(0, 0), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// Empirical quantile

// Checks the definition: the result is one of the values, at least `needed` values are ≤ it, and fewer than
// `needed` are below it (so no smaller value of the set qualifies).
void expect_empirical_quantile(const std::vector<double>& values, double level, std::size_t needed) {
  std::vector<double> scratch = values;
  const double result = empirical_quantile(scratch, level);
  std::vector<double> sorted_input = values;
  std::sort(sorted_input.begin(), sorted_input.end());
  std::sort(scratch.begin(), scratch.end());
  EXPECT_EQ(scratch, sorted_input) << "the values were not merely reordered";
  EXPECT_NE(std::find(values.begin(), values.end(), result), values.end());
  const auto at_most = std::count_if(values.begin(), values.end(), [&](double v) { return v <= result; });
  const auto below = std::count_if(values.begin(), values.end(), [&](double v) { return v < result; });
  EXPECT_GE(static_cast<std::size_t>(at_most), std::max<std::size_t>(needed, 1))
      << "n " << values.size() << ", level " << level;
  EXPECT_LT(static_cast<std::size_t>(below), std::max<std::size_t>(needed, 1))
      << "n " << values.size() << ", level " << level;
}

TEST(EmpiricalQuantile, SatisfiesItsDefinitionOnRandomData) {
  std::mt19937_64 engine(20240611);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> small_integers(0, 9);  // many ties
  for (const std::size_t n : {1u, 2u, 7u, 100u, 1001u}) {
    std::vector<double> continuous(n);
    std::vector<double> tied(n);
    for (std::size_t i = 0; i < n; ++i) {
      continuous[i] = normal(engine);
      tied[i] = small_integers(engine);
    }
    for (const double level : {0.0, 0.013, 0.5, 0.6827, 0.9, 0.95, 0.999, 1.0}) {
      // The number of values that must lie at or below the quantile: ceil(level · n), computed in integers
      // where level · n is an integer so that rounding of the product cannot move it.
      const double product = level * static_cast<double>(n);
      const auto needed = static_cast<std::size_t>(std::ceil(product - 1e-9));
      expect_empirical_quantile(continuous, level, needed);
      expect_empirical_quantile(tied, level, needed);
    }
  }
}

TEST(EmpiricalQuantile, DecimalLevelsCountTheirIntendedNumberOfValues) {
  // 0.7 · 10 is 7.000000000000001 in doubles; the 0.7 quantile of 1..10 is still 7.
  std::vector<double> values = {10, 3, 8, 1, 6, 2, 9, 4, 7, 5};
  EXPECT_EQ(empirical_quantile(values, 0.7), 7.0);
  EXPECT_EQ(empirical_quantile(values, 0.71), 8.0);
  EXPECT_EQ(empirical_quantile(values, 0.0), 1.0);
  EXPECT_EQ(empirical_quantile(values, 1.0), 10.0);
  std::vector<double> hundred(100);
  std::iota(hundred.begin(), hundred.end(), 1.0);
  std::shuffle(hundred.begin(), hundred.end(), std::mt19937_64(3));
  EXPECT_EQ(empirical_quantile(hundred, 0.95), 95.0);
  EXPECT_EQ(empirical_quantile(hundred, 0.951), 96.0);
  std::vector<double> empty;
  EXPECT_THROW(empirical_quantile(empty, 0.5), InternalError);
  EXPECT_THROW(empirical_quantile(values, 1.5), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// Intervals below a threshold

std::vector<double> uniform_grid(double lo, double hi, std::size_t n) {
  std::vector<double> grid(n);
  for (std::size_t i = 0; i < n; ++i)
    grid[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
  return grid;
}

template <class F>
std::vector<double> evaluate(const std::vector<double>& grid, F f) {
  std::vector<double> values(grid.size());
  std::transform(grid.begin(), grid.end(), values.begin(), f);
  return values;
}

// How far the zero of the chord between two grid points h apart can lie from the zero of a smooth d: the
// chord departs from d by at most h²/8 · max|d''|, and d moves away from 0 at least at min|d'| nearby.
double crossing_error_bound(const std::function<double(double)>& slope,
                            const std::function<double(double)>& curvature, double root, double h) {
  double max_curvature = 0;
  double min_slope = HUGE_VAL;
  for (int i = -20; i <= 20; ++i) {
    const double theta = root + h * i / 20.0;
    max_curvature = std::max(max_curvature, std::fabs(curvature(theta)));
    min_slope = std::min(min_slope, std::fabs(slope(theta)));
  }
  return 1.05 * h * h / 8.0 * max_curvature / min_slope + 1e-14;
}

TEST(IntervalsBelow, ParabolaCrossesAtTheAnalyticPointsWithinTheInterpolationError) {
  const double a = 0.37;
  const double s = 1.6;
  for (const double level_c : {1.0, 3.84, 4.0}) {
    for (const std::size_t n : {41u, 301u, 4001u}) {
      const std::vector<double> grid = uniform_grid(-10.0, 10.0, n);
      const double h = grid[1] - grid[0];
      const auto q = evaluate(grid, [&](double t) { return (t - a) * (t - a) / (s * s); });
      const std::vector<double> c(n, level_c);
      const std::vector<Interval> pieces = intervals_below(grid, q, c);
      ASSERT_EQ(pieces.size(), 1u);
      const double half_width = s * std::sqrt(level_c);
      const double bound = crossing_error_bound([&](double t) { return 2.0 * (t - a) / (s * s); },
                                                [&](double) { return 2.0 / (s * s); }, a + half_width, h);
      // q is convex, so its chords lie above it and the interpolated set sits inside the true one.
      EXPECT_GE(pieces[0].lower, a - half_width - 1e-12);
      EXPECT_LE(pieces[0].lower, a - half_width + bound) << "n " << n;
      EXPECT_LE(pieces[0].upper, a + half_width + 1e-12);
      EXPECT_GE(pieces[0].upper, a + half_width - bound) << "n " << n;
      EXPECT_FALSE(pieces[0].lower_at_edge);
      EXPECT_FALSE(pieces[0].upper_at_edge);
    }
  }
}

TEST(IntervalsBelow, PiecewiseLinearProfilesAreExact) {
  // |θ − 1| with its kink on a grid point is reproduced exactly by linear interpolation.
  std::vector<double> grid = {-3.0, -2.5, -1.2, 0.0, 0.4, 1.0, 1.1, 2.9, 4.0};
  const auto q = evaluate(grid, [](double t) { return std::fabs(t - 1.0); });
  const std::vector<Interval> pieces = intervals_below(grid, q, std::vector<double>(grid.size(), 1.5));
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_NEAR(pieces[0].lower, -0.5, 1e-15);
  EXPECT_NEAR(pieces[0].upper, 2.5, 1e-15);
}

TEST(IntervalsBelow, DoubleWellGivesTwoDisjointIntervals) {
  const double w = 0.5;
  const double level_c = 0.32;
  const std::vector<double> grid = uniform_grid(-2.0, 2.0, 2001);
  const double h = grid[1] - grid[0];
  const auto q = evaluate(grid, [&](double t) { return (t * t - 1) * (t * t - 1) / w; });
  const std::vector<Interval> pieces = intervals_below(grid, q, std::vector<double>(grid.size(), level_c));
  ASSERT_EQ(pieces.size(), 2u);
  const double r = std::sqrt(level_c * w);  // (θ² − 1)² = c·w at θ² = 1 ± r
  const std::vector<double> roots = {-std::sqrt(1 + r), -std::sqrt(1 - r), std::sqrt(1 - r),
                                     std::sqrt(1 + r)};
  const std::vector<double> found = {pieces[0].lower, pieces[0].upper, pieces[1].lower, pieces[1].upper};
  const auto slope = [&](double t) { return 4 * t * (t * t - 1) / w; };
  const auto curvature = [&](double t) { return (12 * t * t - 4) / w; };
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(found[i], roots[i], crossing_error_bound(slope, curvature, roots[i], h)) << "crossing " << i;
  for (const Interval& piece : pieces) {
    EXPECT_FALSE(piece.lower_at_edge);
    EXPECT_FALSE(piece.upper_at_edge);
  }
}

TEST(IntervalsBelow, FlagsSetsThatReachTheGridEdges) {
  const std::vector<double> grid = uniform_grid(0.0, 4.0, 401);
  const double h = grid[1] - grid[0];
  // Minimum at θ = 0.5: the set [0.5 − 1, 0.5 + 1] is cut at the first grid point.
  const auto q = evaluate(grid, [](double t) { return (t - 0.5) * (t - 0.5); });
  std::vector<Interval> pieces = intervals_below(grid, q, std::vector<double>(grid.size(), 1.0));
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_TRUE(pieces[0].lower_at_edge);
  EXPECT_EQ(pieces[0].lower, 0.0);
  EXPECT_FALSE(pieces[0].upper_at_edge);
  EXPECT_NEAR(pieces[0].upper, 1.5, h * h / 8.0 * 2.0 / 1.9 + 1e-14);
  // A threshold above q everywhere: the whole grid, cut at both ends.
  pieces = intervals_below(grid, q, std::vector<double>(grid.size(), 100.0));
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_TRUE(pieces[0].lower_at_edge && pieces[0].upper_at_edge);
  EXPECT_EQ(pieces[0].lower, 0.0);
  EXPECT_EQ(pieces[0].upper, 4.0);
  // Below q everywhere: no set at all.
  EXPECT_TRUE(intervals_below(grid, q, std::vector<double>(grid.size(), -0.01)).empty());
  // Touching zero at one grid point only gives a one-point interval.
  const std::vector<double> line = {0.0, 1.0, 2.0};
  pieces = intervals_below(line, {1.0, 0.0, 1.0}, {0.0, 0.0, 0.0});
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].lower, 1.0);
  EXPECT_EQ(pieces[0].upper, 1.0);
  // A one-point grid.
  pieces = intervals_below({2.0}, {0.5}, {1.0});
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_TRUE(pieces[0].lower_at_edge && pieces[0].upper_at_edge);
  EXPECT_EQ(pieces[0].lower, 2.0);
  EXPECT_EQ(pieces[0].upper, 2.0);
}

TEST(IntervalsBelow, VaryingThresholds) {
  // Linear q and c: d is linear, so the crossing is exact on any grid: θ − (1 + θ/2) = 0 at θ = 2.
  const std::vector<double> grid = {-1.0, 0.3, 1.7, 2.6, 5.0};
  const auto q = evaluate(grid, [](double t) { return t; });
  const auto c = evaluate(grid, [](double t) { return 1.0 + 0.5 * t; });
  std::vector<Interval> pieces = intervals_below(grid, q, c);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_TRUE(pieces[0].lower_at_edge);
  EXPECT_NEAR(pieces[0].upper, 2.0, 1e-15);
  // A parabola against a rising belt c = 1 + θ: θ² − θ − 1 = 0 at (1 ± √5)/2.
  const std::vector<double> fine = uniform_grid(-3.0, 3.0, 1201);
  const double h = fine[1] - fine[0];
  pieces = intervals_below(fine, evaluate(fine, [](double t) { return t * t; }),
                           evaluate(fine, [](double t) { return 1.0 + t; }));
  ASSERT_EQ(pieces.size(), 1u);
  const auto slope = [](double t) { return 2 * t - 1; };
  const auto curvature = [](double) { return 2.0; };
  const double lower = 0.5 * (1 - std::sqrt(5.0));
  const double upper = 0.5 * (1 + std::sqrt(5.0));
  EXPECT_NEAR(pieces[0].lower, lower, crossing_error_bound(slope, curvature, lower, h));
  EXPECT_NEAR(pieces[0].upper, upper, crossing_error_bound(slope, curvature, upper, h));
}

TEST(IntervalsBelow, RejectsInconsistentInput) {
  EXPECT_THROW(intervals_below({0, 1, 2}, {0, 0}, {1, 1, 1}), InternalError);
  EXPECT_THROW(intervals_below({0, 1, 2}, {0, 0, 0}, {1, 1}), InternalError);
  EXPECT_THROW(intervals_below({0, 1, 1}, {0, 0, 0}, {1, 1, 1}), InternalError);
  EXPECT_THROW(intervals_below({0, 2, 1}, {0, 0, 0}, {1, 1, 1}), InternalError);
  EXPECT_THROW(intervals_below({}, {}, {}), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// Jaccard index

TEST(JaccardIndex, HandCases) {
  const std::vector<bool> a = {true, true, false, false};
  const std::vector<bool> b = {false, true, true, false};
  EXPECT_DOUBLE_EQ(jaccard_index(a, b), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(jaccard_index(a, b, {1, 2, 4, 8}), 2.0 / 7.0);
  EXPECT_DOUBLE_EQ(jaccard_index(a, b, {0.5, 0.25, 0.25, 100}), 0.25);
  EXPECT_EQ(jaccard_index(a, a, {1, 2, 4, 8}), 1.0);
  EXPECT_EQ(jaccard_index({true, false}, {false, true}), 0.0);
  EXPECT_EQ(jaccard_index({false, false}, {false, false}), 1.0);
  EXPECT_EQ(jaccard_index({}, {}), 1.0);
  EXPECT_THROW(jaccard_index(a, {true}), InternalError);
  EXPECT_THROW(jaccard_index(a, b, {1, 2}), InternalError);
  EXPECT_THROW(jaccard_index(a, b, {1, -2, 1, 1}), InternalError);
}

// ---------------------------------------------------------------------------------------------------------
// Posterior on a grid and highest-density sets

double sum_of(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}

TEST(GridPosterior, IsNormalisedAndFollowsExpOfMinusHalfT) {
  const std::vector<double> grid = uniform_grid(-5.0, 5.0, 1001);
  // A large offset in t: exp(−t/2) alone would underflow everywhere.
  const auto t = evaluate(grid, [](double x) { return 5000.0 + (x - 0.3) * (x - 0.3) / 0.49; });
  const std::vector<double> p = grid_posterior(t);
  EXPECT_NEAR(sum_of(p), 1.0, 1e-13);
  for (std::size_t k = 0; k < grid.size(); k += 37)
    EXPECT_NEAR(p[k] / p[500], std::exp(-0.5 * (t[k] - t[500])), 1e-10 * std::exp(-0.5 * (t[k] - t[500])));
}

TEST(GridPosterior, WeightsByPriorAndCellVolume) {
  std::mt19937_64 engine(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const std::size_t n = 200;
  std::vector<double> t(n), prior(n), log_prior(n), volume(n);
  for (std::size_t k = 0; k < n; ++k) {
    t[k] = 20.0 * uniform(engine);
    prior[k] = k % 17 == 0 ? 0.0 : uniform(engine);
    log_prior[k] = k % 17 == 0 ? -HUGE_VAL : std::log(prior[k]);
    volume[k] = 0.1 + uniform(engine);
  }
  const std::vector<double> p = grid_posterior(t, log_prior, volume);
  EXPECT_NEAR(sum_of(p), 1.0, 1e-13);
  std::vector<double> unnormalised(n);
  for (std::size_t k = 0; k < n; ++k) unnormalised[k] = prior[k] * volume[k] * std::exp(-0.5 * t[k]);
  const double total = sum_of(unnormalised);
  for (std::size_t k = 0; k < n; ++k) EXPECT_NEAR(p[k], unnormalised[k] / total, 1e-12 * p[k] + 1e-300) << k;
  // Only the prior: volumes all 1 must equal no volumes.
  const std::vector<double> with_unit_volumes = grid_posterior(t, log_prior, std::vector<double>(n, 1.0));
  const std::vector<double> prior_only = grid_posterior(t, log_prior);
  for (std::size_t k = 0; k < n; ++k) EXPECT_DOUBLE_EQ(with_unit_volumes[k], prior_only[k]);
  // A flat log prior, whatever its constant, gives the bits of no prior.
  const std::vector<double> flat = grid_posterior(t, std::vector<double>(n, -3.7), volume);
  const std::vector<double> none = grid_posterior(t, {}, volume);
  for (std::size_t k = 0; k < n; ++k) EXPECT_EQ(flat[k], none[k]) << k;
  // A prior and a likelihood whose product is far below exp(−745) everywhere still normalise.
  std::vector<double> far(n);
  for (std::size_t k = 0; k < n; ++k) far[k] = -2000.0 + static_cast<double>(k);
  const std::vector<double> shifted = grid_posterior(t, far, volume);
  EXPECT_NEAR(sum_of(shifted), 1.0, 1e-13);
  EXPECT_GT(shifted[n - 1], 0.0);
  EXPECT_THROW(grid_posterior(t, std::vector<double>(n, -HUGE_VAL)), InternalError);
  EXPECT_THROW(grid_posterior(t, {1.0, 2.0}), InternalError);
  EXPECT_THROW(grid_posterior({}), InternalError);
}

// Checks the highest-density property: the members carry at least `level`, no non-member is more probable
// than a member, and dropping the least probable member falls below the level.
void expect_highest_density(const std::vector<double>& p, const std::vector<bool>& set, double level) {
  double mass = 0;
  double least_member = HUGE_VAL;
  double most_outside = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (set[k]) {
      mass += p[k];
      least_member = std::min(least_member, p[k]);
    } else {
      most_outside = std::max(most_outside, p[k]);
    }
  }
  EXPECT_GE(mass, level);
  EXPECT_LE(most_outside, least_member);
  EXPECT_LT(mass - least_member, level);
}

TEST(HighestDensitySet, GaussianOneSigmaSetIsPlusMinusOneSigma) {
  const double h = 0.001;
  const std::vector<double> grid = uniform_grid(-8.0, 8.0, 16001);
  const std::vector<double> p = grid_posterior(evaluate(grid, [](double x) { return x * x; }));
  const double level = wilks_confidence_levels()[0];
  const std::vector<bool> set = highest_density_set(p, level);
  expect_highest_density(p, set, level);
  // One contiguous run of grid points from about −1 to about +1.
  const auto first = static_cast<std::size_t>(std::find(set.begin(), set.end(), true) - set.begin());
  const auto last = static_cast<std::size_t>(set.rend() - std::find(set.rbegin(), set.rend(), true)) - 1;
  ASSERT_LT(first, grid.size());
  for (std::size_t k = first; k <= last; ++k) ASSERT_TRUE(set[k]) << k;
  EXPECT_NEAR(grid[first], -1.0, 1.5 * h);
  EXPECT_NEAR(grid[last], 1.0, 1.5 * h);
}

TEST(HighestDensitySet, PriorCutsTheGaussianInHalf) {
  const double h = 0.001;
  const std::vector<double> grid = uniform_grid(-8.0, 8.0, 16001);
  const auto prior = evaluate(grid, [](double x) { return x >= 0 ? 0.0 : -HUGE_VAL; });
  const std::vector<double> p = grid_posterior(evaluate(grid, [](double x) { return x * x; }), prior);
  const std::vector<bool> set = highest_density_set(p, 0.95);
  expect_highest_density(p, set, 0.95);
  // Half-normal: the 95% HPD set is [0, Φ⁻¹(0.975)].
  const auto first = static_cast<std::size_t>(std::find(set.begin(), set.end(), true) - set.begin());
  const auto last = static_cast<std::size_t>(set.rend() - std::find(set.rbegin(), set.rend(), true)) - 1;
  EXPECT_NEAR(grid[first], 0.0, 0.5 * h);
  EXPECT_NEAR(grid[last], 1.959963984540054, 1.5 * h);
}

TEST(HighestDensitySet, DiscreteCases) {
  const std::vector<double> p = {0.125, 0.5, 0.25, 0.125};
  EXPECT_EQ(highest_density_set(p, 0.75), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(highest_density_set(p, 0.5), (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(highest_density_set(p, 0.0), (std::vector<bool>{false, false, false, false}));
  EXPECT_EQ(highest_density_set(p, 1.0), (std::vector<bool>{true, true, true, true}));
  const std::vector<bool> above = highest_density_set(p, 0.76);
  EXPECT_EQ(std::count(above.begin(), above.end(), true), 3);
  EXPECT_TRUE(above[1] && above[2]);
  // Points without mass are never needed, even where the masses fall short of the level by rounding.
  EXPECT_EQ(highest_density_set({0.0, 0.75, 0.25}, 1.0), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(highest_density_set({0.75, 0.25 - 1e-12, 0.0}, 1.0), (std::vector<bool>{true, true, false}));
  EXPECT_THROW(highest_density_set(p, 1.5), InternalError);
  EXPECT_THROW(highest_density_set({0.5, 0.4}, 0.5), InternalError);
  EXPECT_THROW(highest_density_set({0.5, 0.6, -0.1}, 0.5), InternalError);
}

}  // namespace
}  // namespace nsbi::inference
