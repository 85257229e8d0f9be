// nsbi infer: the test statistic of the observed data on a θ grid, best fit, Wilks intervals and regions, and
// the posterior on the grid, per estimator (inference/analysis.hpp; docs/statistics.md); with
// infer.posterior: mcmc, posterior samples from Markov chains instead (infer_mcmc.cpp).

#include <algorithm>
#include <cmath>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/analysis.hpp"
#include "nsbi/inference/host_arrays.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/jobs/infer_mcmc.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/memory_bounds.hpp"
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
                     const inference::Grid& grid) {
  using inference::write_array;
  h5::Group g = group.create_group(name);
  const std::size_t n_parameters = grid.n_parameters();
  const std::vector<double> levels = inference::wilks_confidence_levels();
  const std::size_t n_samples = r.samples.size() / std::max<std::size_t>(1, n_parameters);
  const auto shape = grid_shape(grid);
  write_array(g, "t", shape, r.t);
  write_array(g, "q", shape, r.q);
  write_array(g, "best_fit", {n_parameters}, r.best.theta);
  g.write_attribute("t_min", r.best.t);
  g.write_attribute("dof", static_cast<std::int64_t>(r.dof));
  write_array(g, "poi_q", grid_shape(r.poi.grid), r.poi.values);
  for (std::size_t i = 0; i < levels.size(); ++i)
    write_array(g, "region_" + std::to_string(i), grid_shape(r.poi.grid), as_doubles(r.regions[i]));
  g.write_attribute("levels", levels);
  for (const auto& [parameter, values] : r.one_d) {
    write_array(g, "profile/" + parameter, {values.first.size()}, values.first);
    write_array(g, "intervals/" + parameter, {levels.size(), 2}, values.second);
  }
  write_array(g, "posterior", shape, r.posterior);
  for (std::size_t i = 0; i < levels.size(); ++i)
    write_array(g, "hpd_" + std::to_string(i), shape, as_doubles(r.hpd[i]));
  if (n_samples > 0) write_array(g, "posterior_samples", {n_samples, n_parameters}, r.samples);
}

// The grid, the observed events and the analysis settings from the config, checked (collective).
struct InferInputs {
  std::optional<inference::Grid> grid;
  std::optional<inference::Prior> prior;
  Matrix x;
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
    in.x = read_observed(campaign, context.info(), "infer.observed");
  });
  check_infer_memory(world, campaign, context, in.x.extent(0));
  return in;
}

}  // namespace

void check_infer_memory(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                        std::uint64_t observed_events) {
  // The observed events, now counted, against the memory of a rank (validation assumed the config's).
  const MemoryLimit memory = node_memory_limit(ranks_on_this_node(world.get()));
  world.agree([&] {
    check_memory(
        campaign.config,
        estimate_stage_memory(campaign.config, context.info(), "infer", world.size(), observed_events),
        memory);
  });
}

std::vector<std::string> infer_identity_sections(const Campaign& campaign) {
  // The prior section, when given, decides the posterior (its default is the model, already there).
  return campaign.config.has("prior") ? std::vector<std::string>{"infer", "prior"}
                                      : std::vector<std::string>{"infer"};
}

json::Object infer_summary_body(const Campaign& campaign, const InferenceContext& context,
                                const std::vector<json::Object>& summaries) {
  json::Object per_estimator;
  for (std::size_t e = 0; e < summaries.size(); ++e)
    per_estimator.set(context.estimator_names[e], summaries[e]);
  json::Object body;
  body.set("observed", campaign.output_path(campaign.config.get<std::string>("infer.observed")))
      .set("estimators", context.estimator_names)
      .set("results_by_estimator", per_estimator);
  return body;
}

namespace {

void write_infer_results(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                         const std::string& identity, const Evaluation& evaluation, const InferInputs& in,
                         const std::vector<inference::Analysis>& results) {
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
    inference::write_array(group, "log_prior", grid_shape(grid), in.settings.log_prior);
    inference::write_array(group, "observed", {in.x.extent(0), in.x.extent(1)}, inference::host_values(in.x));
    for (std::size_t e = 0; e < results.size(); ++e)
      write_estimator(group, context.estimator_names[e], results[e], grid);
  });
  std::vector<json::Object> summaries;
  for (const auto& r : results) summaries.push_back(r.summary);
  json::Object body = infer_summary_body(campaign, context, summaries);
  // Learned against exact: the agreement acceptance asks for (best fit, overlap of the 68% regions).
  if (results.size() == 2) body.set("comparison", inference::compare_analyses(results[0], results[1], grid));
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
  const std::string identity = stage_identity(campaign, context, infer_identity_sections(campaign), &in.x);
  if (skip_if_complete(world, campaign, "infer", identity, options.force)) return;
  log::info("infer: ", in.x.extent(0), " observed events, ", in.grid->size(),
            " grid points, estimators: ", [&] {
              std::string names;
              for (const auto& n : context.estimator_names) names += (names.empty() ? "" : ", ") + n;
              return names;
            }());
  std::vector<double> reference(in.grid->n_parameters());
  in.grid->point(0, reference.data());
  auto estimators = context.make_estimators(reference);
  load.reset();

  // Every rank computes the (small) scan; rank 0 writes it.
  std::vector<inference::Analysis> results;
  {
    const profiling::Region scan("nsbi/infer/scan");
    world.agree([&] {
      for (auto& estimator : estimators)
        results.push_back(inference::analyse_observed(*estimator, in.x, *in.grid, in.settings));
    });
  }
  const profiling::Region write("nsbi/infer/write");
  world.agree([&] { prepare_directory(campaign.config, "campaign.dir", campaign.dir); }, /*root_only=*/true);
  write_infer_results(world, campaign, context, identity, evaluation_of(context, estimators), in, results);
}

}  // namespace nsbi::jobs
