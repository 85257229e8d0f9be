// nsbi infer: the test statistic of the observed data on a θ grid, best fit, Wilks intervals and regions, and
// the posterior on the grid, per observed dataset and estimator (inference/analysis.hpp; docs/statistics.md;
// several datasets and infer.outputs: infer_datasets.hpp); with infer.posterior: mcmc, posterior samples
// from Markov chains instead (infer_mcmc.cpp).

#include <algorithm>
#include <cmath>
#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/analysis.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/jobs/infer_datasets.hpp"
#include "nsbi/jobs/infer_mcmc.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/inference_stage.hpp"
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

void write_estimator(h5::Group& group, const std::string& name, const inference::Analysis& r,
                     const inference::Grid& grid, const InferOutputs& outputs) {
  using inference::write_array;
  h5::Group g = group.create_group(name);
  const std::size_t n_parameters = grid.n_parameters();
  const std::vector<double> levels = inference::wilks_confidence_levels();
  const std::size_t n_samples = r.samples.size() / std::max<std::size_t>(1, n_parameters);
  const auto shape = grid_shape(grid);
  if (outputs.grid) {
    write_array(g, "t", shape, r.t);
    write_array(g, "q", shape, r.q);
  }
  if (outputs.best_fit) {
    write_array(g, "best_fit", {n_parameters}, r.best.theta);
    g.write_attribute("t_min", r.best.t);
    g.write_attribute("dof", static_cast<std::int64_t>(r.dof));
  }
  if (outputs.grid) {
    write_array(g, "poi_q", grid_shape(r.poi.grid), r.poi.values);
    for (std::size_t i = 0; i < levels.size(); ++i)
      write_array(g, "region_" + std::to_string(i), grid_shape(r.poi.grid), as_doubles(r.regions[i]));
  }
  if (outputs.grid || outputs.intervals) g.write_attribute("levels", levels);
  if (outputs.intervals)
    for (const auto& [parameter, values] : r.one_d) {
      write_array(g, "profile/" + parameter, {values.first.size()}, values.first);
      write_array(g, "intervals/" + parameter, {levels.size(), 2}, values.second);
    }
  if (outputs.grid) {
    write_array(g, "posterior", shape, r.posterior);
    for (std::size_t i = 0; i < levels.size(); ++i)
      write_array(g, "hpd_" + std::to_string(i), shape, as_doubles(r.hpd[i]));
  }
  if (outputs.posterior_samples && n_samples > 0)
    write_array(g, "posterior_samples", {n_samples, n_parameters}, r.samples);
}

// The grid, the observed datasets, the outputs asked and the analysis settings from the config, checked
// (collective).
struct InferInputs {
  std::optional<inference::Grid> grid;
  std::optional<inference::Prior> prior;
  InferObserved observed;
  InferOutputs outputs;
  inference::AnalysisSettings settings;
};

InferInputs infer_inputs(const Communicator& world, const Campaign& campaign,
                         const InferenceContext& context) {
  const config::Config& config = campaign.config;
  InferInputs in;
  in.settings.refine.enabled = config.get<bool>("infer.refine");
  in.settings.posterior_samples =
      static_cast<std::size_t>(config.get<std::int64_t>("infer.posterior_samples"));
  in.settings.seed = campaign.seed;
  in.outputs = infer_outputs(config);
  world.agree([&] {
    in.grid = grid_from_config(campaign, context, "infer");
    const auto profile_names = config.get<std::vector<std::string>>("infer.profile");
    for (const auto& name : context.parameter_names())
      in.settings.profiled.push_back(std::find(profile_names.begin(), profile_names.end(), name) !=
                                     profile_names.end());
    std::vector<std::vector<double>> points(in.grid->size(), std::vector<double>(in.grid->n_parameters()));
    for (std::size_t k = 0; k < in.grid->size(); ++k) in.grid->point(k, points[k].data());
    context.check_exact("infer.estimators", points, points[0]);
    in.prior = prior_from_config(campaign, context);
    in.settings.log_prior = in.prior->log_density_on(*in.grid);
    if (std::none_of(in.settings.log_prior.begin(), in.settings.log_prior.end(),
                     [](double v) { return v > -HUGE_VAL; }))
      config.fail(config.has("prior") ? "prior" : "infer.grid",
                  "the prior puts no mass on any point of the infer grid (prior: " + in.prior->yaml() + ")");
    in.observed = read_infer_datasets(campaign, context.info());
  });
  check_infer_memory(world, campaign, context, in.observed.datasets);
  return in;
}

// One dataset's analyses (one per estimator), holding only what infer.outputs writes, and learned against
// exact when both ran: the agreement acceptance asks for (best fit, overlap of the 68% regions).
struct DatasetResults {
  std::vector<inference::Analysis> analyses;
  std::optional<json::Object> comparison;
};

// Frees the full-grid arrays, samples and profiles infer.outputs does not ask for (the summary stays), so
// that many datasets hold only what is written.
void keep_outputs(inference::Analysis& r, const InferOutputs& outputs) {
  if (!outputs.grid) {
    r.t = {};
    r.q = {};
    r.poi.values = {};
    r.regions = {};
    r.posterior = {};
    r.hpd = {};
  }
  if (!outputs.intervals) r.one_d = {};
  if (!outputs.posterior_samples) r.samples = {};
}

// Local: every dataset analysed with every estimator, one dataset after the other.
std::vector<DatasetResults> analyse_datasets(
    const InferInputs& in, std::vector<std::unique_ptr<inference::RatioEstimator>>& estimators) {
  std::vector<DatasetResults> results(in.observed.datasets.size());
  for (std::size_t d = 0; d < in.observed.datasets.size(); ++d) {
    DatasetResults& r = results[d];
    for (auto& estimator : estimators)
      r.analyses.push_back(
          inference::analyse_observed(*estimator, in.observed.datasets[d].x, *in.grid, in.settings));
    if (r.analyses.size() == 2)
      r.comparison = inference::compare_analyses(r.analyses[0], r.analyses[1], *in.grid);
    for (auto& analysis : r.analyses) keep_outputs(analysis, in.outputs);
  }
  return results;
}

void write_infer_results(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                         const std::string& identity, const Evaluation& evaluation, const InferInputs& in,
                         const std::vector<DatasetResults>& results) {
  const inference::Grid& grid = *in.grid;
  write_results(world, campaign, "infer", identity, evaluation, [&](h5::Group& group) {
    for (const auto& axis : grid.axes())
      inference::write_array(group, "grid/" + axis.name, {axis.values.size()}, axis.values);
    const std::vector<std::string> names = context.parameter_names();
    group.write_attribute("parameters", names);
    std::vector<std::string> interest;
    for (std::size_t p = 0; p < names.size(); ++p)
      if (!in.settings.profiled[p]) interest.push_back(names[p]);
    group.write_attribute("parameters_of_interest", interest);
    group.write_attribute("estimators", context.estimator_names);
    group.write_attribute("prior", in.prior->yaml());
    if (in.observed.per_dataset) group.write_attribute("datasets", dataset_names(in.observed.datasets));
    if (in.outputs.grid) inference::write_array(group, "log_prior", grid_shape(grid), in.settings.log_prior);
    for (std::size_t d = 0; d < in.observed.datasets.size(); ++d)
      write_dataset_group(group, in.observed.datasets[d], in.observed.per_dataset, [&](h5::Group& g) {
        for (std::size_t e = 0; e < results[d].analyses.size(); ++e)
          write_estimator(g, context.estimator_names[e], results[d].analyses[e], grid, in.outputs);
      });
  });
  const json::Object body =
      infer_summary_body(campaign, context, in.observed, [&](json::Object& o, std::size_t d) {
        std::vector<json::Object> summaries;
        for (const auto& r : results[d].analyses) summaries.push_back(r.summary);
        o.set("results_by_estimator", by_estimator(context, summaries));
        if (results[d].comparison) o.set("comparison", *results[d].comparison);
      });
  write_summary(world, campaign, "infer", identity, evaluation, body);
}

}  // namespace

void run_infer(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  std::optional<profiling::Region> load("nsbi/infer/load");
  const InferenceContext context = load_inference(world, campaign, "infer", options.allow_extrapolation);
  if (infer_uses_mcmc(campaign.config)) {
    load.reset();
    run_infer_mcmc(world, campaign, context, options);
    return;
  }
  const InferInputs in = infer_inputs(world, campaign, context);
  const std::string identity = infer_identity(campaign, context, in.observed);
  if (skip_if_complete(world, campaign, "infer", identity, options.force)) return;
  log::info("infer: ", in.observed.datasets.size(), " observed dataset(s) of ",
            total_events(in.observed.datasets), " events in all, ", in.grid->size(),
            " grid points, estimators: ", [&] {
              std::string names;
              for (const auto& n : context.estimator_names) names += (names.empty() ? "" : ", ") + n;
              return names;
            }());
  std::vector<double> reference(in.grid->n_parameters());
  in.grid->point(0, reference.data());
  auto estimators = context.make_estimators(reference);
  load.reset();

  // Every rank computes the (small) scans; rank 0 writes them.
  std::vector<DatasetResults> results;
  {
    const profiling::Region scan("nsbi/infer/scan");
    world.agree([&] { results = analyse_datasets(in, estimators); });
  }
  const profiling::Region write("nsbi/infer/write");
  world.agree([&] { prepare_directory(campaign.config, "campaign.dir", campaign.dir); }, /*root_only=*/true);
  write_infer_results(world, campaign, context, identity, evaluation_of(context, estimators), in, results);
}

}  // namespace nsbi::jobs
