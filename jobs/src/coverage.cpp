// nsbi coverage: how often the Wilks and Neyman intervals of toys at chosen true values θ* contain θ*, with
// Clopper–Pearson uncertainty (inference/neyman.hpp; docs/statistics.md). Toys are work items spread over the
// ranks and journaled; a toy depends only on (seed, stage, θ index, toy index).

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/neyman.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/summary.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/toy_stages.hpp"

namespace nsbi::jobs {
namespace {

// The belts of calibrate for one estimator, read back from results.h5.
inference::BeltTable read_belts(const Campaign& campaign, const InferenceContext& context,
                                const std::string& estimator) {
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
  inference::BeltTable belts;
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

// Each estimator's belts, checked against coverage's events and levels (local; callers wrap it in agree).
std::vector<inference::BeltTable> coverage_belts(const Campaign& campaign, const InferenceContext& context,
                                                 const inference::ToyPlan& plan) {
  const config::Config& config = campaign.config;
  const std::vector<double> levels = config.get<std::vector<double>>("coverage.levels");
  std::vector<inference::BeltTable> belts;
  for (const auto& name : context.estimator_names) {
    belts.push_back(read_belts(campaign, context, name));
    if (belts.back().n_events != static_cast<std::int64_t>(plan.n_events))
      config.fail("coverage.n_events", "is " + std::to_string(plan.n_events) +
                                           ", but the belts of calibrate are for " +
                                           std::to_string(belts.back().n_events) + " events per experiment");
    for (const double level : levels)
      if (std::find(belts.back().levels.begin(), belts.back().levels.end(), level) ==
          belts.back().levels.end())
        config.fail("coverage.levels",
                    "level " + std::to_string(level) +
                        " has no Neyman belt: add it to calibrate.levels and run calibrate");
  }
  return belts;
}

// One method's coverage for one estimator: the covered counts [L, K] and its entry of coverage.json.
std::vector<double> method_coverage(const std::string& method, const std::vector<std::vector<double>>& q,
                                    const inference::BeltTable* belts, const ToyGrids& grids,
                                    const std::vector<double>& levels, json::Object& entry) {
  const int dof = degrees_of_freedom(grids.scan);
  const inference::Grid& truth = grids.points;
  std::vector<double> counts;
  std::vector<json::Object> rows;
  std::int64_t consistent = 0;
  for (const double level : levels)
    for (std::size_t k = 0; k < truth.size(); ++k) {
      std::vector<double> theta(truth.n_parameters());
      truth.point(k, theta.data());
      const double threshold = method == "neyman" ? inference::neyman_threshold(*belts, level, theta.data())
                                                  : inference::wilks_threshold(level, dof);
      const inference::CoverageCount count = inference::coverage_count(q[k], threshold, level);
      consistent += count.consistent ? 1 : 0;
      counts.push_back(static_cast<double>(count.covered));
      json::Object row;
      row.set("theta", inference::theta_json(truth, k))
          .set("level", level)
          .set("threshold", threshold)
          .set("n_toys", static_cast<std::int64_t>(q[k].size()))
          .set("covered", static_cast<std::int64_t>(count.covered))
          .set("coverage", static_cast<double>(count.covered) / static_cast<double>(q[k].size()))
          .set("clopper_pearson_95", std::vector<double>{count.interval.lower, count.interval.upper})
          .set("consistent_with_nominal", count.consistent);
      rows.push_back(row);
    }
  entry.set("points", rows)
      .set("consistent_fraction", static_cast<double>(consistent) / static_cast<double>(rows.size()));
  return counts;
}

void write_coverage(h5::Group& group, const Campaign& campaign, const InferenceContext& context,
                    const ToyGrids& grids, const inference::ToyPlan& plan,
                    const std::vector<std::vector<std::vector<double>>>& q,
                    const std::vector<std::vector<std::vector<double>>>& covered) {
  const config::Config& config = campaign.config;
  const auto methods = config.get<std::vector<std::string>>("coverage.methods");
  const std::vector<double> levels = config.get<std::vector<double>>("coverage.levels");
  const std::size_t n_points = grids.points.size();
  write_grid(group, grids.points);
  group.write_attribute("levels", levels);
  group.write_attribute("dof", static_cast<std::int64_t>(degrees_of_freedom(grids.scan)));
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
}

}  // namespace

void run_coverage(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  std::optional<profiling::Region> load("nsbi/coverage/load");
  const InferenceContext context = load_inference(world, campaign, "coverage", options.allow_extrapolation);
  const auto methods = config.get<std::vector<std::string>>("coverage.methods");
  const bool neyman = std::find(methods.begin(), methods.end(), "neyman") != methods.end();
  const std::vector<double> levels = config.get<std::vector<double>>("coverage.levels");
  const inference::ToyPlan plan = toy_plan(config, "coverage");
  std::optional<ToyGrids> grids;
  std::vector<inference::BeltTable> belts;
  world.agree([&] {
    if (methods.empty()) config.fail("coverage.methods", "name at least one method");
    grids = toy_grids(campaign, context, "coverage");
    if (neyman) belts = coverage_belts(campaign, context, plan);
  });
  // With neyman, calibrate's config decides the belts the intervals use.
  std::vector<std::string> sections = {"coverage", "infer.grid", "infer.refine"};
  if (neyman) sections.push_back("calibrate");
  const std::string identity = stage_identity(campaign, context, sections);
  if (skip_if_complete(world, campaign, "coverage", identity, options.force)) return;
  log::info("coverage: ", grids->points.size(), " true points × ", plan.n_toys, " toys of ", plan.n_events,
            " events on ", world.size(), " rank(s)");
  auto estimators = context.make_estimators(grids->reference);
  load.reset();

  const auto q = q_toys(world, campaign, "coverage", inference::ToyStage::coverage, identity, context,
                        estimators, *grids, plan, options);
  if (!options.slice.whole()) return;

  std::optional<profiling::Region> belts_region("nsbi/coverage/belts");
  json::Object per_estimator;
  // covered[e][method][l * K + k]
  std::vector<std::vector<std::vector<double>>> covered(context.estimator_names.size());
  for (std::size_t e = 0; e < context.estimator_names.size(); ++e) {
    json::Object by_method;
    for (const auto& method : methods) {
      json::Object entry;
      covered[e].push_back(
          method_coverage(method, q[e], neyman ? &belts[e] : nullptr, *grids, levels, entry));
      by_method.set(method, entry);
    }
    per_estimator.set(context.estimator_names[e], by_method);
  }
  belts_region.reset();
  const profiling::Region write("nsbi/coverage/write");
  const Evaluation evaluation = evaluation_of(context, estimators);
  write_results(world, campaign, "coverage", identity, evaluation, [&](h5::Group& group) {
    write_coverage(group, campaign, context, *grids, plan, q, covered);
  });
  json::Object body;
  body.set("n_toys_per_point", static_cast<std::int64_t>(plan.n_toys))
      .set("n_events", static_cast<std::int64_t>(plan.n_events))
      .set("dof", static_cast<std::int64_t>(degrees_of_freedom(grids->scan)))
      .set("methods", methods)
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "coverage", identity, evaluation, body);
  remove_toy_journals(world, campaign, "coverage");
}

}  // namespace nsbi::jobs
