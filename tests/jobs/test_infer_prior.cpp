// The prior of `nsbi infer` on a tiny gaussian2d campaign with the exact estimator (no model): the default
// prior is flat on the grid, and a normal prior on mu2 moves the grid posterior by exactly its log density:
// log p_k − log p_0 changes by −(z_k² − z_0²)/2, z = (mu2 − mean)/sd, computed here from the grid alone.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/jobs/stages.hpp"
#include "stage_results.hpp"

namespace nsbi::jobs {
namespace {

Campaign campaign_with(const std::string& dir, const std::string& prior_yaml) {
  // Observed data only (no training set is needed by the exact estimator).
  const std::string yaml =
      "campaign: {seed: 5, dir: " + dir +
      "}\n"
      "simulator: {name: gaussian2d}\n"
      "simulate: {n_samples: 1000, observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 10}}\n"
      "infer:\n"
      "  estimators: [exact]\n"
      "  posterior_samples: 100\n"
      "  grid: {mu2: {min: -0.9, max: 0.9, points: 7}, rho12: {min: -0.9, max: 0.9, points: 5}}\n" +
      prior_yaml;
  return test::campaign_from_yaml(yaml, "prior.yaml");
}

using test::read_doubles;

struct Posterior {
  std::vector<double> mu2;
  std::vector<double> t;
  std::vector<double> posterior;
  std::vector<double> log_prior;
  std::string prior;
};

Posterior infer(const Communicator& world, const Campaign& campaign) {
  run_simulate(world, campaign, /*force=*/true);  // the observed events
  StageOptions options;
  options.force = true;
  run_infer(world, campaign, options);
  const h5::File file = h5::File::open(campaign.output_path("results.h5"), MPI_COMM_SELF, h5::Access::read);
  const h5::Group group = file.root().open_group("infer");
  return {read_doubles(group, "grid/mu2"), read_doubles(group, "exact/t"),
          read_doubles(group, "exact/posterior"), read_doubles(group, "log_prior"),
          group.read_attribute<std::string>("prior")};
}

TEST(InferPrior, NormalPriorMovesThePosteriorByItsLogDensity) {
  const Communicator world;
  const std::string base = "/tmp/nsbi-test-infer-prior-np" + std::to_string(world.size());
  const Posterior flat = infer(world, campaign_with(base + "/flat", ""));
  const double mean = 0.5;
  const double sd = 0.2;
  const Posterior normal =
      infer(world, campaign_with(base + "/normal", "prior:\n  mu2: {kind: normal, mean: 0.5, sd: 0.2}\n"));
  if (!world.is_root()) return;
  // Without a model the default prior is flat over the simulator's domain.
  EXPECT_EQ(flat.prior,
            "mu2: {kind: uniform, min: -1, max: 1}\nrho12: {kind: uniform, min: -0.99, max: 0.99}");
  for (double v : flat.log_prior) EXPECT_EQ(v, flat.log_prior[0]);
  EXPECT_EQ(
      normal.prior,
      "mu2: {kind: normal, mean: 0.5, sd: 0.2, min: -1, max: 1}\nrho12: {kind: uniform, min: -0.99, max: "
      "0.99}");
  ASSERT_EQ(flat.t, normal.t);  // the same events and estimator: only the prior differs
  const std::size_t n_rho = flat.t.size() / flat.mu2.size();
  const auto z2 = [&](std::size_t k) {
    const double z = (flat.mu2[k / n_rho] - mean) / sd;
    return z * z;
  };
  for (std::size_t k = 1; k < flat.t.size(); ++k) {
    const double shift =
        std::log(normal.posterior[k] / normal.posterior[0]) - std::log(flat.posterior[k] / flat.posterior[0]);
    // Each posterior value is within a few ulps; the log ratios then within ~1e-14 of a unit.
    EXPECT_NEAR(shift, -0.5 * (z2(k) - z2(0)), 1e-12) << k;
  }
}

TEST(InferPrior, ConfigErrorsNameTheKey) {
  const Communicator world;
  const std::string base = "/tmp/nsbi-test-infer-prior-errors-np" + std::to_string(world.size());
  const auto message = [&](const std::string& prior) -> std::string {
    try {
      const Campaign campaign = campaign_with(base, prior);
      run_simulate(world, campaign, /*force=*/true);
      StageOptions options;
      options.force = true;
      run_infer(world, campaign, options);
    } catch (const Error& e) {  // a ConfigError, as every rank agreed on it
      EXPECT_EQ(e.code(), ExitCode::usage);
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message("prior:\n  mu2: {kind: normal, mean: 0, sd: 0}\n"),
            "prior.yaml:9:36: prior.mu2.sd: must be > 0");
  EXPECT_EQ(message("prior:\n  mu2: {kind: grid, points: 3}\n"),
            "prior.yaml:9:15: prior.mu2.kind: expected one of 'uniform', 'normal', 'log_uniform', 'fixed', "
            "'choice', got 'grid'");
  EXPECT_EQ(message("prior:\n  mu2: {mean: 0}\n"), "prior.yaml:9:8: prior.mu2: needs 'kind'");
  EXPECT_EQ(
      message("prior:\n  mu2: {kind: uniform, min: 0.95, max: 1}\n"),
      "prior.yaml:8:1: prior: the prior puts no mass on any point of the infer grid (prior: mu2: {kind: "
      "uniform, min: 0.95, max: 1}\nrho12: {kind: uniform, min: -0.99, max: 0.99})");
}

}  // namespace
}  // namespace nsbi::jobs
