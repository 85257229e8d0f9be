// nsbi calibrate and nsbi coverage (specs/statistics.md, "Pseudo-experiments"): the Neyman construction on
// a θ grid, and coverage of Wilks and Neyman intervals at chosen true values. Toys are work items spread
// over the ranks and journaled; a toy depends only on (seed, stage, θ index, toy index).

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "nsbi/core/log.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/jobs/inference_setup.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/toy_statistics.hpp"

namespace nsbi::jobs {
namespace {

std::vector<std::vector<double>> grid_points(const inference::Grid& grid) {
  std::vector<std::vector<double>> points(grid.size(), std::vector<double>(grid.n_parameters()));
  for (std::size_t k = 0; k < grid.size(); ++k) grid.point(k, points[k].data());
  return points;
}

Matrix point_matrix(const std::vector<double>& theta) {
  Matrix m("nsbi::point", 1, theta.size());
  auto host = Kokkos::create_mirror_view(m);
  for (std::size_t p = 0; p < theta.size(); ++p) host(0, p) = theta[p];
  Kokkos::deep_copy(m, host);
  return m;
}

int degrees_of_freedom(const inference::Grid& scan_grid) {
  return static_cast<int>(scan_grid.continuous_axes().size());
}

// What toy stages share: the toys of grid point k, blocks of toys_per_item, q at the toy's true θ per
// estimator.
struct ToyPlan {
  std::uint64_t n_toys;
  std::uint64_t toys_per_item;
  std::uint64_t blocks_per_point;
  std::size_t n_events;

  std::uint64_t n_items(std::size_t points) const { return points * blocks_per_point; }
};

ToyPlan toy_plan(const config::Config& config, const std::string& stage) {
  ToyPlan plan;
  plan.n_toys = static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".n_toys"));
  plan.toys_per_item =
      std::min(plan.n_toys, static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".toys_per_item")));
  plan.blocks_per_point = (plan.n_toys + plan.toys_per_item - 1) / plan.toys_per_item;
  plan.n_events = static_cast<std::size_t>(config.get<std::int64_t>(stage + ".n_events"));
  return plan;
}

// The grids of a toy stage: the points whose toys it runs (<section>.grid) and the scan grid each toy is
// minimised over (infer.grid), checked, with the exact estimator's reference point (the scan's first).
struct ToyGrids {
  inference::Grid points;
  inference::Grid scan;
  std::vector<double> reference;
};

ToyGrids toy_grids(const Campaign& campaign, const InferenceContext& context, const std::string& section) {
  ToyGrids grids{
      grid_from_config(campaign, context, section), grid_from_config(campaign, context, "infer"), {}};
  grids.reference.resize(grids.scan.n_parameters());
  grids.scan.point(0, grids.reference.data());
  auto points = grid_points(grids.points);
  const auto scan_points = grid_points(grids.scan);
  points.insert(points.end(), scan_points.begin(), scan_points.end());
  context.check_exact(section + ".estimators", points, grids.reference);
  return grids;
}

// Runs the toys of every point of `points` and returns q[estimator][point][toy].
std::vector<std::vector<std::vector<double>>> toy_q_values(
    const Communicator& world, const Campaign& campaign, const std::string& stage,
    inference::ToyStage toy_stage, const std::string& identity, const InferenceContext& context,
    std::vector<std::unique_ptr<inference::RatioEstimator>>& estimators, const inference::Grid& points,
    const inference::Grid& scan_grid, const ToyPlan& plan, const StageOptions& options) {
  const std::size_t n_estimators = estimators.size();
  inference::RefineOptions refine;
  refine.enabled = campaign.config.get<bool>("infer.refine");
  const std::size_t d = context.info().n_observables();
  Matrix x;
  const std::vector<double> merged = run_toy_items(
      world, campaign, stage, identity, plan.n_items(points.size()), plan.toys_per_item * n_estimators,
      plan.toys_per_item, options.force,
      [&](std::uint64_t item, double* out) {
        const std::size_t k = item / plan.blocks_per_point;
        const std::uint64_t first_toy = (item % plan.blocks_per_point) * plan.toys_per_item;
        const std::size_t n = std::min(plan.toys_per_item, plan.n_toys - first_toy);
        std::vector<double> theta(points.n_parameters());
        points.point(k, theta.data());
        if (x.extent(0) != n * plan.n_events)
          x = Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::toys"), n * plan.n_events, d);
        inference::simulate_toys(*context.simulator, theta.data(), campaign.seed, toy_stage, k, first_toy,
                                 plan.n_events, x);
        const Matrix truth = point_matrix(theta);
        for (std::size_t e = 0; e < n_estimators; ++e) {
          const std::vector<double> q =
              q_at_points(*estimators[e], x, n, plan.n_events, scan_grid, truth, refine);
          double* slot = out + e * plan.toys_per_item;
          std::fill(slot, slot + plan.toys_per_item, std::nan(""));
          std::copy(q.begin(), q.end(), slot);
        }
      },
      options.slice);
  if (!options.slice.whole()) return {};  // the slice's items are journaled; the merge run uses them
  std::vector<std::vector<std::vector<double>>> q(
      n_estimators, std::vector<std::vector<double>>(points.size(), std::vector<double>()));
  for (std::size_t k = 0; k < points.size(); ++k)
    for (std::uint64_t b = 0; b < plan.blocks_per_point; ++b) {
      const double* item =
          merged.data() + (k * plan.blocks_per_point + b) * plan.toys_per_item * n_estimators;
      const std::size_t n = std::min(plan.toys_per_item, plan.n_toys - b * plan.toys_per_item);
      for (std::size_t e = 0; e < n_estimators; ++e)
        q[e][k].insert(q[e][k].end(), item + e * plan.toys_per_item, item + e * plan.toys_per_item + n);
    }
  return q;
}

std::vector<double> flatten(const std::vector<std::vector<double>>& rows) {
  std::vector<double> out;
  for (const auto& row : rows) out.insert(out.end(), row.begin(), row.end());
  return out;
}

void write_grid(h5::Group& group, const inference::Grid& grid) {
  for (const auto& axis : grid.axes())
    inference::write_array(group, "grid/" + axis.name, {axis.values.size()}, axis.values);
}

json::Object theta_json(const inference::Grid& grid, std::size_t k) {
  std::vector<double> theta(grid.n_parameters());
  grid.point(k, theta.data());
  json::Object out;
  for (std::size_t p = 0; p < theta.size(); ++p) out.set(grid.axes()[p].name, theta[p]);
  return out;
}

}  // namespace

void run_calibrate(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  InferenceContext context =
      load_inference(world, campaign, "calibrate.estimators", "infer.model", options.allow_extrapolation);
  std::optional<ToyGrids> grids;
  world.agree([&] { grids = toy_grids(campaign, context, "calibrate"); });
  const inference::Grid* belt_grid = &grids->points;
  const inference::Grid* scan_grid = &grids->scan;
  const ToyPlan plan = toy_plan(config, "calibrate");
  // The observed data's confidence set, when there is observed data.
  std::optional<Matrix> observed;
  const std::string observed_path = campaign.output_path(config.get<std::string>("infer.observed"));
  if (access(observed_path.c_str(), R_OK) == 0)
    world.agree([&] { observed = read_observed(campaign, context.info(), "infer.observed"); });
  // The toys' journals do not depend on the observed data; the results do.
  const std::vector<std::string> sections = {"calibrate", "infer.grid", "infer.refine"};
  const std::string toy_identity = stage_identity(campaign, context, sections);
  const std::string identity = stage_identity(campaign, context, sections, observed ? &*observed : nullptr);
  if (stage_complete(world, campaign, "calibrate", identity, options.force)) {
    log::info("calibrate: complete for this config: nothing to do (--force redoes it)");
    return;
  }
  log::info("calibrate: ", belt_grid->size(), " grid points × ", plan.n_toys, " toys of ", plan.n_events,
            " events, each scanned over ", scan_grid->size(), " points, on ", world.size(), " rank(s)");
  auto estimators = context.make_estimators(grids->reference);
  const auto q = toy_q_values(world, campaign, "calibrate", inference::ToyStage::calibrate, toy_identity,
                              context, estimators, *belt_grid, *scan_grid, plan, options);
  if (!options.slice.whole()) return;

  const std::vector<double> levels = config.get<std::vector<double>>("calibrate.levels");
  const int dof = degrees_of_freedom(*scan_grid);
  const std::size_t n_points = belt_grid->size();
  if (!observed) log::info("calibrate: no observed data at '", observed_path, "': belts only");
  if (observed && observed->extent(0) != plan.n_events) {
    log::warning("calibrate: the observed data '", observed_path, "' has ", observed->extent(0),
                 " events but the belts are for calibrate.n_events = ", plan.n_events,
                 ": no confidence set for it (set calibrate.n_events to its count)");
    observed.reset();
  }

  json::Object per_estimator;
  struct Output {
    std::vector<double> thresholds;      // [K, L]
    std::vector<double> wilks_fraction;  // [K, L]
    std::vector<double> observed_q;      // [K]
  };
  std::vector<Output> outputs(estimators.size());
  for (std::size_t e = 0; e < estimators.size(); ++e) {
    Output& out = outputs[e];
    std::vector<json::Object> belts;
    for (std::size_t k = 0; k < n_points; ++k) {
      std::vector<double> values = q[e][k];
      json::Object belt;
      belt.set("theta", theta_json(*belt_grid, k));
      std::vector<double> c;
      std::vector<double> wilks;
      for (const double level : levels) {
        const double threshold = dof > 0 ? inference::chi2_quantile(level, dof) : 0.0;
        std::size_t below = 0;
        for (const double v : values) below += v <= threshold ? 1 : 0;
        c.push_back(inference::empirical_quantile(values, level));
        wilks.push_back(static_cast<double>(below) / static_cast<double>(values.size()));
        out.thresholds.push_back(c.back());
        out.wilks_fraction.push_back(wilks.back());
      }
      belt.set("c_alpha", c).set("fraction_below_wilks", wilks);
      belts.push_back(belt);
    }
    json::Object summary;
    std::vector<double> wilks_thresholds;
    for (const double level : levels)
      wilks_thresholds.push_back(dof > 0 ? inference::chi2_quantile(level, dof) : 0);
    summary.set("levels", levels).set("wilks_thresholds", wilks_thresholds).set("belts", belts);

    if (observed) {
      Matrix belt_points = belt_grid->points();
      inference::RefineOptions refine;
      refine.enabled = config.get<bool>("infer.refine");
      world.agree([&] {
        out.observed_q =
            q_at_points(*estimators[e], *observed, 1, observed->extent(0), *scan_grid, belt_points, refine);
      });
      std::vector<json::Object> sets;
      for (std::size_t l = 0; l < levels.size(); ++l) {
        std::vector<double> c(n_points);
        std::int64_t inside = 0;
        for (std::size_t k = 0; k < n_points; ++k) {
          c[k] = out.thresholds[k * levels.size() + l];
          inside += out.observed_q[k] <= c[k] ? 1 : 0;
        }
        json::Object set;
        set.set("level", levels[l]).set("grid_points_inside", inside);
        const auto axes = belt_grid->continuous_axes();
        if (axes.size() == 1 && belt_grid->size() == belt_grid->axes()[axes[0]].values.size()) {
          std::vector<json::Object> pieces;
          for (const auto& piece :
               inference::intervals_below(belt_grid->axes()[axes[0]].values, out.observed_q, c)) {
            json::Object item;
            item.set("lower", piece.lower)
                .set("upper", piece.upper)
                .set("lower_at_grid_edge", piece.lower_at_edge)
                .set("upper_at_grid_edge", piece.upper_at_edge);
            pieces.push_back(item);
          }
          set.set("parameter", belt_grid->axes()[axes[0]].name).set("pieces", pieces);
        }
        sets.push_back(set);
      }
      summary.set("observed_confidence_sets", sets);
    }
    per_estimator.set(estimators[e]->name(), summary);
  }

  write_results(world, campaign, "calibrate", identity, [&](h5::Group& group) {
    write_grid(group, *belt_grid);
    group.write_attribute("levels", levels);
    group.write_attribute("dof", static_cast<std::int64_t>(dof));
    group.write_attribute("n_events", static_cast<std::int64_t>(plan.n_events));
    group.write_attribute("estimators", context.estimator_names);
    for (std::size_t e = 0; e < estimators.size(); ++e) {
      h5::Group g = group.create_group(estimators[e]->name());
      inference::write_array(g, "q_toys", {n_points, static_cast<std::size_t>(plan.n_toys)}, flatten(q[e]));
      inference::write_array(g, "thresholds", {n_points, levels.size()}, outputs[e].thresholds);
      inference::write_array(g, "wilks_fraction", {n_points, levels.size()}, outputs[e].wilks_fraction);
      if (!outputs[e].observed_q.empty()) inference::write_array(g, "observed_q", {n_points}, outputs[e].observed_q);
    }
  });
  json::Object body;
  body.set("n_toys_per_point", static_cast<std::int64_t>(plan.n_toys))
      .set("n_events", static_cast<std::int64_t>(plan.n_events))
      .set("grid_points", static_cast<std::int64_t>(n_points))
      .set("dof", static_cast<std::int64_t>(dof))
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "calibrate", identity, body);
  remove_toy_journals(world, campaign, "calibrate");
}

namespace {

// The belts of calibrate for one estimator, read back from results.h5.
struct Belts {
  inference::Grid grid;
  std::vector<double> levels;
  std::vector<double> thresholds;  // [K, L]
  std::int64_t n_events = 0;
};

Belts read_belts(const Campaign& campaign, const InferenceContext& context, const std::string& estimator) {
  const std::string path = campaign.output_path("results.h5");
  const std::string hint =
      "coverage.methods lists `neyman`, which needs the belts of `nsbi calibrate` with the "
      "estimator `" +
      estimator + "`";
  if (access(path.c_str(), R_OK) != 0) throw ConfigError(hint + ": there is no '" + path + "' yet");
  h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  h5::Group root = file.root();
  if (!root.exists("calibrate/" + estimator + "/thresholds"))
    throw ConfigError(hint + ": '" + path + "' has no /calibrate/" + estimator);
  h5::Group calibrate = root.open_group("calibrate");
  Belts belts;
  std::vector<inference::GridAxis> axes;
  for (const auto& parameter : context.info().parameters) {
    h5::Dataset values = calibrate.open_dataset("grid/" + parameter.name);
    inference::GridAxis axis;
    axis.name = parameter.name;
    axis.discrete = parameter.is_discrete();
    axis.values.resize(values.dims()[0]);
    values.read_rows(0, axis.values.size(), axis.values.data());
    axes.push_back(axis);
  }
  belts.grid = inference::Grid(axes);
  belts.levels = calibrate.read_attribute<std::vector<double>>("levels");
  belts.n_events = calibrate.read_attribute<std::int64_t>("n_events");
  h5::Dataset thresholds = calibrate.open_dataset(estimator + "/thresholds");
  belts.thresholds.resize(belts.grid.size() * belts.levels.size());
  thresholds.read_rows(0, belts.grid.size(), belts.thresholds.data());
  return belts;
}

}  // namespace

void run_coverage(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  InferenceContext context =
      load_inference(world, campaign, "coverage.estimators", "infer.model", options.allow_extrapolation);
  std::optional<ToyGrids> grids;
  const auto methods = config.get<std::vector<std::string>>("coverage.methods");
  const bool neyman = std::find(methods.begin(), methods.end(), "neyman") != methods.end();
  const std::vector<double> levels = config.get<std::vector<double>>("coverage.levels");
  const ToyPlan plan = toy_plan(config, "coverage");
  std::vector<Belts> belts;
  world.agree([&] {
    if (methods.empty()) config.fail("coverage.methods", "name at least one method");
    grids = toy_grids(campaign, context, "coverage");
    if (neyman) {
      for (const auto& name : context.estimator_names) {
        belts.push_back(read_belts(campaign, context, name));
        if (belts.back().n_events != static_cast<std::int64_t>(plan.n_events))
          config.fail("coverage.n_events",
                      "is " + std::to_string(plan.n_events) + ", but the belts of calibrate are for " +
                          std::to_string(belts.back().n_events) + " events per experiment");
        for (std::size_t l = 0; l < levels.size(); ++l)
          if (std::find(belts.back().levels.begin(), belts.back().levels.end(), levels[l]) ==
              belts.back().levels.end())
            config.fail("coverage.levels",
                        "level " + std::to_string(levels[l]) +
                            " has no Neyman belt: add it to calibrate.levels and run calibrate");
      }
    }
  });
  // With neyman, calibrate's config decides the belts the intervals use.
  std::vector<std::string> sections = {"coverage", "infer.grid", "infer.refine"};
  if (neyman) sections.push_back("calibrate");
  const std::string identity = stage_identity(campaign, context, sections);
  if (stage_complete(world, campaign, "coverage", identity, options.force)) {
    log::info("coverage: complete for this config: nothing to do (--force redoes it)");
    return;
  }
  const inference::Grid* truth_grid = &grids->points;
  const inference::Grid* scan_grid = &grids->scan;
  log::info("coverage: ", truth_grid->size(), " true points × ", plan.n_toys, " toys of ", plan.n_events,
            " events on ", world.size(), " rank(s)");
  auto estimators = context.make_estimators(grids->reference);
  const auto q = toy_q_values(world, campaign, "coverage", inference::ToyStage::coverage, identity, context,
                              estimators, *truth_grid, *scan_grid, plan, options);
  if (!options.slice.whole()) return;
  const int dof = degrees_of_freedom(*scan_grid);
  const std::size_t n_points = truth_grid->size();

  json::Object per_estimator;
  // covered[e][method][k * L + l]
  std::vector<std::vector<std::vector<double>>> covered(context.estimator_names.size());
  for (std::size_t e = 0; e < context.estimator_names.size(); ++e) {
    json::Object by_method;
    for (const auto& method : methods) {
      std::vector<double> counts;
      std::vector<json::Object> rows;
      std::int64_t consistent = 0;
      for (std::size_t l = 0; l < levels.size(); ++l) {
        for (std::size_t k = 0; k < n_points; ++k) {
          std::vector<double> theta(truth_grid->n_parameters());
          truth_grid->point(k, theta.data());
          double threshold = dof > 0 ? inference::chi2_quantile(levels[l], dof) : 0.0;
          if (method == "neyman") {
            const Belts& b = belts[e];
            const std::size_t level_index = static_cast<std::size_t>(
                std::find(b.levels.begin(), b.levels.end(), levels[l]) - b.levels.begin());
            std::vector<double> c(b.grid.size());
            for (std::size_t j = 0; j < c.size(); ++j) c[j] = b.thresholds[j * b.levels.size() + level_index];
            threshold = inference::interpolate(b.grid, c, theta.data());
          }
          std::uint64_t inside = 0;
          for (const double v : q[e][k]) inside += v <= threshold ? 1 : 0;
          const auto interval = inference::clopper_pearson(inside, plan.n_toys, 0.95);
          const bool ok = interval.lower <= levels[l] && levels[l] <= interval.upper;
          consistent += ok ? 1 : 0;
          counts.push_back(static_cast<double>(inside));
          json::Object row;
          row.set("theta", theta_json(*truth_grid, k))
              .set("level", levels[l])
              .set("threshold", threshold)
              .set("n_toys", static_cast<std::int64_t>(plan.n_toys))
              .set("covered", static_cast<std::int64_t>(inside))
              .set("coverage", static_cast<double>(inside) / static_cast<double>(plan.n_toys))
              .set("clopper_pearson_95", std::vector<double>{interval.lower, interval.upper})
              .set("consistent_with_nominal", ok);
          rows.push_back(row);
        }
      }
      json::Object entry;
      entry.set("points", rows)
          .set("consistent_fraction", static_cast<double>(consistent) / static_cast<double>(rows.size()));
      by_method.set(method, entry);
      covered[e].push_back(counts);
    }
    per_estimator.set(context.estimator_names[e], by_method);
  }

  write_results(world, campaign, "coverage", identity, [&](h5::Group& group) {
    write_grid(group, *truth_grid);
    group.write_attribute("levels", levels);
    group.write_attribute("dof", static_cast<std::int64_t>(dof));
    group.write_attribute("n_events", static_cast<std::int64_t>(plan.n_events));
    group.write_attribute("n_toys", static_cast<std::int64_t>(plan.n_toys));
    group.write_attribute("methods", methods);
    group.write_attribute("estimators", context.estimator_names);
    for (std::size_t e = 0; e < context.estimator_names.size(); ++e) {
      h5::Group g = group.create_group(context.estimator_names[e]);
      inference::write_array(g, "q_toys", {n_points, static_cast<std::size_t>(plan.n_toys)}, flatten(q[e]));
      for (std::size_t m = 0; m < methods.size(); ++m)
        inference::write_array(g, methods[m] + "/covered", {levels.size(), n_points}, covered[e][m]);
    }
  });
  json::Object body;
  body.set("n_toys_per_point", static_cast<std::int64_t>(plan.n_toys))
      .set("n_events", static_cast<std::int64_t>(plan.n_events))
      .set("dof", static_cast<std::int64_t>(dof))
      .set("methods", methods)
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "coverage", identity, body);
  remove_toy_journals(world, campaign, "coverage");
}

}  // namespace nsbi::jobs
