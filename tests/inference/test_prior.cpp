// inference::Prior: each kind's log density integrates to 1 over its support (the normal's truncation and
// the log-uniform's 1/θ included), is −inf outside it, and sums over parameters; a config entry overrides the
// default parameter by parameter; draws lie in the support.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/inference/prior.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::inference {
namespace {

Prior prior_from(const std::string& simulator, const std::string& yaml) {
  auto config = config::Config::parse(yaml, "prior.yaml");
  config::Schema schema;
  const auto sim = sims::make_simulator(simulator);
  Prior::declare(schema, "prior", sim->info());
  config.validate(schema);
  return Prior::from_config(config, "prior", sim->info(),
                            Prior(sims::Proposal::default_for(sim->info()), sim->info()));
}

// ∫ exp(log π(mu2, rho12 = 0.5)) d mu2 over [lo, hi] by the midpoint rule (error ~ h² f'' / 24 per unit
// length: below 1e-7 with 2e5 cells for these smooth densities).
double integral_over_mu2(const Prior& prior, double lo, double hi, double rho12 = 0.5) {
  const int n = 200000;
  const double h = (hi - lo) / n;
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(prior.log_density({lo + (i + 0.5) * h, rho12}));
  return sum * h;
}

TEST(Prior, EachKindIsNormalisedOnItsSupport) {
  // rho12 stays uniform over its domain: density 1 / 1.98 at 0.5, divided out.
  const double rho_density = 1.0 / 1.98;
  const Prior normal =
      prior_from("gaussian2d", "prior:\n  mu2: {kind: normal, mean: 0.6, sd: 0.25, min: -0.2}\n");
  EXPECT_NEAR(integral_over_mu2(normal, -0.2, 1.0) / rho_density, 1.0, 1e-7);
  const Prior far = prior_from("gaussian2d", "prior:\n  mu2: {kind: normal, mean: -2, sd: 0.2, min: 0.5}\n");
  EXPECT_NEAR(integral_over_mu2(far, 0.5, 1.0) / rho_density, 1.0, 1e-6);  // 12.5 sd out: the mirrored tail
  const Prior log_uniform =
      prior_from("gaussian2d", "prior:\n  mu2: {kind: log_uniform, min: 0.01, max: 1}\n");
  EXPECT_NEAR(integral_over_mu2(log_uniform, 0.01, 1.0) / rho_density, 1.0, 1e-6);
  // Outside the support, and the sum over parameters.
  EXPECT_EQ(normal.log_density({-0.3, 0.5}), -HUGE_VAL);
  EXPECT_EQ(log_uniform.log_density({0.5, 0.995}), -HUGE_VAL);
  const double z = (0.7 - 0.6) / 0.25;
  EXPECT_NEAR(normal.log_density({0.7, 0.5}) - normal.log_density({0.6, 0.5}), -0.5 * z * z, 1e-14);
  EXPECT_EQ(normal.support_min(0), -0.2);
  EXPECT_EQ(normal.support_max(0), 1.0);
  EXPECT_EQ(normal.support_min(1), -0.99);
}

TEST(Prior, FixedAndChoiceCountProbabilities) {
  const Prior fixed = prior_from("lepton", "prior:\n  spin: {kind: fixed, value: 1}\n");
  EXPECT_NEAR(fixed.log_density({700, 1}), -std::log(600.0), 1e-14);
  EXPECT_EQ(fixed.log_density({700, 0}), -HUGE_VAL);
  const Prior choice = prior_from("lepton", "");  // default: both spins, each with probability 1/2
  EXPECT_NEAR(choice.log_density({700, 0}), -std::log(600.0) - std::log(2.0), 1e-14);
  EXPECT_EQ(choice.support_min(1), 0.0);
  EXPECT_EQ(choice.support_max(1), 1.0);
}

TEST(Prior, GridOfTheProposalIsUniformAndErrorsNameTheKey) {
  const auto sim = sims::make_simulator("gaussian2d");
  sims::ParameterProposal grid;
  grid.kind = sims::ParameterProposal::Kind::grid;
  grid.min = -0.5;
  grid.max = 0.5;
  grid.points = 5;
  sims::ParameterProposal fixed;
  fixed.kind = sims::ParameterProposal::Kind::fixed;
  const Prior prior(sims::Proposal(sim->info(), {grid, fixed}), sim->info());
  EXPECT_EQ(prior.yaml(), "mu2: {kind: uniform, min: -0.5, max: 0.5}\nrho12: {kind: fixed, value: 0}");
  EXPECT_NEAR(prior.log_density({0.1, 0.0}), 0.0, 1e-15);  // density 1 on a box of width 1
  try {
    prior_from("gaussian2d", "prior:\n  mu2: {kind: normal, mean: 0, sd: 0.1, value: 3}\n");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "prior.yaml:2:48: prior.mu2.value: has no meaning for kind 'normal'");
  }
}

TEST(Prior, DrawsLieInTheSupport) {
  const Prior prior = prior_from("gaussian2d",
                                 "prior:\n  mu2: {kind: normal, mean: 0, sd: 0.1}\n"
                                 "  rho12: {kind: log_uniform, min: 0.1, max: 0.2}\n");
  Matrix theta = make_matrix("theta", 1000, 2);
  prior.sample(theta, 0, 11);
  for (std::size_t i = 0; i < 1000; ++i) {
    EXPECT_GT(prior.log_density({theta(i, 0), theta(i, 1)}), -HUGE_VAL) << i;
  }
}

}  // namespace
}  // namespace nsbi::inference
