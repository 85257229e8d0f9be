// Proposals: what each kind draws, and the config errors a user meets.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/sims/lepton.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::sims {
namespace {

Proposal proposal_from(const std::string& simulator, const std::string& yaml) {
  auto config = config::Config::parse(yaml, "proposal.yaml");
  config::Schema schema;
  const auto sim = make_simulator(simulator);
  Proposal::declare(schema, "proposal", sim->info());
  config.validate(schema);
  return Proposal::from_config(config, "proposal", sim->info());
}

std::string error_of(const std::string& simulator, const std::string& yaml) {
  try {
    proposal_from(simulator, yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

Matrix draw(const Proposal& proposal, std::size_t n, std::size_t n_parameters, std::uint64_t first = 0) {
  Matrix theta = make_matrix("theta", n, n_parameters);
  proposal.sample(theta, first, 3);
  return theta;
}

TEST(Proposal, UniformStaysInItsBoxWithTheRightMean) {
  const auto p = proposal_from("lepton", "proposal:\n  m: {kind: uniform, min: 500, max: 900}\n");
  const std::size_t n = 100000;
  const Matrix theta = draw(p, n, 2);
  double sum = 0;
  std::map<double, int> spins;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_GT(theta(i, 0), 500.0);
    ASSERT_LT(theta(i, 0), 900.0);
    sum += theta(i, 0);
    spins[theta(i, 1)]++;
  }
  // Uniform on [500, 900]: mean 700, sd 400 / sqrt(12); 5 standard errors.
  EXPECT_NEAR(sum / n, 700.0, 5 * 400 / std::sqrt(12.0 * n));
  // The spin was not mentioned: the default draws both hypotheses, each with probability 1/2.
  ASSERT_EQ(spins.size(), 2u);
  EXPECT_NEAR(spins[0.0], n / 2.0, 5 * std::sqrt(n / 4.0));
}

TEST(Proposal, GridCyclesThroughEveryPointEqually) {
  const auto p = proposal_from("gaussian2d",
                               "proposal:\n  mu2: {kind: grid, min: -1, max: 1, points: 5}\n"
                               "  rho12: {kind: grid, min: 0, max: 0.5, points: 3}\n");
  EXPECT_EQ(p.grid_size(), 15u);
  const Matrix theta = draw(p, 150, 2);
  std::map<std::pair<double, double>, int> counts;
  for (std::size_t i = 0; i < 150; ++i) counts[{theta(i, 0), theta(i, 1)}]++;
  ASSERT_EQ(counts.size(), 15u);
  for (const auto& [point, count] : counts) EXPECT_EQ(count, 10);
  EXPECT_EQ(theta(0, 0), -1.0);
  EXPECT_EQ(theta(14, 0), 1.0);
  EXPECT_EQ(theta(14, 1), 0.5);
}

TEST(Proposal, FixedAndChoice) {
  const auto p = proposal_from(
      "lepton", "proposal:\n  m: {kind: fixed, value: 750}\n  spin: {kind: choice, values: [1]}\n");
  const Matrix theta = draw(p, 100, 2);
  for (std::size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(theta(i, 0), 750.0);
    EXPECT_EQ(theta(i, 1), 1.0);
  }
}

TEST(Proposal, RowsDependOnlyOnTheGlobalIndex) {
  const auto p = Proposal::default_for(make_simulator("gaussian2d")->info());
  const Matrix whole = draw(p, 100, 2, 1000);
  const Matrix tail = draw(p, 50, 2, 1050);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(whole(50 + i, 0), tail(i, 0));
    EXPECT_EQ(whole(50 + i, 1), tail(i, 1));
  }
}

TEST(Proposal, WrittenOutInFullWithShortestNumbers) {
  YAML::Emitter out;
  out << Proposal::default_for(make_simulator("gaussian2d")->info()).to_yaml();
  EXPECT_EQ(std::string(out.c_str()),
            "mu2: {kind: uniform, min: -1, max: 1}\nrho12: {kind: uniform, min: -0.99, max: 0.99}");
  YAML::Emitter lepton;
  lepton
      << proposal_from("lepton", "proposal:\n  m: {kind: grid, min: 400, max: 1000, points: 7}\n").to_yaml();
  EXPECT_EQ(std::string(lepton.c_str()),
            "m: {kind: grid, points: 7, min: 400, max: 1000}\nspin: {kind: choice, values: [0, 1]}");
}

TEST(Proposal, ErrorsNameTheKeyAndTheDomain) {
  EXPECT_EQ(
      error_of("lepton", "proposal:\n  m: {kind: uniform, min: 300, max: 900}\n"),
      "proposal.yaml:2:27: proposal.m.min: 300 is outside the domain of lepton's parameter m, [400, 1000]");
  EXPECT_EQ(error_of("gaussian2d", "proposal:\n  rho: {kind: fixed, value: 0.5}\n"),
            "proposal.yaml:2:3: proposal.rho: unknown key; did you mean 'proposal.rho12'?");
  EXPECT_EQ(error_of("lepton", "proposal:\n  spin: {kind: fixed, value: 0.5}\n"),
            "proposal.yaml:2:30: proposal.spin.value: 0.5 is outside the domain of lepton's parameter spin, "
            "{0, 1}");
  EXPECT_EQ(error_of("lepton", "proposal:\n  m: {kind: fixed}\n"),
            "proposal.yaml:2:6: proposal.m: kind 'fixed' needs 'value'");
  EXPECT_EQ(error_of("lepton", "proposal:\n  m: {kind: uniform, value: 500}\n"),
            "proposal.yaml:2:29: proposal.m.value: has no meaning for kind 'uniform'");
  EXPECT_EQ(error_of("gaussian2d", "proposal:\n  mu2: {kind: uniform, min: 0.5, max: 0.2}\n"),
            "proposal.yaml:2:39: proposal.mu2.max: must be greater than min");
  EXPECT_EQ(error_of("spin3d", "proposal:\n  spin: {kind: uniform}\n"),
            "proposal.yaml:2:16: proposal.spin.kind: spin is a discrete hypothesis: use fixed or choice");
}

}  // namespace
}  // namespace nsbi::sims
