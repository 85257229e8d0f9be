#pragma once
// Numerical helpers for statistical tests (tests only): special functions, exact distribution functions,
// goodness-of-fit tests (Kolmogorov–Smirnov, chi-square) and standard errors of sample moments.
// Nothing here may produce a NaN: the test main traps FE_INVALID.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace nsbi::test {

/// The outcome of a goodness-of-fit test.
struct TestResult {
  double statistic;
  double pvalue;
};

inline double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

namespace detail {

// Series for P(a, x), good for x < a + 1 (Numerical Recipes, gser).
inline double gamma_p_series(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < 100000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Continued fraction for Q(a, x), good for x >= a + 1 (modified Lentz, Numerical Recipes gcf).
inline double gamma_q_fraction(double a, double x) {
  constexpr double tiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / tiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace detail

/// Regularized lower incomplete gamma function P(a, x), a > 0, x >= 0.
inline double gamma_p(double a, double x) {
  if (x <= 0.0) return 0.0;
  return x < a + 1.0 ? detail::gamma_p_series(a, x) : 1.0 - detail::gamma_q_fraction(a, x);
}

/// Regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x), accurate in the upper tail.
inline double gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  return x < a + 1.0 ? 1.0 - detail::gamma_p_series(a, x) : detail::gamma_q_fraction(a, x);
}

/// Upper-tail probability of the chi-square distribution with `dof` degrees of freedom.
inline double chi2_pvalue(double chi2, double dof) { return gamma_q(0.5 * dof, 0.5 * chi2); }

inline double poisson_pmf(std::int64_t k, double mean) {
  if (k < 0) return 0.0;
  if (mean == 0.0) return k == 0 ? 1.0 : 0.0;
  return std::exp(static_cast<double>(k) * std::log(mean) - mean - std::lgamma(static_cast<double>(k) + 1.0));
}

namespace detail {
// Power series of I_nu(x) = sum_k (x/2)^(2k+nu) / (k! (k+nu)!): all terms positive, so accurate to rounding
// for every x where the result does not overflow (x < ~700).
inline double bessel_i_series(int nu, double x) {
  const double q = 0.25 * x * x;
  double term = std::pow(0.5 * x, nu) / std::tgamma(nu + 1.0);
  double sum = term;
  for (int k = 1; k < 100000; ++k) {
    term *= q / (static_cast<double>(k) * (k + nu));
    sum += term;
    if (term <= sum * 1e-17) break;
  }
  return sum;
}
}  // namespace detail

/// Modified Bessel functions of the first kind, orders 0 and 1.
inline double bessel_i0(double x) { return detail::bessel_i_series(0, std::fabs(x)); }
inline double bessel_i1(double x) {
  return x < 0.0 ? -detail::bessel_i_series(1, -x) : detail::bessel_i_series(1, x);
}

/// Survival function of the Kolmogorov distribution, P(K > lambda).
inline double kolmogorov_survival(double lambda) {
  if (lambda < 0.2) return 1.0;  // P(K <= 0.2) < 1e-12
  constexpr double pi = 3.141592653589793;
  if (lambda < 1.18) {
    // Jacobi theta form of the CDF, fast where the alternating series below converges slowly.
    double cdf = 0.0;
    for (int k = 1; k <= 20; ++k) {
      const double m = 2.0 * k - 1.0;
      cdf += std::exp(-m * m * pi * pi / (8.0 * lambda * lambda));
    }
    return 1.0 - std::sqrt(2.0 * pi) / lambda * cdf;
  }
  double survival = 0.0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    survival += (k % 2 == 1 ? 2.0 : -2.0) * term;
    if (term < 1e-300) break;
  }
  return std::min(1.0, std::max(0.0, survival));
}

/// One-sample Kolmogorov–Smirnov test of `samples` against the continuous CDF `cdf`; the p-value uses the
/// asymptotic distribution with Stephens' finite-n correction (accurate for n >= ~35).
template <class Cdf>
TestResult ks_statistic_pvalue(std::vector<double> samples, Cdf cdf) {
  std::sort(samples.begin(), samples.end());
  const double n = static_cast<double>(samples.size());
  double d = 0.0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const double f = cdf(samples[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  const double sqrt_n = std::sqrt(n);
  return {d, kolmogorov_survival((sqrt_n + 0.12 + 0.11 / sqrt_n) * d)};
}

/// Chi-square goodness-of-fit test of integer samples against the pmf of a distribution on 0, 1, 2, ...
/// Consecutive values are pooled into bins until each bin expects at least `min_expected` counts; the last
/// bin takes the whole upper tail. No parameters are fitted, so dof = bins - 1.
template <class Pmf>
TestResult chi2_discrete_gof(const std::vector<std::int64_t>& samples, Pmf pmf, double min_expected = 5.0) {
  std::map<std::int64_t, double> counts;
  for (std::int64_t s : samples) counts[s] += 1.0;
  const double n = static_cast<double>(samples.size());
  std::vector<std::pair<double, double>> bins;  // (observed, expected)
  double observed = 0.0;
  double expected = 0.0;
  double cumulative_expected = 0.0;
  double cumulative_observed = 0.0;
  for (std::int64_t k = 0;; ++k) {
    const auto it = counts.find(k);
    const double o = it == counts.end() ? 0.0 : it->second;
    const double e = n * pmf(k);
    observed += o;
    expected += e;
    cumulative_observed += o;
    cumulative_expected += e;
    const double tail_expected = std::max(0.0, n - cumulative_expected);
    if (tail_expected < min_expected) {
      bins.emplace_back(observed + (n - cumulative_observed), expected + tail_expected);
      break;
    }
    if (expected >= min_expected) {
      bins.emplace_back(observed, expected);
      observed = expected = 0.0;
    }
  }
  if (bins.size() > 1 && bins.back().second < min_expected) {
    const auto last = bins.back();
    bins.pop_back();
    bins.back().first += last.first;
    bins.back().second += last.second;
  }
  double chi2 = 0.0;
  for (const auto& [o, e] : bins) chi2 += (o - e) * (o - e) / e;
  const double dof = static_cast<double>(bins.size()) - 1.0;
  return {chi2, chi2_pvalue(chi2, dof)};
}

/// The CDF of a density given on [lo, hi] (not necessarily normalized), by composite Simpson integration on
/// `cells` equal cells plus one Simpson step inside the cell of the evaluation point.
class TabulatedCdf {
 public:
  TabulatedCdf(std::function<double(double)> density, double lo, double hi, int cells)
      : density_(std::move(density)),
        lo_(lo),
        hi_(hi),
        width_((hi - lo) / cells),
        cumulative_(cells + 1, 0.0) {
    for (int i = 0; i < cells; ++i) cumulative_[i + 1] = cumulative_[i] + simpson(node(i), node(i + 1));
    total_ = cumulative_.back();
  }

  double operator()(double x) const {
    if (x <= lo_) return 0.0;
    if (x >= hi_) return 1.0;
    const auto cells = static_cast<std::ptrdiff_t>(cumulative_.size()) - 1;
    const auto i = std::min(static_cast<std::ptrdiff_t>((x - lo_) / width_), cells - 1);
    return (cumulative_[i] + simpson(node(i), x)) / total_;
  }

 private:
  double node(std::ptrdiff_t i) const { return lo_ + static_cast<double>(i) * width_; }
  double simpson(double a, double b) const {
    return (b - a) / 6.0 * (density_(a) + 4.0 * density_(0.5 * (a + b)) + density_(b));
  }

  std::function<double(double)> density_;
  double lo_;
  double hi_;
  double width_;
  std::vector<double> cumulative_;
  double total_ = 0.0;
};

/// Sample mean and unbiased sample variance.
struct SampleMoments {
  double mean;
  double variance;
};

template <class T>
SampleMoments sample_moments(const std::vector<T>& samples) {
  const double n = static_cast<double>(samples.size());
  double mean = 0.0;
  for (const T& s : samples) mean += static_cast<double>(s);
  mean /= n;
  double sum_squares = 0.0;
  for (const T& s : samples) sum_squares += (static_cast<double>(s) - mean) * (static_cast<double>(s) - mean);
  return {mean, sum_squares / (n - 1.0)};
}

/// Standard error of the sample mean of n draws from a distribution with the given variance.
inline double mean_standard_error(double variance, std::size_t n) {
  return std::sqrt(variance / static_cast<double>(n));
}

/// Standard error of the sample variance of n draws: sqrt((mu4 - sigma^4) / n) to leading order in 1/n,
/// with mu4 the fourth central moment.
inline double variance_standard_error(double variance, double fourth_central_moment, std::size_t n) {
  return std::sqrt((fourth_central_moment - variance * variance) / static_cast<double>(n));
}

/// Pearson correlation coefficient of two equally long samples.
inline double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const SampleMoments mx = sample_moments(x);
  const SampleMoments my = sample_moments(y);
  double covariance = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) covariance += (x[i] - mx.mean) * (y[i] - my.mean);
  covariance /= static_cast<double>(x.size()) - 1.0;
  return covariance / std::sqrt(mx.variance * my.variance);
}

}  // namespace nsbi::test
