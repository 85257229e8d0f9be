// nsbi infer with infer.posterior: mcmc: the chains of each estimator over the infer grid's box, spread over
// the ranks and gathered in chain order, their R̂ and bulk ESS, written without any grid array
// (inference/mcmc.hpp; docs/statistics.md, "Posterior sampling").

#include "nsbi/jobs/infer_mcmc.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/mcmc.hpp"
#include "nsbi/inference/mcmc_diagnostics.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/jobs/infer_datasets.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/progress.hpp"

namespace nsbi::jobs {
namespace {

struct McmcInputs {
  std::optional<inference::Prior> prior;
  inference::McmcPrior target_prior;  // the sampler's view of `prior`: its box and log density
  inference::McmcSettings settings;
  InferObserved observed;
  bool samples_written = true;  // infer.outputs asks for posterior_samples
};

struct McmcResult {
  inference::ChainDraws draws;
  inference::ChainDiagnostics diagnostics;
  json::Object summary;
};

// The settings, the prior, the box, the outputs and the observed datasets (collective).
void read_mcmc_inputs(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                      McmcInputs& in) {
  const config::Config& config = campaign.config;
  in.settings = mcmc_settings(config);
  const InferOutputs outputs = infer_outputs(config);
  if (outputs.best_fit || outputs.intervals || outputs.grid)
    config.fail("infer.outputs",
                "infer.posterior: mcmc writes posterior samples only: list posterior_samples "
                "alone (or nothing: the summaries only)");
  in.samples_written = outputs.posterior_samples;
  world.agree([&] {
    in.prior = prior_from_config(campaign, context);
    in.target_prior = mcmc_box(config, grid_from_config(campaign, context, "infer"), *in.prior);
    context.check_exact("infer.estimators", {in.target_prior.lower, in.target_prior.upper},
                        in.target_prior.lower);
    in.observed = read_infer_datasets(campaign, context.info());
  });
  check_infer_memory(world, campaign, context, in.observed.datasets);
}

json::Object mcmc_summary(const McmcInputs& in, const McmcResult& r, const std::vector<std::string>& names,
                          std::size_t n_events) {
  const std::size_t n_parameters = names.size();
  const std::size_t n = r.draws.samples.size() / n_parameters;
  json::Object parameters;
  for (std::size_t p = 0; p < n_parameters; ++p) {
    // Sums of the differences to the first draw: exact for a parameter held fixed, and no cancellation.
    const double first = r.draws.samples[p];
    double shift = 0;
    double squares = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double d = r.draws.samples[i * n_parameters + p] - first;
      shift += d;
      squares += d * d;
    }
    shift /= static_cast<double>(n);
    const double mean = first + shift;
    const double variance = std::max(0.0, squares - static_cast<double>(n) * shift * shift);
    json::Object entry;
    entry.set("mean", mean)
        .set("std", std::sqrt(variance / static_cast<double>(n)))
        .set("rhat", r.diagnostics.rhat[p])
        .set("ess_bulk", r.diagnostics.ess_bulk[p]);
    parameters.set(names[p], entry);
  }
  json::Object posterior;
  posterior.set("method", "mcmc")
      .set("sampler", "slice")
      .set("chains", static_cast<std::int64_t>(in.settings.chains))
      .set("warmup", static_cast<std::int64_t>(in.settings.warmup))
      .set("samples_per_chain", static_cast<std::int64_t>(in.settings.samples))
      .set("thin", static_cast<std::int64_t>(in.settings.thin))
      .set("seed", static_cast<std::int64_t>(in.settings.seed))
      .set("evaluations", static_cast<std::int64_t>(r.draws.evaluations))
      .set("converged", r.diagnostics.converged())
      .set("warnings", r.diagnostics.warnings)
      .set("parameters", parameters);
  json::Object summary;
  summary.set("posterior", posterior).set("n_events", static_cast<std::int64_t>(n_events));
  return summary;
}

// Collective: the chains of one estimator for the events x, this rank's share run locally with progress on
// rank 0.
McmcResult sample_estimator(const Communicator& world, inference::RatioEstimator& estimator,
                            const McmcInputs& in, const Matrix& x, const std::vector<std::string>& names) {
  const std::size_t n_parameters = names.size();
  // Plain names, not a structured binding: C++17 lambdas cannot capture bindings (clang refuses it).
  const std::pair<std::size_t, std::size_t> share =
      inference::chains_of_rank(in.settings.chains, world.rank(), world.size());
  const std::size_t first = share.first;
  const std::size_t n_chains = share.second;
  const std::uint64_t per_chain = in.settings.warmup + in.settings.samples * in.settings.thin;
  Progress progress("infer: mcmc (" + estimator.name() + ", rank 0's chains)", n_chains * per_chain,
                    "iterations", world.is_root());
  inference::ChainDraws local;
  world.agree([&] {
    local = inference::run_chains(inference::observed_log_likelihood(estimator, x, n_parameters),
                                  in.target_prior, in.settings, first, n_chains,
                                  [&](std::uint64_t done) { progress.update(done); });
  });
  progress.finish();
  McmcResult r;
  r.draws = inference::gather_chains(world, local, in.settings, n_parameters);
  r.diagnostics = inference::diagnose_chains(r.draws.samples, in.settings.chains, names);
  r.summary = mcmc_summary(in, r, names, x.extent(0));
  const double worst_rhat = *std::max_element(r.diagnostics.rhat.begin(), r.diagnostics.rhat.end());
  const double least_ess = *std::min_element(r.diagnostics.ess_bulk.begin(), r.diagnostics.ess_bulk.end());
  log::info("infer: mcmc (", estimator.name(), "): ", in.settings.chains, " chains × ", in.settings.samples,
            " draws, ", r.draws.evaluations, " evaluations; largest R̂ ", worst_rhat, ", smallest bulk ESS ",
            least_ess, r.diagnostics.converged() ? ": converged" : ": NOT converged");
  for (const auto& warning : r.diagnostics.warnings)
    log::warning("infer: mcmc (", estimator.name(), "): ", warning);
  return r;
}

void write_mcmc_estimator(h5::Group& group, const std::string& name, const McmcInputs& in,
                          const McmcResult& r, std::size_t n_parameters) {
  using inference::write_array;
  h5::Group g = group.create_group(name);
  const std::size_t draws = in.settings.chains * in.settings.samples;
  if (in.samples_written) {
    write_array(g, "posterior_samples", {draws, n_parameters}, r.draws.samples);
    write_array(g, "log_posterior", {draws}, r.draws.log_posterior);
  }
  write_array(g, "rhat", {n_parameters}, r.diagnostics.rhat);
  write_array(g, "ess_bulk", {n_parameters}, r.diagnostics.ess_bulk);
  g.write_attribute("chains", static_cast<std::int64_t>(in.settings.chains));
  g.write_attribute("samples_per_chain", static_cast<std::int64_t>(in.settings.samples));
  g.write_attribute("warmup", static_cast<std::int64_t>(in.settings.warmup));
  g.write_attribute("thin", static_cast<std::int64_t>(in.settings.thin));
  g.write_attribute("mcmc_seed", static_cast<std::int64_t>(in.settings.seed));
  g.write_attribute("evaluations", static_cast<std::int64_t>(r.draws.evaluations));
  g.write_attribute("converged", static_cast<std::int64_t>(r.diagnostics.converged()));
}

// results[d][e]: dataset d's chains of estimator e.
void write_mcmc_results(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                        const std::string& identity, const Evaluation& evaluation, const McmcInputs& in,
                        const std::vector<std::vector<McmcResult>>& results) {
  using inference::write_array;
  const std::vector<std::string> names = context.parameter_names();
  const std::size_t n_parameters = names.size();
  write_results(world, campaign, "infer", identity, evaluation, [&](h5::Group& group) {
    group.write_attribute("posterior", std::string("mcmc"));
    group.write_attribute("prior", in.prior->yaml());
    group.write_attribute("parameters", names);
    group.write_attribute("estimators", context.estimator_names);
    if (in.observed.per_dataset) group.write_attribute("datasets", dataset_names(in.observed.datasets));
    write_array(group, "box/lower", {n_parameters}, in.target_prior.lower);
    write_array(group, "box/upper", {n_parameters}, in.target_prior.upper);
    for (std::size_t d = 0; d < in.observed.datasets.size(); ++d)
      write_dataset_group(group, in.observed.datasets[d], in.observed.per_dataset, [&](h5::Group& g) {
        for (std::size_t e = 0; e < results[d].size(); ++e)
          write_mcmc_estimator(g, context.estimator_names[e], in, results[d][e], n_parameters);
      });
  });
  const json::Object body =
      infer_summary_body(campaign, context, in.observed, [&](json::Object& o, std::size_t d) {
        std::vector<json::Object> summaries;
        for (const auto& r : results[d]) summaries.push_back(r.summary);
        o.set("results_by_estimator", by_estimator(context, summaries));
      });
  write_summary(world, campaign, "infer", identity, evaluation, body);
}

}  // namespace

inference::McmcPrior mcmc_box(const config::Config& config, const inference::Grid& grid,
                              const inference::Prior& prior) {
  const std::string key = config.has("prior") ? "prior" : "infer.grid";
  inference::McmcPrior box;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p) {
    const auto& axis = grid.axes()[p];
    if (axis.discrete && axis.values.size() > 1)
      config.fail("infer.grid." + axis.name + ".values",
                  "infer.posterior: mcmc samples continuous parameters only: give one hypothesis of " +
                      axis.name + " (a list of one value)");
    const bool held = axis.values.size() == 1;
    box.lower.push_back(held ? axis.values.front() : std::max(axis.values.front(), prior.support_min(p)));
    box.upper.push_back(held ? axis.values.front() : std::min(axis.values.back(), prior.support_max(p)));
    if (!(box.lower[p] <= box.upper[p]))
      config.fail(key, "the prior's support of " + axis.name +
                           " and the infer grid's range do not overlap (prior: " + prior.yaml() + ")");
  }
  if (box.lower == box.upper)
    config.fail("infer.posterior",
                "mcmc: every parameter is held fixed (one infer.grid value each): nothing to sample");
  std::vector<double> middle(box.lower.size());
  for (std::size_t p = 0; p < middle.size(); ++p) middle[p] = 0.5 * (box.lower[p] + box.upper[p]);
  if (!(prior.log_density(middle) > -HUGE_VAL))
    config.fail(key, "the prior is zero in the middle of the box the chains would explore (prior: " +
                         prior.yaml() + ")");
  box.log_density = [&prior](const double* theta) { return prior.log_density(theta); };
  return box;
}

void run_infer_mcmc(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                    const StageOptions& options) {
  std::optional<profiling::Region> load("nsbi/infer/load");
  // Filled in place: the box's log density refers to the prior it holds.
  McmcInputs in;
  read_mcmc_inputs(world, campaign, context, in);
  const std::string identity = infer_identity(campaign, context, in.observed);
  if (skip_if_complete(world, campaign, "infer", identity, options.force)) return;
  log::info("infer: ", in.observed.datasets.size(), " observed dataset(s) of ",
            total_events(in.observed.datasets), " events in all, posterior by ", in.settings.chains,
            " chains over ", world.size(), " rank(s): ", in.settings.warmup, " warm-up and ",
            in.settings.samples * in.settings.thin, " iterations each (seed ", in.settings.seed, ")");
  auto estimators = context.make_estimators(in.target_prior.lower);
  load.reset();
  // The datasets one after the other, each one's chains spread over the ranks as for one dataset.
  std::vector<std::vector<McmcResult>> results(in.observed.datasets.size());
  {
    const profiling::Region sample("nsbi/infer/mcmc");
    for (std::size_t d = 0; d < in.observed.datasets.size(); ++d)
      for (auto& estimator : estimators)
        results[d].push_back(
            sample_estimator(world, *estimator, in, in.observed.datasets[d].x, context.parameter_names()));
  }
  const profiling::Region write("nsbi/infer/write");
  world.agree([&] { prepare_directory(campaign.config, "campaign.dir", campaign.dir); }, /*root_only=*/true);
  write_mcmc_results(world, campaign, context, identity, evaluation_of(context, estimators), in, results);
}

}  // namespace nsbi::jobs
