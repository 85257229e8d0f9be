// Proposals: what each kind draws, and the config errors a user meets.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/sims/lepton.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"
#include "statistics.hpp"

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

std::vector<double> column(const Matrix& theta, std::size_t p) {
  std::vector<double> out(theta.extent(0));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = theta(i, p);
  return out;
}

// KS tests at significance 1e-4 (fixed seeds: a correct sampler fails one in 10^4 seeds); with 10^5 draws
// a CDF wrong by more than ~0.015 anywhere always fails.
constexpr double ks_significance = 1e-4;

// Upper tail of the standard normal, computed here independently of the code under test.
double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

TEST(Proposal, NormalIsTruncatedToItsBoxAndMatchesItsCdf) {
  // A box around the mean, and one 3 to 6 standard deviations above it (drawn by the mirrored branch).
  for (const auto& [yaml, mean, sd, lo, hi] :
       {std::tuple<std::string, double, double, double, double>{
            "proposal:\n  m: {kind: normal, mean: 650, sd: 80, max: 900}\n", 650, 80, 400, 900},
        {"proposal:\n  m: {kind: normal, mean: 460, sd: 50, min: 610, max: 760}\n", 460, 50, 610, 760}}) {
    const auto p = proposal_from("lepton", yaml);
    const std::size_t n = 100000;
    const std::vector<double> m = column(draw(p, n, 2), 0);
    for (double v : m) {
      ASSERT_GE(v, lo);
      ASSERT_LE(v, hi);
    }
    // The truncated CDF in upper-tail form: (Q(a) − Q(z)) / (Q(a) − Q(b)), z standardised.
    const double qa = upper_tail((lo - mean) / sd);
    const double qb = upper_tail((hi - mean) / sd);
    const auto cdf = [&](double v) { return (qa - upper_tail((v - mean) / sd)) / (qa - qb); };
    EXPECT_GT(test::ks_statistic_pvalue(m, cdf).pvalue, ks_significance) << yaml;
  }
}

TEST(Proposal, LogUniformHasAUniformLogarithm) {
  const auto p =
      proposal_from("gaussian2d", "proposal:\n  rho12: {kind: log_uniform, min: 0.001, max: 0.9}\n");
  const std::size_t n = 100000;
  const std::vector<double> rho = column(draw(p, n, 2), 1);
  for (double v : rho) {
    ASSERT_GE(v, 0.001);
    ASSERT_LE(v, 0.9);
  }
  const double lo = std::log(0.001);
  const double hi = std::log(0.9);
  EXPECT_GT(test::ks_statistic_pvalue(rho, [&](double v) { return (std::log(v) - lo) / (hi - lo); }).pvalue,
            ks_significance);
  // mu2 was not mentioned: uniform over its domain, the second uniform of the row.
  const std::vector<double> mu2 = column(draw(p, n, 2), 0);
  EXPECT_GT(test::ks_statistic_pvalue(mu2, [](double v) { return (v + 1.0) / 2.0; }).pvalue, ks_significance);
}

TEST(Proposal, NormalRowsArePureFunctionsOfTheRowIndex) {
  // A block drawn from row 700 on equals rows 700.. of one drawn from 0: no rank or block boundary matters.
  const auto p = proposal_from("gaussian2d",
                               "proposal:\n  mu2: {kind: normal, mean: 0.1, sd: 0.2}\n"
                               "  rho12: {kind: log_uniform, min: 0.05, max: 0.5}\n");
  const Matrix all = draw(p, 1000, 2);
  const Matrix part = draw(p, 300, 2, 700);
  for (std::size_t i = 0; i < 300; ++i)
    for (std::size_t c = 0; c < 2; ++c) ASSERT_EQ(part(i, c), all(700 + i, c)) << i;
}

TEST(Proposal, NormalAndLogUniformAreWrittenOutWithTheirBox) {
  YAML::Emitter out;
  out << proposal_from("gaussian2d",
                       "proposal:\n  mu2: {kind: normal, mean: 0.1, sd: 0.2, min: -0.5}\n"
                       "  rho12: {kind: log_uniform, min: 0.05, max: 0.5}\n")
             .to_yaml();
  const std::string text = out.c_str();
  EXPECT_EQ(text,
            "mu2: {kind: normal, mean: 0.1, sd: 0.2, min: -0.5, max: 1}\n"
            "rho12: {kind: log_uniform, min: 0.05, max: 0.5}");
  // What a dataset records reads back as the same proposal.
  YAML::Emitter again;
  again << Proposal::from_yaml(text, "dataset.h5", make_simulator("gaussian2d")->info()).to_yaml();
  EXPECT_EQ(std::string(again.c_str()), text);
}

TEST(Proposal, NormalAndLogUniformErrorsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"mu2: {kind: normal, mean: 0, sd: 0}", "proposal.yaml:2:36: proposal.mu2.sd: must be > 0"},
      {"mu2: {kind: normal, mean: 0, sd: -1}", "proposal.yaml:2:36: proposal.mu2.sd: must be > 0"},
      {"mu2: {kind: normal, mean: 0}", "proposal.yaml:2:8: proposal.mu2: kind 'normal' needs 'sd'"},
      {"mu2: {kind: normal, mean: 0, sd: 1, points: 3}",
       "proposal.yaml:2:47: proposal.mu2.points: has no meaning for kind 'normal'"},
      {"mu2: {kind: normal, mean: 5, sd: 0.1}",
       "proposal.yaml:2:29: proposal.mu2.mean: the box [-1, 1] lies 40 standard deviations from the mean: at "
       "most 30"},
      {"mu2: {kind: log_uniform}",
       "proposal.yaml:2:8: proposal.mu2: kind 'log_uniform' needs 'min' > 0 (the domain's lower end, -1, is "
       "not)"},
      {"mu2: {kind: log_uniform, min: 0, max: 1}",
       "proposal.yaml:2:33: proposal.mu2.min: must be > 0 for kind 'log_uniform'"},
      {"mu2: {kind: log_uniform, min: 0.1, mean: 1}",
       "proposal.yaml:2:44: proposal.mu2.mean: has no meaning for kind 'log_uniform'"}};
  for (const auto& [entry, message] : cases)
    EXPECT_EQ(error_of("gaussian2d", std::string("proposal:\n  ") + entry + "\n"), message);
}

// External simulators declare up to 4096 parameters; proposals draw up to Proposal::max_parameters of them
// (10-D sbibm tasks need more than the 8 they once allowed) and refuse more with a ConfigError.
SimulatorInfo info_with(std::size_t n_parameters) {
  SimulatorInfo info;
  info.name = "wide";
  for (std::size_t p = 0; p < n_parameters; ++p)
    info.parameters.push_back({"t" + std::to_string(p), -1, 1, {}, ""});
  info.observables = {"x"};
  return info;
}

TEST(Proposal, DrawsEveryParameterOfAWideSimulator) {
  const std::size_t n = 20000, n_parameters = Proposal::max_parameters;
  const Matrix theta = draw(Proposal::default_for(info_with(n_parameters)), n, n_parameters);
  // Each column uniform on [-1, 1] (mean 0, sd 1/√3) and uncorrelated with the first: 5 standard errors.
  for (std::size_t p = 0; p < n_parameters; ++p) {
    double sum = 0, cross = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_GE(theta(i, p), -1.0);
      ASSERT_LE(theta(i, p), 1.0);
      sum += theta(i, p);
      cross += theta(i, p) * theta(i, 0);
    }
    EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(3.0 * n)) << "parameter " << p;
    if (p > 0) EXPECT_NEAR(cross / n, 0.0, 5 / (3.0 * std::sqrt(double(n)))) << "parameter " << p;
  }
  try {
    Proposal::default_for(info_with(Proposal::max_parameters + 1));
    ADD_FAILURE() << "a simulator with too many parameters was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "simulator 'wide' has " + std::to_string(Proposal::max_parameters + 1) +
                                         " parameters; nsbi's proposals draw at most " +
                                         std::to_string(Proposal::max_parameters));
  }
}

}  // namespace
}  // namespace nsbi::sims
