// The posterior checks of nsbi coverage: simulation-based calibration and expected coverage over runs drawn
// from the prior (jobs/coverage_sbc.hpp; docs/statistics.md, "Simulation-based calibration").

#include "nsbi/jobs/coverage_sbc.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/jobs/infer_mcmc.hpp"
#include "nsbi/jobs/inference_stage.hpp"

namespace nsbi::jobs {
namespace {

// The stage name run_toy_items journals under (work/coverage_sbc, posterior_check_journals).
constexpr const char* journal_stage = "coverage_sbc";
// A parameter's rank histogram is called uniform when its χ² p-value is at least this (docs/statistics.md).
constexpr double uniform_p_value = 1e-3;

bool has_method(const config::Config& config, const std::string& method) {
  const auto methods = config.get<std::vector<std::string>>("coverage.methods");
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

std::int64_t integer_or(const config::Config& config, const std::string& key, std::int64_t fallback) {
  return config.has(key) ? config.get<std::int64_t>(key) : fallback;
}

// The prior's support of every parameter that varies must lie in the infer grid's range: θ* outside it would
// be a value no posterior sample can reach.
void check_support(const config::Config& config, const inference::Grid& grid, PosteriorChecks& checks) {
  const inference::Prior& prior = *checks.prior;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p) {
    const auto& axis = grid.axes()[p];
    checks.ranked.push_back(prior.support_min(p) < prior.support_max(p));
    if (!checks.ranked.back()) continue;
    if (!axis.continuous())
      config.fail("infer.grid." + axis.name,
                  "coverage.methods sbc and expected_coverage need a continuous range of " + axis.name +
                      ", which the prior lets vary");
    if (prior.support_min(p) < axis.values.front() || prior.support_max(p) > axis.values.back())
      config.fail(config.has("prior") ? "prior" : "infer.grid",
                  "coverage.methods sbc and expected_coverage draw θ* from the prior, whose support of " +
                      axis.name + " reaches beyond the infer grid's range [" +
                      std::to_string(axis.values.front()) + ", " + std::to_string(axis.values.back()) +
                      "] (prior: " + prior.yaml() + ")");
  }
}

// run r's values of estimator e in the merged items.
const double* run_values(const PosteriorChecks& checks, const std::vector<double>& merged, std::uint64_t r,
                         std::size_t e, std::size_t n_estimators) {
  return merged.data() + (r * n_estimators + e) * inference::sbc_values(checks.setup);
}

// Estimator e's ranks [runs, P] and credibilities [runs].
void split_runs(const PosteriorChecks& checks, const std::vector<double>& merged, std::size_t e,
                std::size_t n_estimators, std::vector<double>& ranks, std::vector<double>& credibility) {
  const std::size_t n_parameters = checks.ranked.size();
  for (std::uint64_t r = 0; r < checks.runs; ++r) {
    const double* values = run_values(checks, merged, r, e, n_estimators);
    ranks.insert(ranks.end(), values, values + n_parameters);
    credibility.push_back(values[n_parameters]);
  }
}

// The ranks of parameter p out of [runs, P].
std::vector<double> column(const std::vector<double>& rows, std::size_t n_columns, std::size_t p) {
  std::vector<double> out;
  for (std::size_t i = p; i < rows.size(); i += n_columns) out.push_back(rows[i]);
  return out;
}

// #{runs whose θ* lies in the HPD region of credibility `level`}: credibility below the level.
std::uint64_t covered_runs(const std::vector<double>& credibility, double level) {
  return static_cast<std::uint64_t>(
      std::count_if(credibility.begin(), credibility.end(), [level](double c) { return c < level; }));
}

json::Object sbc_entry(const PosteriorChecks& checks, const std::vector<std::string>& names,
                       const std::vector<double>& ranks) {
  json::Object parameters;
  bool uniform = true;
  for (std::size_t p = 0; p < names.size(); ++p) {
    if (!checks.ranked[p]) continue;
    const auto histogram =
        inference::rank_histogram(column(ranks, names.size(), p), checks.setup.n_samples, checks.bins);
    const inference::UniformityTest test = inference::chi2_uniformity(histogram);
    uniform = uniform && test.p_value >= uniform_p_value;
    json::Object entry;
    entry.set("histogram", std::vector<double>(histogram.begin(), histogram.end()))
        .set("chi2", test.chi2)
        .set("dof", static_cast<std::int64_t>(test.dof))
        .set("p_value", test.p_value)
        .set("uniform", test.p_value >= uniform_p_value);
    parameters.set(names[p], entry);
  }
  json::Object entry;
  entry.set("parameters", parameters)
      .set("uniform", uniform)
      .set("verdict", uniform ? "calibrated: every rank histogram is consistent with uniform"
                              : "NOT calibrated: a rank histogram is not uniform (p < 0.001)");
  return entry;
}

json::Object expected_coverage_entry(const PosteriorChecks& checks, const std::vector<double>& credibility) {
  std::vector<json::Object> rows;
  std::int64_t consistent = 0;
  for (const double level : checks.levels) {
    const std::uint64_t covered = covered_runs(credibility, level);
    const inference::BinomialInterval interval = inference::clopper_pearson(covered, checks.runs, 0.95);
    const bool ok = interval.lower <= level && level <= interval.upper;
    consistent += ok ? 1 : 0;
    json::Object row;
    row.set("level", level)
        .set("n_runs", static_cast<std::int64_t>(checks.runs))
        .set("covered", static_cast<std::int64_t>(covered))
        .set("coverage", static_cast<double>(covered) / static_cast<double>(checks.runs))
        .set("standard_error", inference::binomial_standard_error(covered, checks.runs))
        .set("clopper_pearson_95", std::vector<double>{interval.lower, interval.upper})
        .set("consistent_with_nominal", ok);
    rows.push_back(row);
  }
  json::Object entry;
  entry.set("points", rows)
      .set("consistent_fraction", static_cast<double>(consistent) / static_cast<double>(rows.size()));
  return entry;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> posterior_check_runs(const config::Config& config) {
  const auto runs = static_cast<std::uint64_t>(integer_or(config, "coverage.sbc.runs", 200));
  return {runs, std::min<std::uint64_t>(runs, integer_or(config, "coverage.sbc.runs_per_item", 10))};
}

std::uint64_t posterior_check_items(const config::Config& config) {
  if (!wants_posterior_checks(config)) return 0;
  const auto [runs, per_item] = posterior_check_runs(config);
  return (runs + per_item - 1) / per_item;
}

bool wants_posterior_checks(const config::Config& config) {
  return has_method(config, "sbc") || has_method(config, "expected_coverage");
}

void read_posterior_checks(const Campaign& campaign, const InferenceContext& context, std::size_t n_events,
                           PosteriorChecks& checks) {
  const config::Config& config = campaign.config;
  std::tie(checks.runs, checks.runs_per_item) = posterior_check_runs(config);
  checks.bins = static_cast<std::size_t>(integer_or(config, "coverage.sbc.bins", 10));
  checks.levels = config.has("coverage.sbc.levels")
                      ? config.get<std::vector<double>>("coverage.sbc.levels")
                      : std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95};
  inference::SbcSetup& setup = checks.setup;
  setup.n_samples = static_cast<std::size_t>(integer_or(config, "coverage.sbc.samples", 99));
  if ((setup.n_samples + 1) % checks.bins != 0)
    config.fail("coverage.sbc.bins", "is " + std::to_string(checks.bins) + ": it must divide the " +
                                         std::to_string(setup.n_samples + 1) +
                                         " possible ranks (coverage.sbc.samples + 1)");
  checks.grid = grid_from_config(campaign, context, "infer");
  checks.reference.resize(checks.grid->n_parameters());
  checks.grid->point(0, checks.reference.data());
  checks.prior = prior_from_config(campaign, context);
  check_support(config, *checks.grid, checks);
  setup.simulator = context.simulator.get();
  setup.prior = &*checks.prior;
  setup.seed = campaign.seed;
  setup.n_events = n_events;
  if (infer_uses_mcmc(config)) {
    setup.box = mcmc_box(config, *checks.grid, *checks.prior);
    setup.mcmc.chains = static_cast<std::size_t>(integer_or(config, "coverage.sbc.chains", 4));
    setup.mcmc.warmup = static_cast<std::size_t>(integer_or(config, "coverage.sbc.warmup", 200));
    setup.mcmc.thin = static_cast<std::size_t>(integer_or(config, "coverage.sbc.thin", 10));
    context.check_exact("coverage.estimators", {setup.box.lower, setup.box.upper}, checks.reference);
    return;
  }
  setup.grid = &*checks.grid;
  setup.grid_log_prior = checks.prior->log_density_on(*checks.grid);
  if (std::none_of(setup.grid_log_prior.begin(), setup.grid_log_prior.end(),
                   [](double v) { return v > -HUGE_VAL; }))
    config.fail(
        config.has("prior") ? "prior" : "infer.grid",
        "the prior puts no mass on any point of the infer grid (prior: " + checks.prior->yaml() + ")");
  std::vector<std::vector<double>> points(checks.grid->size(), std::vector<double>(checks.reference.size()));
  for (std::size_t k = 0; k < points.size(); ++k) checks.grid->point(k, points[k].data());
  context.check_exact("coverage.estimators", points, checks.reference);
}

std::vector<std::string> posterior_check_sections(const Campaign& campaign) {
  std::vector<std::string> sections;
  for (const char* section : {"infer.posterior", "prior"})
    if (campaign.config.has(section)) sections.emplace_back(section);
  return sections;
}

std::vector<double> run_posterior_checks(const Communicator& world, const Campaign& campaign,
                                         const std::string& identity, inference::Estimators& estimators,
                                         const PosteriorChecks& checks, const StageOptions& options) {
  const std::uint64_t n_items = posterior_check_items(campaign.config);
  Matrix x;
  std::vector<double> merged = run_toy_items(
      world, campaign, journal_stage, identity, n_items,
      checks.runs_per_item * estimators.size() * inference::sbc_values(checks.setup), checks.runs_per_item,
      "runs", options.force,
      [&](std::uint64_t item, double* out) {
        inference::sbc_item(checks.setup, estimators, checks.runs, checks.runs_per_item, item, x, out);
      },
      options.slice);
  merged.resize(options.slice.whole() ? checks.runs * estimators.size() * inference::sbc_values(checks.setup)
                                      : 0);
  return merged;
}

void summarise_posterior_checks(const Campaign& campaign, const PosteriorChecks& checks,
                                const std::vector<double>& merged, std::size_t e, std::size_t n_estimators,
                                json::Object& by_method) {
  std::vector<double> ranks;
  std::vector<double> credibility;
  split_runs(checks, merged, e, n_estimators, ranks, credibility);
  if (has_method(campaign.config, "sbc"))
    by_method.set("sbc", sbc_entry(checks, checks.prior->names(), ranks));
  if (has_method(campaign.config, "expected_coverage"))
    by_method.set("expected_coverage", expected_coverage_entry(checks, credibility));
}

void write_posterior_checks(h5::Group& group, const PosteriorChecks& checks,
                            const std::vector<double>& merged, std::size_t e, std::size_t n_estimators) {
  using inference::write_array;
  const std::size_t n_parameters = checks.ranked.size();
  std::vector<double> ranks;
  std::vector<double> credibility;
  split_runs(checks, merged, e, n_estimators, ranks, credibility);
  std::vector<double> histograms;
  std::vector<double> p_values;
  for (std::size_t p = 0; p < n_parameters; ++p) {
    const auto histogram =
        inference::rank_histogram(column(ranks, n_parameters, p), checks.setup.n_samples, checks.bins);
    histograms.insert(histograms.end(), histogram.begin(), histogram.end());
    p_values.push_back(checks.ranked[p] ? inference::chi2_uniformity(histogram).p_value : std::nan(""));
  }
  write_array(group, "sbc/ranks", {checks.runs, n_parameters}, ranks);
  write_array(group, "sbc/histogram", {n_parameters, checks.bins}, histograms);
  write_array(group, "sbc/p_value", {n_parameters}, p_values);
  std::vector<double> covered;
  for (const double level : checks.levels)
    covered.push_back(static_cast<double>(covered_runs(credibility, level)));
  write_array(group, "expected_coverage/credibility", {checks.runs}, credibility);
  write_array(group, "expected_coverage/covered", {checks.levels.size()}, covered);
}

json::Object posterior_checks_json(const PosteriorChecks& checks) {
  json::Object out;
  out.set("runs", static_cast<std::int64_t>(checks.runs))
      .set("samples", static_cast<std::int64_t>(checks.setup.n_samples))
      .set("bins", static_cast<std::int64_t>(checks.bins))
      .set("levels", checks.levels)
      .set("posterior", checks.setup.grid ? "grid" : "mcmc")
      .set("prior", checks.prior->yaml());
  if (!checks.setup.grid)
    out.set("chains", static_cast<std::int64_t>(checks.setup.mcmc.chains))
        .set("warmup", static_cast<std::int64_t>(checks.setup.mcmc.warmup))
        .set("thin", static_cast<std::int64_t>(checks.setup.mcmc.thin));
  return out;
}

void write_posterior_check_settings(h5::Group& group, const PosteriorChecks& checks) {
  const std::size_t n_parameters = checks.ranked.size();
  std::vector<double> truth;
  for (std::uint64_t r = 0; r < checks.runs; ++r) {
    const std::vector<double> theta = inference::sbc_truth(checks.setup, r);
    truth.insert(truth.end(), theta.begin(), theta.end());
  }
  inference::write_array(group, "theta_true", {checks.runs, n_parameters}, truth);
  group.write_attribute("sbc_runs", static_cast<std::int64_t>(checks.runs));
  group.write_attribute("sbc_samples", static_cast<std::int64_t>(checks.setup.n_samples));
  group.write_attribute("sbc_bins", static_cast<std::int64_t>(checks.bins));
  group.write_attribute("expected_coverage_levels", checks.levels);
  group.write_attribute("posterior", std::string(checks.setup.grid ? "grid" : "mcmc"));
  group.write_attribute("prior", checks.prior->yaml());
  group.write_attribute("parameters", checks.prior->names());
}

void remove_posterior_check_journals(const Communicator& world, const Campaign& campaign) {
  remove_toy_journals(world, campaign, journal_stage);
}

}  // namespace nsbi::jobs
