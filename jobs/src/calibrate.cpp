// nsbi calibrate: the Neyman construction on a θ grid (belts c_α(θ) from toys) and the confidence set of the
// observed data (inference/neyman.hpp; docs/statistics.md). Toys are work items spread over the ranks and
// journaled; a toy depends only on (seed, stage, θ index, toy index).

#include <unistd.h>

#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/neyman.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/test_statistics.hpp"
#include "nsbi/jobs/infer_datasets.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/toy_stages.hpp"

namespace nsbi::jobs {
namespace {

// The belts of one estimator and, with observed data, its q at the belt points.
struct Calibration {
  inference::Belts belts;
  std::vector<double> observed_q;  // [K]
};

// The observed data, when there are and as many events as a toy has (else logged and none); none when
// infer.observed_dataset names several datasets (a confidence set is for one).
std::optional<Matrix> calibrate_observed(const Communicator& world, const Campaign& campaign,
                                         const InferenceContext& context, bool& several) {
  std::optional<Matrix> observed;
  const std::string path = campaign.output_path(campaign.config.get<std::string>("infer.observed"));
  if (access(path.c_str(), R_OK) != 0) return observed;
  InferObserved read;
  world.agree([&] { read = read_infer_datasets(campaign, context.info()); });
  several = read.per_dataset;
  if (several)
    log::info(
        "calibrate: infer.observed_dataset names several datasets: belts only (a confidence set is for "
        "one observed dataset: name it to get one)");
  else
    observed = read.datasets[0].x;
  return observed;
}

std::vector<Calibration> calibrate_belts(const Communicator& world, const Campaign& campaign,
                                         inference::Estimators& estimators, const ToyGrids& grids,
                                         const std::vector<std::vector<std::vector<double>>>& q,
                                         const std::optional<Matrix>& observed, json::Object& per_estimator) {
  const config::Config& config = campaign.config;
  const std::vector<double> levels = config.get<std::vector<double>>("calibrate.levels");
  const int dof = degrees_of_freedom(grids.scan);
  std::vector<Calibration> outputs(estimators.size());
  for (std::size_t e = 0; e < estimators.size(); ++e) {
    json::Object summary;
    outputs[e].belts = inference::neyman_belts(grids.points, q[e], levels, dof, summary);
    if (observed) {
      const Matrix belt_points = grids.points.points();
      inference::RefineOptions refine;
      refine.enabled = config.get<bool>("infer.refine");
      world.agree([&] {
        outputs[e].observed_q = inference::q_at_points(*estimators[e], *observed, 1, observed->extent(0),
                                                       grids.scan, belt_points, refine);
      });
      summary.set("observed_confidence_sets",
                  inference::confidence_sets(grids.points, levels, outputs[e].belts.thresholds,
                                             outputs[e].observed_q));
    }
    per_estimator.set(estimators[e]->name(), summary);
  }
  return outputs;
}

void write_calibration(h5::Group& group, const Campaign& campaign, const InferenceContext& context,
                       const ToyGrids& grids, const inference::ToyPlan& plan,
                       const std::vector<std::vector<std::vector<double>>>& q,
                       const std::vector<Calibration>& outputs) {
  using inference::write_array;
  const std::vector<double> levels = campaign.config.get<std::vector<double>>("calibrate.levels");
  const std::size_t n_points = grids.points.size();
  write_grid(group, grids.points);
  group.write_attribute("levels", levels);
  group.write_attribute("dof", static_cast<std::int64_t>(degrees_of_freedom(grids.scan)));
  group.write_attribute("n_events", static_cast<std::int64_t>(plan.n_events));
  group.write_attribute("estimators", context.estimator_names);
  for (std::size_t e = 0; e < outputs.size(); ++e) {
    h5::Group g = group.create_group(context.estimator_names[e]);
    write_array(g, "q_toys", {n_points, static_cast<std::size_t>(plan.n_toys)}, flatten(q[e]));
    write_array(g, "thresholds", {n_points, levels.size()}, outputs[e].belts.thresholds);
    write_array(g, "wilks_fraction", {n_points, levels.size()}, outputs[e].belts.wilks_fraction);
    if (!outputs[e].observed_q.empty()) write_array(g, "observed_q", {n_points}, outputs[e].observed_q);
  }
}

}  // namespace

void run_calibrate(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  std::optional<profiling::Region> load("nsbi/calibrate/load");
  const InferenceContext context = load_inference(world, campaign, "calibrate", options.allow_extrapolation);
  std::optional<ToyGrids> grids;
  world.agree([&] { grids = toy_grids(campaign, context, "calibrate"); });
  const inference::ToyPlan plan = toy_plan(campaign.config, "calibrate");
  bool several = false;  // infer.observed_dataset names several datasets
  std::optional<Matrix> observed = calibrate_observed(world, campaign, context, several);
  // The toys' journals do not depend on the observed data; the results do.
  const std::vector<std::string> sections = {"calibrate", "infer.grid", "infer.refine"};
  const std::string toy_identity = stage_identity(campaign, context, sections);
  const std::string identity = stage_identity(campaign, context, sections, observed ? &*observed : nullptr);
  if (skip_if_complete(world, campaign, "calibrate", identity, options.force)) return;
  log::info("calibrate: ", grids->points.size(), " grid points × ", plan.n_toys, " toys of ", plan.n_events,
            " events, each scanned over ", grids->scan.size(), " points, on ", world.size(), " rank(s)");
  auto estimators = context.make_estimators(grids->reference);
  load.reset();

  const auto q = q_toys(world, campaign, "calibrate", inference::ToyStage::calibrate, toy_identity, context,
                        estimators, *grids, plan, options);
  if (!options.slice.whole()) return;
  const std::string observed_path = campaign.output_path(campaign.config.get<std::string>("infer.observed"));
  if (!observed && !several) log::info("calibrate: no observed data at '", observed_path, "': belts only");
  if (observed && observed->extent(0) != plan.n_events) {
    log::warning("calibrate: the observed data '", observed_path, "' has ", observed->extent(0),
                 " events but the belts are for calibrate.n_events = ", plan.n_events,
                 ": no confidence set for it (set calibrate.n_events to its count)");
    observed.reset();
  }

  std::optional<profiling::Region> belts("nsbi/calibrate/belts");
  json::Object per_estimator;
  const auto outputs = calibrate_belts(world, campaign, estimators, *grids, q, observed, per_estimator);
  belts.reset();
  const profiling::Region write("nsbi/calibrate/write");
  const Evaluation evaluation = evaluation_of(context, estimators);
  write_results(world, campaign, "calibrate", identity, evaluation, [&](h5::Group& group) {
    write_calibration(group, campaign, context, *grids, plan, q, outputs);
  });
  json::Object body;
  body.set("n_toys_per_point", static_cast<std::int64_t>(plan.n_toys))
      .set("n_events", static_cast<std::int64_t>(plan.n_events))
      .set("grid_points", static_cast<std::int64_t>(grids->points.size()))
      .set("dof", static_cast<std::int64_t>(degrees_of_freedom(grids->scan)))
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "calibrate", identity, evaluation, body);
  remove_toy_journals(world, campaign, "calibrate");
}

}  // namespace nsbi::jobs
