#pragma once
// The test statistic of one experiment on a θ grid (docs/statistics.md, "Inference for one experiment"):
// t(D|θ) = −2 Σ_i log r(x_i|θ, θ_ref), its minimum with local refinement off the grid, the profile
// q(θ) = t(D|θ) − min t, and the same for many experiments (toys) at once.

#include <cstddef>
#include <vector>

#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"

namespace nsbi::inference {

struct RefineOptions {
  bool enabled = true;
  int iterations = 3;  // quadratic steps on a 3^c stencil (c continuous axes), the stencil halving each time
};

struct Minimum {
  std::vector<double> theta;   // the best fit θ̂
  double t = 0;                // t(D|θ̂) ≤ the grid's minimum
  std::size_t grid_index = 0;  // the grid point with the smallest t
};

/// t at every grid point for `n_experiments` experiments of `n_events` events each, stored one after the
/// other in x [n_experiments · n_events, D]: t[e · grid.size() + k]. `extra` [E, P] points are evaluated too
/// (t_extra[e · E + j]), e.g. each toy's true θ. Batches all events of all experiments against all points in
/// one call of the estimator per block of experiments.
/// t(D|θ_k) = −2 Σ_i log r(x_i|θ_k, θ_ref) of the events x [N, D] at each row of theta [K, P], in one
/// estimator call; each point's sum runs over the events in order.
std::vector<double> t_at_points(RatioEstimator& estimator, const ConstMatrix& x, const ConstMatrix& theta);

struct ScanValues {
  std::vector<double> t;
  std::vector<double> t_extra;
};
ScanValues scan_experiments(RatioEstimator& estimator, const ConstMatrix& x, std::size_t n_experiments,
                            std::size_t n_events, const Grid& grid, const ConstMatrix& extra = {});

/// The minimum of t for experiment e of x (as in scan_experiments) given its grid values t_grid (size
/// grid.size()): the grid's smallest point, then quadratic refinement along the continuous axes (Newton
/// steps on a quadratic fitted to a 3^c stencil around the current best point, each step kept within the
/// stencil and the axis ranges and taken only if t decreases). Evaluations are extra estimator calls on this
/// experiment's events alone.
Minimum minimise(RatioEstimator& estimator, const ConstMatrix& x_experiment, const Grid& grid,
                 const std::vector<double>& t_grid, const RefineOptions& options);

}  // namespace nsbi::inference

namespace nsbi::inference {

/// Values on `grid` minimised over the axes flagged in `profiled` (nuisance parameters): the returned grid
/// keeps the other axes (in order), and value j is the minimum over the grid points that project onto its
/// point j. With no axis profiled, the same grid and values.
struct Profile {
  Grid grid;
  std::vector<double> values;
};
Profile profile_out(const Grid& grid, const std::vector<double>& values, const std::vector<bool>& profiled);

}  // namespace nsbi::inference
