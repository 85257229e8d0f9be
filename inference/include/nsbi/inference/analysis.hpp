#pragma once
// Inference for one experiment (docs/statistics.md): the test statistic of the observed data on a θ grid, the
// best fit, the Wilks regions and intervals of the parameters of interest (the others profiled), and the
// posterior on the grid (weighted by a prior) with samples from it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nsbi/core/json.hpp"
#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/scan.hpp"

namespace nsbi::inference {

struct AnalysisSettings {
  RefineOptions refine;               // refinement of the best fit off the grid
  std::vector<bool> profiled;         // per parameter: a nuisance parameter, minimised over
  std::size_t posterior_samples = 0;  // draws from the grid posterior
  std::uint64_t seed = 0;             // of the posterior samples' streams (rng::Purpose::posterior)
  std::vector<double> log_prior;      // log π at every grid point (Prior::log_density_on); empty: flat
};

/// What the analysis of one estimator gives; `summary` is its entry of infer.json (docs/formats.md).
struct Analysis {
  Minimum best;
  std::vector<double> t;                   // on the grid
  std::vector<double> q;                   // t − best.t
  int dof = 0;                             // the continuous parameters of interest
  Profile poi;                             // q profiled onto the grid of the parameters of interest
  std::vector<std::vector<bool>> regions;  // per Wilks level, over poi.grid
  // Per continuous parameter of interest: its profile and [L, 2] interval bounds (NaN where empty).
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> one_d;
  std::vector<double> posterior;
  std::vector<std::vector<bool>> hpd;  // per level, over the grid
  std::vector<double> samples;         // [posterior_samples, P]
  json::Object summary;
};

/// Analyses the observed events x [N, D] with `estimator` on `grid` at the Wilks levels
/// (wilks_confidence_levels). Local work only; Interrupted when a stop was requested (checked between steps).
Analysis analyse_observed(RatioEstimator& estimator, const ConstMatrix& x, const Grid& grid,
                          const AnalysisSettings& settings);

/// Learned against exact: the difference of the best fits and the overlap (Jaccard index) of the 68% and 95%
/// regions, for infer.json's `comparison`.
json::Object compare_analyses(const Analysis& a, const Analysis& b, const Grid& grid);

}  // namespace nsbi::inference
