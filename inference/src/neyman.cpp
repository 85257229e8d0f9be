#include "nsbi/inference/neyman.hpp"

#include <algorithm>

#include "nsbi/inference/summary.hpp"

namespace nsbi::inference {

double wilks_threshold(double level, int dof) { return dof > 0 ? chi2_quantile(level, dof) : 0.0; }

Belts neyman_belts(const Grid& grid, const std::vector<std::vector<double>>& q_toys,
                   const std::vector<double>& levels, int dof, json::Object& summary) {
  Belts out;
  std::vector<json::Object> belts;
  for (std::size_t k = 0; k < q_toys.size(); ++k) {
    std::vector<double> values = q_toys[k];
    json::Object belt;
    belt.set("theta", theta_json(grid, k));
    std::vector<double> c;
    std::vector<double> wilks;
    for (const double level : levels) {
      const double threshold = wilks_threshold(level, dof);
      std::size_t below = 0;
      for (const double v : values) below += v <= threshold ? 1 : 0;
      c.push_back(empirical_quantile(values, level));
      wilks.push_back(static_cast<double>(below) / static_cast<double>(values.size()));
      out.thresholds.push_back(c.back());
      out.wilks_fraction.push_back(wilks.back());
    }
    belt.set("c_alpha", c).set("fraction_below_wilks", wilks);
    belts.push_back(belt);
  }
  std::vector<double> wilks_thresholds;
  for (const double level : levels) wilks_thresholds.push_back(wilks_threshold(level, dof));
  summary.set("levels", levels).set("wilks_thresholds", wilks_thresholds).set("belts", belts);
  return out;
}

std::vector<json::Object> confidence_sets(const Grid& grid, const std::vector<double>& levels,
                                          const std::vector<double>& thresholds,
                                          const std::vector<double>& observed_q) {
  const std::size_t n_points = grid.size();
  std::vector<json::Object> sets;
  for (std::size_t l = 0; l < levels.size(); ++l) {
    std::vector<double> c(n_points);
    std::int64_t inside = 0;
    for (std::size_t k = 0; k < n_points; ++k) {
      c[k] = thresholds[k * levels.size() + l];
      inside += observed_q[k] <= c[k] ? 1 : 0;
    }
    json::Object set;
    set.set("level", levels[l]).set("grid_points_inside", inside);
    const auto axes = grid.continuous_axes();
    if (axes.size() == 1 && grid.size() == grid.axes()[axes[0]].values.size())
      set.set("parameter", grid.axes()[axes[0]].name)
          .set("pieces", pieces_json(intervals_below(grid.axes()[axes[0]].values, observed_q, c)));
    sets.push_back(set);
  }
  return sets;
}

double neyman_threshold(const BeltTable& belts, double level, const double* theta) {
  const std::size_t level_index = static_cast<std::size_t>(
      std::find(belts.levels.begin(), belts.levels.end(), level) - belts.levels.begin());
  std::vector<double> c(belts.grid.size());
  for (std::size_t j = 0; j < c.size(); ++j) c[j] = belts.thresholds[j * belts.levels.size() + level_index];
  return interpolate(belts.grid, c, theta);
}

CoverageCount coverage_count(const std::vector<double>& q_toys, double threshold, double level) {
  CoverageCount out;
  for (const double v : q_toys) out.covered += v <= threshold ? 1 : 0;
  out.interval = clopper_pearson(out.covered, q_toys.size(), 0.95);
  out.consistent = out.interval.lower <= level && level <= out.interval.upper;
  return out;
}

}  // namespace nsbi::inference
