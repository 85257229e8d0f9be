#include "nsbi/inference/analysis.hpp"

#include <algorithm>
#include <cmath>

#include "nsbi/core/error.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/inference/sbc.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/summary.hpp"

namespace nsbi::inference {
namespace {

// The analysis runs inside agree without collectives: a rank that got a signal stops there, the others learn
// of it at the agree.
void stop_if_requested() {
  if (stop_requested())
    throw Interrupted("infer: stopped by a signal; nothing was written: run the same command to start again");
}

// Joint regions of the parameters of interest at the Wilks thresholds of r.dof degrees of freedom.
void wilks_regions(Analysis& r, const std::vector<double>& levels) {
  std::vector<double> poi_volume(r.poi.grid.size());
  for (std::size_t k = 0; k < poi_volume.size(); ++k) poi_volume[k] = r.poi.grid.cell_volume(k);
  std::vector<json::Object> regions;
  for (const double level : levels) {
    const double threshold = r.dof > 0 ? chi2_quantile(level, r.dof) : 0.0;
    std::vector<bool> mask(r.poi.values.size());
    double area = 0;
    std::int64_t points = 0;
    for (std::size_t k = 0; k < mask.size(); ++k) {
      mask[k] = r.poi.values[k] <= threshold;
      area += mask[k] ? poi_volume[k] : 0.0;
      points += mask[k] ? 1 : 0;
    }
    json::Object region;
    region.set("level", level)
        .set("dof", static_cast<std::int64_t>(r.dof))
        .set("threshold", threshold)
        .set("grid_points", points)
        .set("volume", area);
    regions.push_back(region);
    r.regions.push_back(mask);
  }
  r.summary.set("regions", regions);
}

// 1-D intervals of each continuous parameter of interest, the others profiled (dof 1).
void profile_intervals(Analysis& r, const std::vector<double>& levels) {
  json::Object intervals;
  for (std::size_t a = 0; a < r.poi.grid.n_parameters(); ++a) {
    const auto& axis = r.poi.grid.axes()[a];
    if (!axis.continuous()) continue;
    std::vector<bool> others(r.poi.grid.n_parameters(), true);
    others[a] = false;
    const Profile line = profile_out(r.poi.grid, r.poi.values, others);
    std::vector<json::Object> per_level;
    std::vector<double> bounds;
    for (const double level : levels) {
      const double threshold = chi2_quantile(level, 1);
      const auto pieces =
          intervals_below(axis.values, line.values, std::vector<double>(axis.values.size(), threshold));
      json::Object entry;
      entry.set("level", level).set("threshold", threshold).set("pieces", pieces_json(pieces));
      per_level.push_back(entry);
      bounds.push_back(pieces.empty() ? std::nan("") : pieces.front().lower);
      bounds.push_back(pieces.empty() ? std::nan("") : pieces.back().upper);
    }
    json::Object entry;
    entry.set("levels", per_level);
    intervals.set(axis.name, entry);
    r.one_d[axis.name] = {line.values, bounds};
  }
  r.summary.set("intervals", intervals);
}

// The posterior on the grid (the prior's log density at the grid points, settings.log_prior), its moments,
// highest-density regions and samples.
void posterior(Analysis& r, const Grid& grid, const AnalysisSettings& settings,
               const std::vector<double>& levels) {
  std::vector<double> volume(grid.size());
  for (std::size_t k = 0; k < volume.size(); ++k) volume[k] = grid.cell_volume(k);
  r.posterior = grid_posterior(r.t, settings.log_prior, volume);
  r.samples =
      grid_posterior_draws(r.posterior, grid, settings.posterior_samples, settings.seed, stop_if_requested);
  const std::size_t n_parameters = grid.n_parameters();
  std::vector<double> mean(n_parameters, 0.0);
  std::vector<double> second(n_parameters, 0.0);
  for (std::size_t k = 0; k < r.posterior.size(); ++k) {
    const auto index = grid.unravel(k);
    for (std::size_t p = 0; p < n_parameters; ++p) {
      const double v = grid.axes()[p].values[index[p]];
      mean[p] += r.posterior[k] * v;
      second[p] += r.posterior[k] * v * v;
    }
  }
  json::Object summary;
  for (std::size_t p = 0; p < n_parameters; ++p) {
    json::Object moments;
    moments.set("mean", mean[p]).set("std", std::sqrt(std::max(0.0, second[p] - mean[p] * mean[p])));
    summary.set(grid.axes()[p].name, moments);
  }
  std::vector<json::Object> credible;
  for (const double level : levels) {
    r.hpd.push_back(highest_density_set(r.posterior, level));
    double region_volume = 0;
    for (std::size_t k = 0; k < r.posterior.size(); ++k) region_volume += r.hpd.back()[k] ? volume[k] : 0.0;
    json::Object entry;
    entry.set("level", level).set("volume", region_volume);
    credible.push_back(entry);
  }
  summary.set("highest_density_regions", credible)
      .set("samples", static_cast<std::int64_t>(settings.posterior_samples));
  r.summary.set("posterior", summary);
}

}  // namespace

Analysis analyse_observed(RatioEstimator& estimator, const ConstMatrix& x, const Grid& grid,
                          const AnalysisSettings& settings) {
  Analysis r;
  const std::size_t n_events = x.extent(0);
  stop_if_requested();
  r.t = scan_experiments(estimator, x, 1, n_events, grid).t;
  r.best = minimise(estimator, x, grid, r.t, settings.refine);
  r.q.resize(r.t.size());
  for (std::size_t k = 0; k < r.q.size(); ++k) r.q[k] = r.t[k] - r.best.t;
  r.poi = profile_out(grid, r.q, settings.profiled);
  // Degrees of freedom: the parameters of interest that vary continuously.
  for (const auto& axis : r.poi.grid.axes()) r.dof += axis.continuous() ? 1 : 0;
  const std::vector<double> levels = wilks_confidence_levels();

  json::Object best_fit;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p) best_fit.set(grid.axes()[p].name, r.best.theta[p]);
  r.summary.set("best_fit", best_fit)
      .set("t_min", r.best.t)
      .set("n_events", static_cast<std::int64_t>(n_events));
  wilks_regions(r, levels);
  profile_intervals(r, levels);
  posterior(r, grid, settings, levels);
  return r;
}

json::Object compare_analyses(const Analysis& a, const Analysis& b, const Grid& grid) {
  json::Object comparison;
  json::Object shift;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p)
    shift.set(grid.axes()[p].name, std::abs(a.best.theta[p] - b.best.theta[p]));
  std::vector<double> volume(a.poi.grid.size());
  for (std::size_t k = 0; k < volume.size(); ++k) volume[k] = a.poi.grid.cell_volume(k);
  comparison.set("best_fit_difference", shift)
      .set("jaccard_68", jaccard_index(a.regions[0], b.regions[0], volume))
      .set("jaccard_95", jaccard_index(a.regions[1], b.regions[1], volume));
  return comparison;
}

}  // namespace nsbi::inference
