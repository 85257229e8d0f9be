// nsbi coverage: how often the Wilks and Neyman intervals of toys at chosen true values θ* contain θ*, with
// Clopper–Pearson uncertainty (inference/neyman.hpp; docs/statistics.md), and the posterior checks over θ*
// drawn from the prior (coverage_sbc.hpp). Toys and runs are work items spread over the ranks and journaled;
// a toy depends only on (seed, stage, θ index, toy index), a run on (seed, run index).

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/neyman.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/summary.hpp"
#include "nsbi/jobs/coverage_sbc.hpp"
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

// What the stage runs: the toys of wilks and neyman, and the posterior checks, each when asked for.
struct CoverageInputs {
  std::vector<std::string> methods;
  bool neyman = false;
  std::optional<ToyGrids> grids;  // with wilks or neyman
  std::vector<inference::BeltTable> belts;
  std::optional<PosteriorChecks> checks;  // with sbc or expected_coverage; filled in place
};

bool has(const std::vector<std::string>& methods, const char* method) {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

// Collective: the methods' inputs, checked.
void read_coverage_inputs(const Communicator& world, const Campaign& campaign,
                          const InferenceContext& context, const inference::ToyPlan& plan,
                          CoverageInputs& in) {
  const config::Config& config = campaign.config;
  in.methods = config.get<std::vector<std::string>>("coverage.methods");
  in.neyman = has(in.methods, "neyman");
  world.agree([&] {
    if (in.methods.empty()) config.fail("coverage.methods", "name at least one method");
    if (in.neyman || has(in.methods, "wilks")) in.grids = toy_grids(campaign, context, "coverage");
    if (in.neyman) in.belts = coverage_belts(campaign, context, plan);
    if (wants_posterior_checks(config)) {
      in.checks.emplace();
      read_posterior_checks(campaign, context, plan.n_events, *in.checks);
    }
  });
}

std::string coverage_identity(const Campaign& campaign, const InferenceContext& context,
                              const CoverageInputs& in) {
  // With neyman, calibrate's config decides the belts the intervals use.
  std::vector<std::string> sections = {"coverage", "infer.grid", "infer.refine"};
  if (in.neyman) sections.push_back("calibrate");
  if (in.checks) {
    const auto more = posterior_check_sections(campaign);
    sections.insert(sections.end(), more.begin(), more.end());
  }
  return stage_identity(campaign, context, sections);
}

void log_plan(const Communicator& world, const CoverageInputs& in, const inference::ToyPlan& plan) {
  if (in.grids)
    log::info("coverage: ", in.grids->points.size(), " true points × ", plan.n_toys, " toys of ",
              plan.n_events, " events on ", world.size(), " rank(s)");
  if (in.checks)
    log::info("coverage: ", in.checks->runs, " runs of θ* from the prior, ", plan.n_events, " events and ",
              in.checks->setup.n_samples, " posterior samples (", in.checks->setup.grid ? "grid" : "mcmc",
              ") each on ", world.size(), " rank(s)");
}

// The results of one estimator: its entry of coverage.json and, for the toys, covered[method][l · K + k].
json::Object estimator_results(const Campaign& campaign, const CoverageInputs& in,
                               const std::vector<std::vector<double>>* q, const std::vector<double>& merged,
                               std::size_t e, std::size_t n_estimators,
                               std::vector<std::vector<double>>& covered) {
  const std::vector<double> levels = campaign.config.get<std::vector<double>>("coverage.levels");
  json::Object by_method;
  for (const auto& method : in.methods) {
    if (method != "wilks" && method != "neyman") continue;
    json::Object entry;
    covered.push_back(
        method_coverage(method, *q, in.neyman ? &in.belts[e] : nullptr, *in.grids, levels, entry));
    by_method.set(method, entry);
  }
  if (in.checks) summarise_posterior_checks(campaign, *in.checks, merged, e, n_estimators, by_method);
  return by_method;
}

void write_toys(h5::Group& group, const Campaign& campaign, const ToyGrids& grids,
                const inference::ToyPlan& plan) {
  write_grid(group, grids.points);
  group.write_attribute("levels", campaign.config.get<std::vector<double>>("coverage.levels"));
  group.write_attribute("dof", static_cast<std::int64_t>(degrees_of_freedom(grids.scan)));
  group.write_attribute("n_toys", static_cast<std::int64_t>(plan.n_toys));
}

// Every estimator's entry of coverage.json and, for the toys, covered[e][toy method][l · K + k].
struct CoverageSummary {
  json::Object per_estimator;
  std::vector<std::vector<std::vector<double>>> covered;
};

CoverageSummary summarise_coverage(const Campaign& campaign, const InferenceContext& context,
                                   const CoverageInputs& in,
                                   const std::vector<std::vector<std::vector<double>>>& q,
                                   const std::vector<double>& merged) {
  const std::size_t n_estimators = context.estimator_names.size();
  CoverageSummary summary;
  summary.covered.resize(n_estimators);
  for (std::size_t e = 0; e < n_estimators; ++e)
    summary.per_estimator.set(context.estimator_names[e],
                              estimator_results(campaign, in, in.grids ? &q[e] : nullptr, merged, e,
                                                n_estimators, summary.covered[e]));
  return summary;
}

// Collective: /coverage of results.h5 and coverage.json.
void write_coverage(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                    const CoverageInputs& in, const inference::ToyPlan& plan,
                    const std::vector<std::vector<std::vector<double>>>& q, const std::vector<double>& merged,
                    const CoverageSummary& summary, const Evaluation& evaluation) {
  const std::size_t n_estimators = context.estimator_names.size();
  std::vector<std::string> toy_methods;
  for (const auto& method : in.methods)
    if (method == "wilks" || method == "neyman") toy_methods.push_back(method);
  const std::size_t n_levels = campaign.config.get<std::vector<double>>("coverage.levels").size();
  const std::string identity = coverage_identity(campaign, context, in);
  write_results(world, campaign, "coverage", identity, evaluation, [&](h5::Group& group) {
    group.write_attribute("n_events", static_cast<std::int64_t>(plan.n_events));
    group.write_attribute("methods", in.methods);
    group.write_attribute("estimators", context.estimator_names);
    if (in.grids) write_toys(group, campaign, *in.grids, plan);
    if (in.checks) write_posterior_check_settings(group, *in.checks);
    for (std::size_t e = 0; e < n_estimators; ++e) {
      h5::Group g = group.create_group(context.estimator_names[e]);
      if (in.grids)
        inference::write_array(g, "q_toys", {in.grids->points.size(), static_cast<std::size_t>(plan.n_toys)},
                               flatten(q[e]));
      for (std::size_t m = 0; m < toy_methods.size(); ++m)
        inference::write_array(g, toy_methods[m] + "/covered", {n_levels, in.grids->points.size()},
                               summary.covered[e][m]);
      if (in.checks) write_posterior_checks(g, *in.checks, merged, e, n_estimators);
    }
  });
  json::Object body;
  body.set("n_events", static_cast<std::int64_t>(plan.n_events)).set("methods", in.methods);
  if (in.grids)
    body.set("n_toys_per_point", static_cast<std::int64_t>(plan.n_toys))
        .set("dof", static_cast<std::int64_t>(degrees_of_freedom(in.grids->scan)));
  if (in.checks) body.set("posterior_checks", posterior_checks_json(*in.checks));
  body.set("results_by_estimator", summary.per_estimator);
  write_summary(world, campaign, "coverage", identity, evaluation, body);
}

}  // namespace

void run_coverage(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  std::optional<profiling::Region> load("nsbi/coverage/load");
  const InferenceContext context = load_inference(world, campaign, "coverage", options.allow_extrapolation);
  const inference::ToyPlan plan = toy_plan(campaign.config, "coverage");
  CoverageInputs in;
  read_coverage_inputs(world, campaign, context, plan, in);
  const std::string identity = coverage_identity(campaign, context, in);
  if (skip_if_complete(world, campaign, "coverage", identity, options.force)) return;
  log_plan(world, in, plan);
  auto estimators = context.make_estimators(in.grids ? in.grids->reference : in.checks->reference);
  load.reset();

  std::vector<std::vector<std::vector<double>>> q;
  if (in.grids)
    q = q_toys(world, campaign, "coverage", inference::ToyStage::coverage, identity, context, estimators,
               *in.grids, plan, options);
  std::vector<double> merged;
  if (in.checks) {
    const profiling::Region region("nsbi/coverage/posterior_checks");
    merged = run_posterior_checks(world, campaign, identity, estimators, *in.checks, options);
  }
  if (!options.slice.whole()) return;

  std::optional<profiling::Region> belts("nsbi/coverage/belts");
  const CoverageSummary summary = summarise_coverage(campaign, context, in, q, merged);
  belts.reset();
  const profiling::Region write("nsbi/coverage/write");
  write_coverage(world, campaign, context, in, plan, q, merged, summary, evaluation_of(context, estimators));
  if (in.grids) remove_toy_journals(world, campaign, "coverage");
  if (in.checks) remove_posterior_check_journals(world, campaign);
}

}  // namespace nsbi::jobs
