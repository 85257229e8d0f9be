#pragma once
// The Neyman construction from pseudo-experiments (docs/statistics.md): belts c_α(θ) on a grid, the
// confidence set of observed data, and the coverage of Wilks and Neyman intervals at true values θ*.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/core/json.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/statistics.hpp"

namespace nsbi::inference {

/// The Wilks threshold of q at `level`: the χ² quantile of `dof` degrees of freedom (0 for dof 0).
double wilks_threshold(double level, int dof);

/// The belts of one estimator on K points at L levels, row-major [K, L]: c_α(θ_k) = the empirical `levels[l]`
/// quantile of the toys' q at θ_k, and the fraction of those q ≤ the Wilks threshold (the level when Wilks
/// holds).
struct Belts {
  std::vector<double> thresholds;
  std::vector<double> wilks_fraction;
};

/// The belts from q_toys[k] (the toys' q at belt point k of `grid`), with their summary (docs/formats.md,
/// calibrate.json: levels, wilks_thresholds, belts) in `summary`.
Belts neyman_belts(const Grid& grid, const std::vector<std::vector<double>>& q_toys,
                   const std::vector<double>& levels, int dof, json::Object& summary);

/// The confidence sets {θ_k : observed_q[k] ≤ thresholds[k, l]} of observed data per level, as calibrate.json
/// lists them (grid points inside and, for a 1-D belt grid, the pieces of the interval).
std::vector<json::Object> confidence_sets(const Grid& grid, const std::vector<double>& levels,
                                          const std::vector<double>& thresholds,
                                          const std::vector<double>& observed_q);

/// Belts as calibrate recorded them: the belt grid, its levels and thresholds [K, L], events per toy.
struct BeltTable {
  Grid grid;
  std::vector<double> levels;
  std::vector<double> thresholds;
  std::int64_t n_events = 0;
};

/// c_α at θ for `level` (one of belts.levels), interpolated on the belt grid.
double neyman_threshold(const BeltTable& belts, double level, const double* theta);

/// How often q ≤ threshold among the toys at one true point, with its 95% Clopper–Pearson interval and
/// whether `level` lies in it.
struct CoverageCount {
  std::uint64_t covered = 0;
  BinomialInterval interval;
  bool consistent = false;
};
CoverageCount coverage_count(const std::vector<double>& q_toys, double threshold, double level);

}  // namespace nsbi::inference
