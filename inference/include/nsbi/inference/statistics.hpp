#pragma once
// The statistical building blocks of docs/statistics.md that know nothing about models or simulators:
// χ² levels (Wilks), Clopper–Pearson intervals for coverage and p-values, empirical quantiles (Neyman
// belts), interval extraction from a profile on a grid (Wilks or Neyman thresholds), region overlap, and
// highest-density sets of a posterior on a grid. Pure functions of their arguments, double precision.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nsbi::inference {

/// P(χ²_dof ≤ x): the regularised lower incomplete gamma P(dof/2, x/2). dof ≥ 1, x ≥ 0.
double chi2_cdf(double x, int dof);
/// The x with chi2_cdf(x, dof) = level, level in [0, 1): accurate to 1e-10 relative. chi2_quantile(0.6827,
/// 2) = 2.2958..., and for the Gaussian levels the closed forms hold: dof 1: (Φ⁻¹((1+level)/2))², dof 2:
/// −2 ln(1 − level).
double chi2_quantile(double level, int dof);
/// Φ⁻¹(p) for p in (0, 1), the standard normal quantile, accurate to 1e-12 relative.
double normal_quantile(double p);

/// The confidence levels nsbi reports Wilks thresholds for, in this order: 1σ (0.682689...), 0.95, 2σ
/// (0.954499...). With dof 1 the thresholds are 1, 3.84, 4; with dof 2, 2.30, 5.99, 6.18.
std::vector<double> wilks_confidence_levels();

/// The regularised incomplete beta function I_x(a, b), a, b > 0, x in [0, 1].
double incomplete_beta(double x, double a, double b);
/// The x with incomplete_beta(x, a, b) = p, p in [0, 1]; accurate to 1e-12 absolute.
double beta_quantile(double p, double a, double b);

struct BinomialInterval {
  double lower = 0;
  double upper = 1;
};
/// The central Clopper–Pearson interval for k successes in n trials at confidence `level`
/// (lower = Beta⁻¹((1−level)/2; k, n−k+1), 0 when k = 0; upper = Beta⁻¹((1+level)/2; k+1, n−k), 1 when
/// k = n). n ≥ 1, k ≤ n.
BinomialInterval clopper_pearson(std::uint64_t k, std::uint64_t n, double level = 0.95);
/// √(p(1−p)/n) with p = k/n: the binomial standard error of a fraction (0 when k = 0 or k = n).
double binomial_standard_error(std::uint64_t k, std::uint64_t n);

/// The empirical `level` quantile of `values` (level in [0, 1]): the smallest value v such that at least
/// ceil(level · n) of the n values are ≤ v (the inverse of the empirical cdf, no interpolation). This is
/// the c_α of a Neyman belt: the fraction of toys with q ≤ c_α is ≥ level. `values` is not empty and
/// finite; it is reordered.
double empirical_quantile(std::vector<double>& values, double level);

/// One connected piece of {θ : q(θ) ≤ c(θ)} on a 1-D grid.
struct Interval {
  double lower = 0;
  double upper = 0;
  bool lower_at_edge = false;  // the set reaches the first grid point: the true bound may lie beyond it
  bool upper_at_edge = false;  // likewise at the last grid point
};
/// The set {θ : q(θ) ≤ c(θ)} from values on an increasing grid, where d = q − c is interpolated linearly
/// between grid points (so crossings are where the interpolated d is 0). Returns its connected pieces in
/// increasing order; empty when d > 0 everywhere. grid, q and c have the same size ≥ 1; grid increasing.
std::vector<Interval> intervals_below(const std::vector<double>& grid, const std::vector<double>& q,
                                      const std::vector<double>& c);

/// |A ∩ B| / |A ∪ B| of two sets given as masks over the same grid points, weighted by `cell_volume`
/// (empty: every point weighs 1). 1 when both sets are empty.
double jaccard_index(const std::vector<bool>& a, const std::vector<bool>& b,
                     const std::vector<double>& cell_volume = {});

/// A posterior on grid points: p_k ∝ exp(log_prior_k) · cell_volume_k · exp(−(t_k − min t)/2), normalised to
/// sum 1, computed from the log weights less their maximum (no underflow of either factor alone). log_prior
/// may be −inf (outside the prior's support) but not everywhere; empty: flat, the same bits as all zeros.
/// cell_volume non-negative (empty: all 1); t finite. InputError-free: callers check inputs.
std::vector<double> grid_posterior(const std::vector<double>& t, const std::vector<double>& log_prior = {},
                                   const std::vector<double>& cell_volume = {});

/// The highest-posterior-density set of credibility `level`: the fewest grid points, taken in order of
/// decreasing probability, whose probabilities sum to at least `level`. `probability` sums to 1.
std::vector<bool> highest_density_set(const std::vector<double>& probability, double level);

}  // namespace nsbi::inference
