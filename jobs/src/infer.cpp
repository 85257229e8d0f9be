// nsbi infer: the test statistic of the observed data on a θ grid, best fit, Wilks intervals and regions, and
// the posterior on the grid (specs/statistics.md, "Inference for one experiment"), per estimator.

#include <algorithm>
#include <cmath>
#include <map>

#include "nsbi/core/log.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/inference/scan.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/jobs/inference_setup.hpp"
#include "nsbi/jobs/memory_bounds.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

std::vector<std::size_t> grid_shape(const inference::Grid& grid) {
  std::vector<std::size_t> shape;
  for (const auto& axis : grid.axes()) shape.push_back(axis.values.size());
  if (shape.empty()) shape.push_back(1);
  return shape;
}

std::vector<double> as_doubles(const std::vector<bool>& mask) {
  return std::vector<double>(mask.begin(), mask.end());
}

json::Object interval_json(const std::vector<inference::Interval>& pieces, double level, double threshold) {
  std::vector<json::Object> list;
  for (const auto& piece : pieces) {
    json::Object item;
    item.set("lower", piece.lower)
        .set("upper", piece.upper)
        .set("lower_at_grid_edge", piece.lower_at_edge)
        .set("upper_at_grid_edge", piece.upper_at_edge);
    list.push_back(item);
  }
  json::Object out;
  out.set("level", level).set("threshold", threshold).set("pieces", list);
  return out;
}

struct EstimatorResult {
  inference::Minimum best;
  std::vector<double> t;
  std::vector<double> q;
  int dof = 0;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> one_d;  // profile, bounds
  std::vector<double> posterior;
  std::vector<std::vector<bool>> hpd;
  std::vector<double> samples;
  inference::Profile poi;                  // q on the grid of the parameters of interest
  std::vector<std::vector<bool>> regions;  // per Wilks level, over poi.grid
  json::Object summary;
};

// analyse() runs inside agree without collectives: a rank that got a signal stops there, the others learn of
// it at the agree.
void stop_if_requested() {
  if (stop_requested())
    throw Interrupted("infer: stopped by a signal; nothing was written: run the same command to start again");
}

EstimatorResult analyse(const Campaign& campaign, inference::RatioEstimator& estimator, const Matrix& x,
                        const inference::Grid& grid, const std::vector<bool>& profiled) {
  const config::Config& config = campaign.config;
  EstimatorResult r;
  const std::size_t n_events = x.extent(0);
  stop_if_requested();
  r.t = inference::scan_experiments(estimator, x, 1, n_events, grid).t;
  inference::RefineOptions refine;
  refine.enabled = config.get<bool>("infer.refine");
  r.best = inference::minimise(estimator, x, grid, r.t, refine);
  std::vector<double>& q = r.q;
  q.resize(r.t.size());
  for (std::size_t k = 0; k < q.size(); ++k) q[k] = r.t[k] - r.best.t;
  r.poi = inference::profile_out(grid, q, profiled);

  // Degrees of freedom: the parameters of interest that vary continuously.
  int& dof = r.dof;
  for (const auto& axis : r.poi.grid.axes()) dof += axis.continuous() ? 1 : 0;
  const std::vector<double> levels = inference::wilks_confidence_levels();
  std::vector<double> poi_volume(r.poi.grid.size());
  for (std::size_t k = 0; k < poi_volume.size(); ++k) poi_volume[k] = r.poi.grid.cell_volume(k);

  json::Object best_fit;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p) best_fit.set(grid.axes()[p].name, r.best.theta[p]);
  r.summary.set("best_fit", best_fit)
      .set("t_min", r.best.t)
      .set("n_events", static_cast<std::int64_t>(n_events));

  // Joint regions of the parameters of interest at the Wilks thresholds of `dof` degrees of freedom.
  std::vector<json::Object> regions;
  for (const double level : levels) {
    const double threshold = dof > 0 ? inference::chi2_quantile(level, dof) : 0.0;
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
        .set("dof", static_cast<std::int64_t>(dof))
        .set("threshold", threshold)
        .set("grid_points", points)
        .set("volume", area);
    regions.push_back(region);
    r.regions.push_back(mask);
  }
  r.summary.set("regions", regions);

  // 1-D intervals of each continuous parameter of interest, the others profiled (dof 1).
  json::Object intervals;
  auto& one_d = r.one_d;
  for (std::size_t a = 0; a < r.poi.grid.n_parameters(); ++a) {
    const auto& axis = r.poi.grid.axes()[a];
    if (!axis.continuous()) continue;
    std::vector<bool> others(r.poi.grid.n_parameters(), true);
    others[a] = false;
    const inference::Profile line = inference::profile_out(r.poi.grid, r.poi.values, others);
    std::vector<json::Object> per_level;
    std::vector<double> bounds;
    for (const double level : levels) {
      const double threshold = inference::chi2_quantile(level, 1);
      const auto pieces = inference::intervals_below(axis.values, line.values,
                                                     std::vector<double>(axis.values.size(), threshold));
      per_level.push_back(interval_json(pieces, level, threshold));
      bounds.push_back(pieces.empty() ? std::nan("") : pieces.front().lower);
      bounds.push_back(pieces.empty() ? std::nan("") : pieces.back().upper);
    }
    json::Object entry;
    entry.set("levels", per_level);
    intervals.set(axis.name, entry);
    one_d[axis.name] = {line.values, bounds};
  }
  r.summary.set("intervals", intervals);

  // The posterior on the grid (flat prior: nsbi's proposals are uniform) and samples from it.
  std::vector<double> volume(grid.size());
  for (std::size_t k = 0; k < volume.size(); ++k) volume[k] = grid.cell_volume(k);
  r.posterior = inference::grid_posterior(r.t, {}, volume);
  const std::vector<double>& posterior = r.posterior;
  const auto n_samples = static_cast<std::size_t>(config.get<std::int64_t>("infer.posterior_samples"));
  std::vector<double> cumulative(posterior.size());
  double running = 0;
  for (std::size_t k = 0; k < posterior.size(); ++k) cumulative[k] = (running += posterior[k]);
  const std::size_t n_parameters = grid.n_parameters();
  std::vector<double>& samples = r.samples;
  samples.resize(n_samples * n_parameters);
  std::vector<double> mean(n_parameters, 0.0);
  std::vector<double> second(n_parameters, 0.0);
  for (std::size_t s = 0; s < n_samples; ++s) {
    if (s % 65536 == 0) stop_if_requested();
    rng::Stream stream(campaign.seed, rng::Purpose::posterior, s);
    const double u = stream.uniform() * running;
    const std::size_t k = std::min<std::size_t>(
        static_cast<std::size_t>(std::lower_bound(cumulative.begin(), cumulative.end(), u) -
                                 cumulative.begin()),
        posterior.size() - 1);
    const auto index = grid.unravel(k);
    for (std::size_t p = 0; p < n_parameters; ++p) {
      const auto& axis = grid.axes()[p];
      double value = axis.values[index[p]];
      const double jitter = stream.uniform() - 0.5;
      if (axis.continuous())
        value = std::clamp(value + jitter * axis.spacing(), axis.values.front(), axis.values.back());
      samples[s * n_parameters + p] = value;
    }
  }
  for (std::size_t k = 0; k < posterior.size(); ++k) {
    const auto index = grid.unravel(k);
    for (std::size_t p = 0; p < n_parameters; ++p) {
      const double v = grid.axes()[p].values[index[p]];
      mean[p] += posterior[k] * v;
      second[p] += posterior[k] * v * v;
    }
  }
  json::Object posterior_summary;
  for (std::size_t p = 0; p < n_parameters; ++p) {
    json::Object moments;
    moments.set("mean", mean[p]).set("std", std::sqrt(std::max(0.0, second[p] - mean[p] * mean[p])));
    posterior_summary.set(grid.axes()[p].name, moments);
  }
  std::vector<json::Object> credible;
  auto& hpd = r.hpd;
  for (const double level : levels) {
    hpd.push_back(inference::highest_density_set(posterior, level));
    double region_volume = 0;
    for (std::size_t k = 0; k < posterior.size(); ++k) region_volume += hpd.back()[k] ? volume[k] : 0.0;
    json::Object entry;
    entry.set("level", level).set("volume", region_volume);
    credible.push_back(entry);
  }
  posterior_summary.set("highest_density_regions", credible)
      .set("samples", static_cast<std::int64_t>(n_samples));
  r.summary.set("posterior", posterior_summary);

  return r;
}

void write_estimator(h5::Group& group, const std::string& name, const EstimatorResult& r,
                     const inference::Grid& grid) {
  {
    h5::Group g = group.create_group(name);
    const std::size_t n_parameters = grid.n_parameters();
    const std::vector<double> levels = inference::wilks_confidence_levels();
    const auto& one_d = r.one_d;
    const auto& hpd = r.hpd;
    const auto& samples = r.samples;
    const std::size_t n_samples = samples.size() / std::max<std::size_t>(1, n_parameters);
    const auto shape = grid_shape(grid);
    inference::write_array(g, "t", shape, r.t);
    inference::write_array(g, "q", shape, r.q);
    inference::write_array(g, "best_fit", {n_parameters}, r.best.theta);
    g.write_attribute("t_min", r.best.t);
    g.write_attribute("dof", static_cast<std::int64_t>(r.dof));
    inference::write_array(g, "poi_q", grid_shape(r.poi.grid), r.poi.values);
    for (std::size_t i = 0; i < levels.size(); ++i)
      inference::write_array(g, "region_" + std::to_string(i), grid_shape(r.poi.grid), as_doubles(r.regions[i]));
    g.write_attribute("levels", levels);
    for (const auto& [parameter, values] : one_d) {
      inference::write_array(g, "profile/" + parameter, {values.first.size()}, values.first);
      inference::write_array(g, "intervals/" + parameter, {levels.size(), 2}, values.second);
    }
    inference::write_array(g, "posterior", shape, r.posterior);
    for (std::size_t i = 0; i < levels.size(); ++i)
      inference::write_array(g, "hpd_" + std::to_string(i), shape, as_doubles(hpd[i]));
    if (n_samples > 0) inference::write_array(g, "posterior_samples", {n_samples, n_parameters}, samples);
  }
}

}  // namespace

void run_infer(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  InferenceContext context =
      load_inference(world, campaign, "infer.estimators", "infer.model", options.allow_extrapolation);
  std::optional<inference::Grid> grid;
  std::vector<bool> profiled;
  Matrix x;
  world.agree([&] {
    grid = grid_from_config(campaign, context, "infer");
    const auto profile_names = config.get<std::vector<std::string>>("infer.profile");
    const auto names = context.parameter_names();
    for (const auto& name : names)
      profiled.push_back(std::find(profile_names.begin(), profile_names.end(), name) != profile_names.end());
    std::vector<std::vector<double>> points(grid->size(), std::vector<double>(grid->n_parameters()));
    for (std::size_t k = 0; k < grid->size(); ++k) grid->point(k, points[k].data());
    context.check_exact("infer.estimators", points, points[0]);
    x = read_observed(campaign, context.info(), "infer.observed");
  });
  // The observed events, now counted, against the memory of a rank (validation assumed the config's).
  const MemoryLimit memory = node_memory_limit(ranks_on_this_node(world.get()));
  world.agree([&] {
    check_memory(config, estimate_stage_memory(config, context.info(), "infer", world.size(), x.extent(0)),
                 memory);
  });
  const std::string identity = stage_identity(campaign, context, {"infer"}, &x);
  if (stage_complete(world, campaign, "infer", identity, options.force)) {
    log::info("infer: complete for this config: nothing to do (--force redoes it)");
    return;
  }
  log::info("infer: ", x.extent(0), " observed events, ", grid->size(), " grid points, estimators: ", [&] {
    std::string names;
    for (const auto& n : context.estimator_names) names += (names.empty() ? "" : ", ") + n;
    return names;
  }());
  std::vector<double> reference(grid->n_parameters());
  grid->point(0, reference.data());
  auto estimators = context.make_estimators(reference);

  // Every rank computes the (small) scan; rank 0 writes it.
  std::vector<EstimatorResult> results;
  world.agree([&] {
    for (auto& estimator : estimators) results.push_back(analyse(campaign, *estimator, x, *grid, profiled));
  });
  json::Object body;
  json::Object per_estimator;
  for (std::size_t e = 0; e < estimators.size(); ++e)
    per_estimator.set(estimators[e]->name(), results[e].summary);
  body.set("observed", campaign.output_path(config.get<std::string>("infer.observed")))
      .set("estimators", context.estimator_names)
      .set("results_by_estimator", per_estimator);
  // Learned against exact: the agreement acceptance asks for (best fit, overlap of the 68% regions).
  if (estimators.size() == 2) {
    const EstimatorResult& a = results[0];
    const EstimatorResult& b = results[1];
    json::Object comparison;
    json::Object shift;
    for (std::size_t p = 0; p < grid->n_parameters(); ++p)
      shift.set(grid->axes()[p].name, std::abs(a.best.theta[p] - b.best.theta[p]));
    std::vector<double> volume(a.poi.grid.size());
    for (std::size_t k = 0; k < volume.size(); ++k) volume[k] = a.poi.grid.cell_volume(k);
    comparison.set("best_fit_difference", shift)
        .set("jaccard_68", inference::jaccard_index(a.regions[0], b.regions[0], volume))
        .set("jaccard_95", inference::jaccard_index(a.regions[1], b.regions[1], volume));
    body.set("comparison", comparison);
  }
  world.agree([&] { prepare_directory(config, "campaign.dir", campaign.dir); }, /*root_only=*/true);
  write_results(world, campaign, "infer", identity, [&](h5::Group& group) {
    for (std::size_t a = 0; a < grid->n_parameters(); ++a)
      inference::write_array(group, "grid/" + grid->axes()[a].name, {grid->axes()[a].values.size()},
                  grid->axes()[a].values);
    std::vector<std::string> names = context.parameter_names();
    group.write_attribute("parameters", names);
    std::vector<std::string> interest;
    for (std::size_t p = 0; p < names.size(); ++p)
      if (!profiled[p]) interest.push_back(names[p]);
    group.write_attribute("parameters_of_interest", interest);
    group.write_attribute("estimators", context.estimator_names);
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    inference::write_array(group, "observed", {x.extent(0), x.extent(1)},
                std::vector<double>(host.data(), host.data() + x.extent(0) * x.extent(1)));
    for (std::size_t e = 0; e < estimators.size(); ++e)
      write_estimator(group, estimators[e]->name(), results[e], *grid);
  });
  write_summary(world, campaign, "infer", identity, body);
}

}  // namespace nsbi::jobs
