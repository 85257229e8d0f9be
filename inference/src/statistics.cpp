#include "nsbi/inference/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/normal.hpp"

namespace nsbi::inference {
namespace {

constexpr double epsilon = std::numeric_limits<double>::epsilon();
constexpr double tiny = 1e-300;  // keeps the modified Lentz recurrences away from division by zero
constexpr int max_fraction_terms = 1000000;

std::string text(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// Series of the regularised lower incomplete gamma P(a, x): it converges quickly for x < a + 1.
double lower_gamma_series(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < max_fraction_terms; ++n) {
    term *= x / (a + n);
    sum += term;
    if (term < sum * epsilon) return sum * std::exp(a * std::log(x) - x - std::lgamma(a));
  }
  NSBI_ASSERT(false,
              "the incomplete gamma series did not converge (a = " + text(a) + ", x = " + text(x) + ")");
}

// Legendre's continued fraction of the regularised upper incomplete gamma Q(a, x), evaluated by the
// modified Lentz method: it converges quickly for x ≥ a + 1, where the series above would not.
double upper_gamma_fraction(double a, double x) {
  double b = x + 1.0 - a;
  double c = 1.0 / tiny;
  double d = 1.0 / b;
  double fraction = d;
  for (int i = 1; i < max_fraction_terms; ++i) {
    const double coefficient = -i * (i - a);
    b += 2.0;
    d = coefficient * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + coefficient / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double factor = c * d;
    fraction *= factor;
    if (std::fabs(factor - 1.0) < epsilon) return fraction * std::exp(a * std::log(x) - x - std::lgamma(a));
  }
  NSBI_ASSERT(false,
              "the incomplete gamma fraction did not converge (a = " + text(a) + ", x = " + text(x) + ")");
}

// P(a, x) and Q(a, x) = 1 − P(a, x), each computed directly where it is the smaller one, so that a tail
// probability keeps its relative accuracy instead of being the difference of two numbers near 1.
double lower_gamma(double a, double x) {
  if (x <= 0) return 0;
  if (std::isinf(x)) return 1;
  return x < a + 1.0 ? lower_gamma_series(a, x) : 1.0 - upper_gamma_fraction(a, x);
}
double upper_gamma(double a, double x) {
  if (x <= 0) return 1;
  if (std::isinf(x)) return 0;
  return x < a + 1.0 ? 1.0 - lower_gamma_series(a, x) : upper_gamma_fraction(a, x);
}

// The χ² density at x > 0.
double chi2_density(double x, double a) {
  return 0.5 * std::exp((a - 1.0) * std::log(0.5 * x) - 0.5 * x - std::lgamma(a));
}

// lgamma(x) − [(x − ½) ln x − x + ½ ln 2π] for x ≥ 10, by its asymptotic series Σ c_k / x^(2k+1) (the
// first omitted term is below 1e-16 there).
double stirling_remainder(double x) {
  static constexpr double coefficients[] = {1.0 / 12,   -1.0 / 360,      1.0 / 1260, -1.0 / 1680,
                                            1.0 / 1188, -691.0 / 360360, 1.0 / 156};
  const double y = 1.0 / (x * x);
  double sum = 0;
  for (int k = 6; k >= 0; --k) sum = sum * y + coefficients[k];
  return sum / x;
}

// ln B(a, b) where at least one parameter is below 10 (log_beta_front writes the other case around the
// mode). lgamma(b) − lgamma(a + b) loses ~eps · b ln b to cancellation for large b; Stirling's form of the
// difference cancels the large terms analytically.
double log_beta(double a, double b) {
  if (a > b) std::swap(a, b);
  if (b < 10) return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
  return std::lgamma(a) + (b - 0.5) * std::log1p(-a / (a + b)) - a * std::log(a + b) + a +
         stirling_remainder(b) - stirling_remainder(a + b);
}

// ln[x^a (1 − x)^b / B(a, b)] for 0 < x < 1. With both parameters large each term is of order a + b while
// the sum is small near the mode x₀ = a/(a + b); written around the mode, with u = (a + b)(x − x₀) rounded
// once (fma), the large terms cancel analytically and the rounding of x₀ drops out to first order.
double log_beta_front(double x, double a, double b) {
  if (a < 10 || b < 10) return a * std::log(x) + b * std::log1p(-x) - log_beta(a, b);
  constexpr double two_pi = 6.28318530717958647693;
  const double u = std::fma(x, a + b, -a);
  return a * std::log1p(u / a) + b * std::log1p(-u / b) + 0.5 * std::log(a * b / ((a + b) * two_pi)) -
         stirling_remainder(a) - stirling_remainder(b) + stirling_remainder(a + b);
}

// The continued fraction of I_x(a, b) (DLMF 8.17.22) by modified Lentz; it converges quickly for
// x < (a + 1)/(a + b + 2), the caller uses the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) elsewhere.
double beta_fraction(double x, double a, double b) {
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double fraction = d;
  for (int m = 1; m < max_fraction_terms; ++m) {
    const double two_m = 2.0 * m;
    for (const double coefficient : {m * (b - m) * x / ((a + two_m - 1.0) * (a + two_m)),
                                     -(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1.0))}) {
      d = 1.0 + coefficient * d;
      if (std::fabs(d) < tiny) d = tiny;
      c = 1.0 + coefficient / c;
      if (std::fabs(c) < tiny) c = tiny;
      d = 1.0 / d;
      fraction *= c * d;
    }
    if (std::fabs(c * d - 1.0) < epsilon) return fraction;
  }
  NSBI_ASSERT(false, "the incomplete beta fraction did not converge (x = " + text(x) + ", a = " + text(a) +
                         ", b = " + text(b) + ")");
}

// I_x(a, b) for 0 < x < 1 without argument checks.
double regularised_beta(double x, double a, double b) {
  const double log_front = log_beta_front(x, a, b);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * beta_fraction(x, a, b) / a;
  return 1.0 - std::exp(log_front) * beta_fraction(1.0 - x, b, a) / b;
}

double beta_density(double x, double a, double b) {
  return std::exp(log_beta_front(x, a, b)) / (x * (1.0 - x));
}

// The root of an increasing function g on [lo, hi] with g(lo) ≤ 0 ≤ g(hi), to within tolerance(x). Newton
// steps converge fast near the root; a bisection replaces every step that would leave the bracket or that
// does not shrink by half, so the bracket always closes, even where the slope misleads.
template <class Value, class Slope, class Tolerance>
double increasing_root(const Value& g, const Slope& slope, double lo, double hi, double x,
                       const Tolerance& tolerance) {
  if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
  double last_step = hi - lo;
  double step_before_last = hi - lo;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    const double value = g(x);
    if (value == 0) return x;
    (value < 0 ? lo : hi) = x;
    const double tol = tolerance(x);
    if (hi - lo <= tol) return 0.5 * (lo + hi);
    double next = x - value / slope(x);
    if (next > lo && next < hi && std::fabs(next - x) <= 0.5 * step_before_last) {
      // A step below the tolerance would creep up on the root from one side; stepping the tolerance
      // past it lets the next evaluation close the bracket.
      if (std::fabs(next - x) < tol) next = x + (value < 0 ? tol : -tol);
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    } else {
      next = 0.5 * (lo + hi);
    }
    step_before_last = last_step;
    last_step = std::fabs(next - x);
    x = next;
  }
  return 0.5 * (lo + hi);
}

// The x in [0, 1] with I_x(a, b) = p, given p ≤ 1/2 (so that p is a tail probability known to full
// relative accuracy; the upper tail goes through the symmetry).
double beta_lower_quantile(double p, double a, double b) {
  if (p <= 0) return 0;
  const auto g = [&](double x) { return regularised_beta(x, a, b) - p; };
  const auto slope = [&](double x) { return beta_density(x, a, b); };
  const auto tolerance = [](double x) { return 1e-15 * x + tiny; };
  return increasing_root(g, slope, 0.0, 1.0, a / (a + b), tolerance);
}

void check_beta_parameters(double a, double b) {
  NSBI_ASSERT(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b),
              "beta parameters must be positive and finite, got a = " + text(a) + ", b = " + text(b));
}

}  // namespace

double chi2_cdf(double x, int dof) {
  NSBI_ASSERT(dof >= 1, "χ² needs at least one degree of freedom, got " + std::to_string(dof));
  NSBI_ASSERT(x >= 0, "χ² values are non-negative, got " + text(x));
  return lower_gamma(0.5 * dof, 0.5 * x);
}

double chi2_quantile(double level, int dof) {
  NSBI_ASSERT(dof >= 1, "χ² needs at least one degree of freedom, got " + std::to_string(dof));
  NSBI_ASSERT(level >= 0 && level < 1, "a χ² quantile needs a level in [0, 1), got " + text(level));
  if (level == 0) return 0;
  const double a = 0.5 * dof;
  // Above the median the equation is posed on the upper tail 1 − level (exact in floating point there), so
  // that levels close to 1 keep their relative accuracy.
  const bool upper = level > 0.5;
  const double tail = upper ? 1.0 - level : level;
  const auto g = [&](double x) {
    return upper ? tail - upper_gamma(a, 0.5 * x) : lower_gamma(a, 0.5 * x) - tail;
  };
  const auto slope = [&](double x) { return chi2_density(x, a); };
  // Wilson–Hilferty as the first guess; below its range, the small-x limit P(a, x/2) ≈ (x/2)^a / Γ(a + 1).
  const double h = 2.0 / (9.0 * dof);
  double guess = dof * std::pow(std::max(0.0, 1.0 - h + normal_quantile(level) * std::sqrt(h)), 3);
  if (!(guess > 0)) guess = 2.0 * std::exp((std::log(level) + std::lgamma(a + 1.0)) / a);
  double lo = 0;
  double hi = std::max(1.0, 2.0 * guess);
  while (g(hi) < 0) {
    lo = hi;
    hi *= 2;
  }
  return increasing_root(g, slope, lo, hi, guess, [](double x) { return 1e-15 * x + tiny; });
}

double normal_quantile(double p) {
  NSBI_ASSERT(p > 0 && p < 1, "the normal quantile needs p in (0, 1), got " + text(p));
  return normal::quantile(p);
}

std::vector<double> wilks_confidence_levels() {
  constexpr double sqrt_half = 0.70710678118654752440;
  return {std::erf(sqrt_half), 0.95, std::erf(2.0 * sqrt_half)};
}

double incomplete_beta(double x, double a, double b) {
  check_beta_parameters(a, b);
  NSBI_ASSERT(x >= 0 && x <= 1, "the incomplete beta function needs x in [0, 1], got " + text(x));
  if (x == 0) return 0;
  if (x == 1) return 1;
  return regularised_beta(x, a, b);
}

double beta_quantile(double p, double a, double b) {
  check_beta_parameters(a, b);
  NSBI_ASSERT(p >= 0 && p <= 1, "a beta quantile needs p in [0, 1], got " + text(p));
  return p <= 0.5 ? beta_lower_quantile(p, a, b) : 1.0 - beta_lower_quantile(1.0 - p, b, a);
}

BinomialInterval clopper_pearson(std::uint64_t k, std::uint64_t n, double level) {
  NSBI_ASSERT(n >= 1 && k <= n, "Clopper–Pearson needs 0 ≤ k ≤ n and n ≥ 1, got k = " + std::to_string(k) +
                                    ", n = " + std::to_string(n));
  NSBI_ASSERT(level > 0 && level < 1, "a confidence level must lie in (0, 1), got " + text(level));
  const double tail = 0.5 * (1.0 - level);
  const auto successes = static_cast<double>(k);
  const auto failures = static_cast<double>(n - k);
  BinomialInterval interval;
  // The upper bound Beta⁻¹(1 − tail; k + 1, n − k) is posed as 1 − Beta⁻¹(tail; n − k, k + 1), so the tail
  // probability enters as computed rather than as the rounded 1 − tail.
  interval.lower = k == 0 ? 0.0 : beta_lower_quantile(tail, successes, failures + 1.0);
  interval.upper = k == n ? 1.0 : 1.0 - beta_lower_quantile(tail, failures, successes + 1.0);
  return interval;
}

double binomial_standard_error(std::uint64_t k, std::uint64_t n) {
  NSBI_ASSERT(n >= 1 && k <= n, "a binomial fraction needs 0 ≤ k ≤ n and n ≥ 1, got k = " +
                                    std::to_string(k) + ", n = " + std::to_string(n));
  const double p = static_cast<double>(k) / static_cast<double>(n);
  return std::sqrt(p * (1.0 - p) / static_cast<double>(n));
}

double empirical_quantile(std::vector<double>& values, double level) {
  NSBI_ASSERT(!values.empty(), "the empirical quantile of no values");
  NSBI_ASSERT(level >= 0 && level <= 1, "an empirical quantile needs a level in [0, 1], got " + text(level));
  const auto n = static_cast<double>(values.size());
  // A product within rounding of an integer counts as that integer: 0.7 · 10 is 7.000000000000001 in
  // doubles, and the 0.7 quantile of ten values is the 7th smallest.
  const double needed = level * n;
  const double count = std::ceil(needed - 4.0 * epsilon * needed);
  const auto index = static_cast<std::size_t>(std::max(count, 1.0)) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

std::vector<Interval> intervals_below(const std::vector<double>& grid, const std::vector<double>& q,
                                      const std::vector<double>& c) {
  NSBI_ASSERT(!grid.empty(), "intervals on an empty grid");
  NSBI_ASSERT(q.size() == grid.size() && c.size() == grid.size(),
              "grid, q and c differ in size (" + std::to_string(grid.size()) + ", " +
                  std::to_string(q.size()) + ", " + std::to_string(c.size()) + ")");
  const std::size_t n = grid.size();
  std::vector<double> d(n);
  for (std::size_t i = 0; i < n; ++i) {
    NSBI_ASSERT(std::isfinite(grid[i]) && std::isfinite(q[i]) && std::isfinite(c[i]),
                "grid point " + std::to_string(i) + " has a non-finite θ, q or c");
    NSBI_ASSERT(i == 0 || grid[i] > grid[i - 1], "the grid is not increasing at point " + std::to_string(i) +
                                                     " (" + text(grid[i - 1]) + " then " + text(grid[i]) +
                                                     ")");
    d[i] = q[i] - c[i];
  }
  // Where d changes sign between two grid points, the zero of the line through them.
  const auto crossing = [&](std::size_t i) {
    return grid[i] + (grid[i + 1] - grid[i]) * (d[i] / (d[i] - d[i + 1]));
  };
  std::vector<Interval> pieces;
  std::size_t i = 0;
  while (i < n) {
    if (d[i] > 0) {
      ++i;
      continue;
    }
    std::size_t last = i;
    while (last + 1 < n && d[last + 1] <= 0) ++last;
    Interval piece;
    piece.lower_at_edge = i == 0;
    piece.lower = piece.lower_at_edge ? grid[0] : crossing(i - 1);
    piece.upper_at_edge = last == n - 1;
    piece.upper = piece.upper_at_edge ? grid[n - 1] : crossing(last);
    pieces.push_back(piece);
    i = last + 1;
  }
  return pieces;
}

double jaccard_index(const std::vector<bool>& a, const std::vector<bool>& b,
                     const std::vector<double>& cell_volume) {
  NSBI_ASSERT(a.size() == b.size(), "the two masks differ in size (" + std::to_string(a.size()) + ", " +
                                        std::to_string(b.size()) + ")");
  NSBI_ASSERT(cell_volume.empty() || cell_volume.size() == a.size(),
              "cell volumes for " + std::to_string(cell_volume.size()) + " points, masks over " +
                  std::to_string(a.size()));
  double both = 0;
  double either = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double volume = cell_volume.empty() ? 1.0 : cell_volume[i];
    NSBI_ASSERT(volume >= 0 && std::isfinite(volume),
                "cell volume " + std::to_string(i) + " is " + text(volume));
    if (a[i] && b[i]) both += volume;
    if (a[i] || b[i]) either += volume;
  }
  return either > 0 ? both / either : 1.0;
}

std::vector<double> grid_posterior(const std::vector<double>& t, const std::vector<double>& log_prior,
                                   const std::vector<double>& cell_volume) {
  NSBI_ASSERT(!t.empty(), "a posterior on an empty grid");
  NSBI_ASSERT(
      log_prior.empty() || log_prior.size() == t.size(),
      "a prior over " + std::to_string(log_prior.size()) + " points, t over " + std::to_string(t.size()));
  NSBI_ASSERT(cell_volume.empty() || cell_volume.size() == t.size(),
              "cell volumes for " + std::to_string(cell_volume.size()) + " points, t over " +
                  std::to_string(t.size()));
  double t_min = t[0];
  double log_prior_max = -HUGE_VAL;
  for (std::size_t k = 0; k < t.size(); ++k) {
    NSBI_ASSERT(std::isfinite(t[k]), "t is not finite at grid point " + std::to_string(k));
    t_min = std::min(t_min, t[k]);
    if (log_prior.empty()) continue;
    NSBI_ASSERT(log_prior[k] < HUGE_VAL,
                "the log prior at grid point " + std::to_string(k) + " is " + text(log_prior[k]));
    log_prior_max = std::max(log_prior_max, log_prior[k]);
  }
  NSBI_ASSERT(log_prior.empty() || log_prior_max > -HUGE_VAL, "the prior vanishes at every grid point");
  // The log weight of each point, less its maximum: a flat prior adds exactly 0, and neither the prior nor
  // exp(−t/2) underflows alone where their product does not.
  std::vector<double> exponent(t.size());
  double exponent_max = -HUGE_VAL;
  for (std::size_t k = 0; k < t.size(); ++k) {
    exponent[k] = -0.5 * (t[k] - t_min) + (log_prior.empty() ? 0.0 : log_prior[k] - log_prior_max);
    exponent_max = std::max(exponent_max, exponent[k]);
  }
  std::vector<double> probability(t.size());
  double total = 0;
  for (std::size_t k = 0; k < t.size(); ++k) {
    const double volume = cell_volume.empty() ? 1.0 : cell_volume[k];
    NSBI_ASSERT(volume >= 0 && std::isfinite(volume),
                "cell volume at grid point " + std::to_string(k) + " is " + text(volume));
    probability[k] = volume * std::exp(exponent[k] - exponent_max);
    total += probability[k];
  }
  NSBI_ASSERT(total > 0, "the posterior has no mass: prior · cell volume vanishes at every grid point");
  for (double& p : probability) p /= total;
  return probability;
}

std::vector<bool> highest_density_set(const std::vector<double>& probability, double level) {
  NSBI_ASSERT(level >= 0 && level <= 1, "a credibility level must lie in [0, 1], got " + text(level));
  double total = 0;
  for (std::size_t k = 0; k < probability.size(); ++k) {
    NSBI_ASSERT(probability[k] >= 0 && std::isfinite(probability[k]),
                "probability " + std::to_string(k) + " is " + text(probability[k]));
    total += probability[k];
  }
  NSBI_ASSERT(std::fabs(total - 1.0) <= 1e-9, "the probabilities sum to " + text(total) + ", not 1");
  std::vector<std::size_t> order(probability.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t i, std::size_t j) { return probability[i] > probability[j]; });
  std::vector<bool> member(probability.size(), false);
  // Neumaier-compensated sum: on large grids plain summation can err by more than the gap between level
  // and the mass one more point adds.
  double sum = 0;
  double compensation = 0;
  for (const std::size_t k : order) {
    // Points without mass never help reach the level; they only appear when rounding leaves it unreached.
    if (sum + compensation >= level || probability[k] == 0) break;
    member[k] = true;
    const double next = sum + probability[k];
    compensation +=
        std::fabs(sum) >= probability[k] ? (sum - next) + probability[k] : (probability[k] - next) + sum;
    sum = next;
  }
  return member;
}

}  // namespace nsbi::inference
