// The posterior sampler (inference/mcmc.hpp) and its diagnostics (mcmc_diagnostics.hpp): R̂ and ESS on
// synthetic chains of known answer, samples against closed forms and against the grid posterior, and the
// same bits for any split of the chains over batches and ranks.

#include <gtest/gtest.h>

#include <cmath>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/inference/analysis.hpp"
#include "nsbi/inference/mcmc.hpp"
#include "nsbi/inference/mcmc_diagnostics.hpp"
#include "nsbi/inference/scan.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::inference {
namespace {

// `chains` AR(1) chains x_t = ρ x_{t−1} + √(1 − ρ²) ε_t of n draws with standard normal marginals (the
// first draw from the marginal), chain c from the stream (seed, toy, c), plus `offset[c]`.
std::vector<double> ar1_chains(std::size_t chains, std::size_t n, double rho, std::uint64_t seed,
                               const std::vector<double>& offset = {}) {
  std::vector<double> draws(chains * n);
  const double scale = std::sqrt(1 - rho * rho);
  for (std::size_t c = 0; c < chains; ++c) {
    rng::Stream stream(seed, rng::Purpose::toy, c);
    double x = stream.normal();
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) x = rho * x + scale * stream.normal();
      draws[c * n + i] = x + (offset.empty() ? 0.0 : offset[c]);
    }
  }
  return draws;
}

TEST(McmcDiagnostics, IndependentChainsHaveRhatOneAndEssN) {
  // 8 chains × 5000 iid draws, N = 40000. R̂² − 1 ≈ (χ²_15/15 − 1)/2500 for the 16 half chains: |R̂ − 1| is
  // of order 1e-4, so 0.003 is far beyond sampling error yet far below the 1.01 that flags a problem. The
  // ESS estimate's relative error is about √(2(2M + 1)/N) ≈ 0.02 for a truncation lag M ≈ 3 (Sokal): 10 %
  // is 5 standard errors.
  for (const std::uint64_t seed : {1, 2, 3}) {
    const auto draws = ar1_chains(8, 5000, 0.0, seed);
    EXPECT_NEAR(split_rhat(draws, 8), 1.0, 0.003);
    EXPECT_NEAR(bulk_ess(draws, 8) / 40000.0, 1.0, 0.1);
    EXPECT_NEAR(ess(draws, 8) / 40000.0, 1.0, 0.1);
  }
}

TEST(McmcDiagnostics, Ar1ChainsHaveEssOfTheirAutocorrelation) {
  // ESS = N (1 − ρ)/(1 + ρ): 400000 × 0.1/1.9 = 21053 for ρ = 0.9. The estimate's relative error is about
  // √(2(2M + 1)/N) ≈ 0.03 for a truncation lag M ≈ 100 (a few autocorrelation times τ = 19): 12 % is 4
  // standard errors.
  const std::size_t chains = 8;
  const std::size_t n = 50000;
  for (const double rho : {0.5, 0.9}) {
    const auto draws = ar1_chains(chains, n, rho, 7);
    const double expected = static_cast<double>(chains * n) * (1 - rho) / (1 + rho);
    EXPECT_NEAR(bulk_ess(draws, chains) / expected, 1.0, 0.12) << "rho " << rho;
    EXPECT_NEAR(ess(draws, chains) / expected, 1.0, 0.12) << "rho " << rho;
    EXPECT_LT(split_rhat(draws, chains), 1.005) << "rho " << rho;
  }
}

TEST(McmcDiagnostics, RhatFlagsChainsThatDisagree) {
  // One chain of four shifted by half a standard deviation: B/n ≈ 0.25²·… pushes R̂ to about 1.03, far
  // above 1.01 (the iid noise is of order 1e-3, as above). Also a chain with twice the spread, which only
  // the folded (tail) R̂ sees.
  const auto shifted = ar1_chains(4, 2000, 0.0, 11, {0.0, 0.0, 0.0, 0.5});
  EXPECT_GT(split_rhat(shifted, 4), 1.02);
  auto wide = ar1_chains(4, 2000, 0.0, 12);
  for (std::size_t i = 0; i < 2000; ++i) wide[i] *= 2.0;
  EXPECT_GT(split_rhat(wide, 4), 1.02);
  EXPECT_LT(rhat(wide, 4), 1.005);  // the means agree: the plain R̂ misses it
  // A trend within each chain: split-R̂ sees the halves disagree.
  auto trend = ar1_chains(4, 2000, 0.0, 13);
  for (std::size_t c = 0; c < 4; ++c)
    for (std::size_t i = 0; i < 2000; ++i) trend[c * 2000 + i] += static_cast<double>(i) / 2000.0;
  EXPECT_GT(split_rhat(trend, 4), 1.02);
  // Constant draws are converged (a parameter held fixed).
  EXPECT_EQ(split_rhat(std::vector<double>(400, 0.5), 4), 1.0);
  EXPECT_EQ(bulk_ess(std::vector<double>(400, 0.5), 4), 400.0);
}

TEST(McmcDiagnostics, DiagnoseNamesTheParametersThatFail) {
  // Parameter a: iid (converged); b: ρ = 0.99, ESS ≈ 4 × 500 × 0.01/1.99 = 10 < 400.
  const auto a = ar1_chains(4, 500, 0.0, 21);
  const auto b = ar1_chains(4, 500, 0.99, 22);
  std::vector<double> samples;
  for (std::size_t i = 0; i < a.size(); ++i) samples.insert(samples.end(), {a[i], b[i]});
  const ChainDiagnostics d = diagnose_chains(samples, 4, {"a", "b"});
  ASSERT_EQ(d.rhat.size(), 2u);
  EXPECT_GT(d.ess_bulk[0], 1500);
  EXPECT_LT(d.ess_bulk[1], 100);
  EXPECT_FALSE(d.converged());
  for (const auto& warning : d.warnings) EXPECT_EQ(warning.rfind("b: ", 0), 0u) << warning;
}

// A correlated normal log likelihood with means m, standard deviations s and correlation r.
struct Normal2 {
  double m[2] = {0.3, -0.2};
  double s[2] = {0.1, 0.2};
  double r = 0.6;
  void operator()(std::size_t k, const double* theta, double* out) const {
    for (std::size_t j = 0; j < k; ++j) {
      const double a = (theta[2 * j] - m[0]) / s[0];
      const double b = (theta[2 * j + 1] - m[1]) / s[1];
      out[j] = -0.5 * (a * a - 2 * r * a * b + b * b) / (1 - r * r);
    }
  }
};

struct Moments {
  double mean[2] = {0, 0};
  double sd[2] = {0, 0};
  double correlation = 0;
};

Moments moments(const std::vector<double>& samples) {
  Moments m;
  const double n = static_cast<double>(samples.size() / 2);
  for (std::size_t i = 0; i < samples.size(); ++i) m.mean[i % 2] += samples[i] / n;
  double c = 0;
  for (std::size_t i = 0; i < samples.size(); i += 2) {
    const double a = samples[i] - m.mean[0];
    const double b = samples[i + 1] - m.mean[1];
    m.sd[0] += a * a / n;
    m.sd[1] += b * b / n;
    c += a * b / n;
  }
  m.sd[0] = std::sqrt(m.sd[0]);
  m.sd[1] = std::sqrt(m.sd[1]);
  m.correlation = c / (m.sd[0] * m.sd[1]);
  return m;
}

// Expectations of a normal-like posterior from ESS effective draws: the mean within 4 Monte-Carlo standard
// errors sd/√ESS, the standard deviation within 4 × sd/√(2 ESS), the correlation within 4 × (1 − r²)/√ESS.
void expect_moments(const Moments& got, const Moments& want, const ChainDiagnostics& d) {
  for (int p = 0; p < 2; ++p) {
    const double ess = d.ess_bulk[static_cast<std::size_t>(p)];
    EXPECT_NEAR(got.mean[p], want.mean[p], 4 * want.sd[p] / std::sqrt(ess)) << "parameter " << p;
    EXPECT_NEAR(got.sd[p], want.sd[p], 4 * want.sd[p] / std::sqrt(2 * ess)) << "parameter " << p;
  }
  const double ess = std::min(d.ess_bulk[0], d.ess_bulk[1]);
  EXPECT_NEAR(got.correlation, want.correlation,
              4 * (1 - want.correlation * want.correlation) / std::sqrt(ess));
}

McmcSettings settings_of(std::size_t chains, std::size_t warmup, std::size_t samples, std::uint64_t seed) {
  McmcSettings settings;
  settings.chains = chains;
  settings.warmup = warmup;
  settings.samples = samples;
  settings.seed = seed;
  return settings;
}

TEST(Mcmc, SamplesACorrelatedNormal) {
  const Normal2 target;
  McmcPrior prior{{-1.0, -1.0}, {1.0, 1.0}, {}};  // the box holds ±6 standard deviations
  const McmcSettings settings = settings_of(8, 200, 1000, 3);
  const ChainDraws draws = run_chains(target, prior, settings, 0, settings.chains);
  ASSERT_EQ(draws.samples.size(), 8u * 1000u * 2u);
  const ChainDiagnostics d = diagnose_chains(draws.samples, 8, {"a", "b"});
  EXPECT_TRUE(d.converged()) << d.warnings.front();
  Moments want;
  want.mean[0] = target.m[0];
  want.mean[1] = target.m[1];
  want.sd[0] = target.s[0];
  want.sd[1] = target.s[1];
  want.correlation = target.r;
  expect_moments(moments(draws.samples), want, d);
  // The log posterior kept with each draw is the target's there.
  double value = 0;
  target(1, draws.samples.data() + 2 * 77, &value);
  EXPECT_EQ(draws.log_posterior[77], value);
  // Adapted slice widths: a few evaluations per parameter update.
  EXPECT_LT(static_cast<double>(draws.evaluations) / (8 * 1200 * 2), 8.0);
}

TEST(Mcmc, SamplesASixDimensionalNormal) {
  // Beyond a grid: 6 parameters, neighbours correlated by ρ = 0.5 (correlation ρ^|i−j|, whose inverse is
  // tridiagonal: diagonal 1, 1 + ρ², …, 1 + ρ², 1 and off-diagonal −ρ, over 1 − ρ²), means 0.1 i, standard
  // deviations 0.05 (1 + i). Means within 4 sd/√ESS, standard deviations within 4 sd/√(2 ESS).
  constexpr std::size_t dims = 6;
  constexpr double rho = 0.5;
  const auto mean_of = [](std::size_t i) { return 0.1 * static_cast<double>(i); };
  const auto sd_of = [](std::size_t i) { return 0.05 * static_cast<double>(1 + i); };
  const auto target = [&](std::size_t k, const double* theta, double* out) {
    for (std::size_t j = 0; j < k; ++j) {
      double z[dims];
      for (std::size_t i = 0; i < dims; ++i) z[i] = (theta[j * dims + i] - mean_of(i)) / sd_of(i);
      double quadratic = 0;
      for (std::size_t i = 0; i < dims; ++i) {
        const bool inner = i > 0 && i + 1 < dims;
        quadratic += (inner ? 1 + rho * rho : 1.0) * z[i] * z[i];
        if (i + 1 < dims) quadratic -= 2 * rho * z[i] * z[i + 1];
      }
      out[j] = -0.5 * quadratic / (1 - rho * rho);
    }
  };
  const McmcPrior prior{std::vector<double>(dims, -2.0), std::vector<double>(dims, 2.0), {}};
  const ChainDraws draws = run_chains(target, prior, settings_of(16, 200, 400, 8), 0, 16);
  const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f"};
  const ChainDiagnostics d = diagnose_chains(draws.samples, 16, names);
  EXPECT_TRUE(d.converged()) << d.warnings.front();
  const double n = static_cast<double>(draws.samples.size() / dims);
  for (std::size_t i = 0; i < dims; ++i) {
    double mean = 0;
    double square = 0;
    for (std::size_t s = i; s < draws.samples.size(); s += dims) mean += draws.samples[s] / n;
    for (std::size_t s = i; s < draws.samples.size(); s += dims)
      square += (draws.samples[s] - mean) * (draws.samples[s] - mean) / n;
    EXPECT_NEAR(mean, mean_of(i), 4 * sd_of(i) / std::sqrt(d.ess_bulk[i])) << names[i];
    EXPECT_NEAR(std::sqrt(square), sd_of(i), 4 * sd_of(i) / std::sqrt(2 * d.ess_bulk[i])) << names[i];
  }
}

TEST(Mcmc, HonoursTheBoxFixedParametersThinningAndThePriorDensity) {
  // A flat likelihood: the samples follow the prior. Parameter 0 held at 0.5; parameter 1 on [0, 2] with
  // density ∝ θ (mean 4/3, sd √2/3), kept every 3rd iteration.
  const auto flat = [](std::size_t k, const double*, double* out) { std::fill(out, out + k, 0.0); };
  McmcPrior prior{{0.5, 0.0}, {0.5, 2.0}, [](const double* theta) { return std::log(theta[1]); }};
  McmcSettings settings = settings_of(4, 100, 1000, 9);
  settings.thin = 3;
  const ChainDraws draws = run_chains(flat, prior, settings, 0, settings.chains);
  std::vector<double> values;
  for (std::size_t i = 0; i < draws.samples.size(); i += 2) {
    EXPECT_EQ(draws.samples[i], 0.5);
    ASSERT_TRUE(draws.samples[i + 1] >= 0.0 && draws.samples[i + 1] <= 2.0);
    values.push_back(draws.samples[i + 1]);
  }
  const double ess_value = bulk_ess(values, 4);
  double mean = 0;
  for (const double v : values) mean += v / static_cast<double>(values.size());
  EXPECT_NEAR(mean, 4.0 / 3.0, 4 * (std::sqrt(2.0) / 3.0) / std::sqrt(ess_value));
}

TEST(Mcmc, ChainsAreTheSameBitsInAnyBatchAndOnAnyRanks) {
  const Normal2 target;
  const McmcPrior prior{{-1.0, -1.0}, {1.0, 1.0}, {}};
  const McmcSettings settings = settings_of(7, 20, 30, 5);
  const ChainDraws all = run_chains(target, prior, settings, 0, 7);
  // Chains 2..4 run alone: the same draws as within all seven.
  const ChainDraws some = run_chains(target, prior, settings, 2, 3);
  for (std::size_t i = 0; i < some.samples.size(); ++i) ASSERT_EQ(some.samples[i], all.samples[2 * 60 + i]);
  // Over the ranks of this test (1 or 2), gathered in chain order.
  const Communicator world;
  const auto [first, count] = chains_of_rank(settings.chains, world.rank(), world.size());
  const ChainDraws local = run_chains(target, prior, settings, first, count);
  const ChainDraws gathered = gather_chains(world, local, settings, 2);
  EXPECT_EQ(gathered.samples, all.samples);
  EXPECT_EQ(gathered.log_posterior, all.log_posterior);
  EXPECT_EQ(gathered.evaluations, all.evaluations);
  // Chains 1, 2, 3 differ from each other (their own streams).
  EXPECT_NE(all.samples[60], all.samples[120]);
}

TEST(Mcmc, ChainsOfRankCoverTheChainsInOrder) {
  for (const int size : {1, 2, 3, 5, 8}) {
    std::size_t next = 0;
    for (int rank = 0; rank < size; ++rank) {
      const auto [first, count] = chains_of_rank(6, rank, size);
      if (count > 0) EXPECT_EQ(first, next);
      next += count;
    }
    EXPECT_EQ(next, 6u) << size;
  }
}

TEST(Mcmc, Gaussian2dExactPosteriorAgreesWithTheGrid) {
  // 40 gaussian2d events at (mu2, rho12) = (0.2, −0.3), the exact likelihood ratio, a flat prior on the
  // box [−0.9, 0.9]²: the MCMC moments against the grid posterior's on a 301² grid (whose own error, of
  // order the spacing² / 12 in the variance, is far below the Monte-Carlo tolerance).
  const auto simulator = sims::make_simulator("gaussian2d");
  Matrix x("x", 40, 2);
  const double theta[2] = {0.2, -0.3};
  simulate_toys(*simulator, theta, 17, ToyStage::calibrate, 0, 0, 40, x);
  ExactEstimator estimator(*simulator, {0.0, 0.0});
  const Grid grid({{"mu2", linspace(-0.9, 0.9, 301), false}, {"rho12", linspace(-0.9, 0.9, 301), false}});
  AnalysisSettings analysis_settings;
  analysis_settings.profiled = {false, false};
  const Analysis analysis = analyse_observed(estimator, x, grid, analysis_settings);
  Moments want;
  double second[2] = {0, 0};
  double cross = 0;
  for (std::size_t k = 0; k < grid.size(); ++k) {
    double point[2];
    grid.point(k, point);
    for (int p = 0; p < 2; ++p) {
      want.mean[p] += analysis.posterior[k] * point[p];
      second[p] += analysis.posterior[k] * point[p] * point[p];
    }
    cross += analysis.posterior[k] * point[0] * point[1];
  }
  for (int p = 0; p < 2; ++p) want.sd[p] = std::sqrt(second[p] - want.mean[p] * want.mean[p]);
  want.correlation = (cross - want.mean[0] * want.mean[1]) / (want.sd[0] * want.sd[1]);

  const McmcPrior prior{{-0.9, -0.9}, {0.9, 0.9}, {}};
  const McmcSettings settings = settings_of(8, 200, 500, 4);
  const ChainDraws draws = run_chains(observed_log_likelihood(estimator, x, 2), prior, settings, 0, 8);
  const ChainDiagnostics d = diagnose_chains(draws.samples, 8, {"mu2", "rho12"});
  EXPECT_TRUE(d.converged()) << d.warnings.front();
  expect_moments(moments(draws.samples), want, d);
  // The kept log posterior is −t/2 of the scan's sum at that draw, to the bit.
  Matrix point("point", 1, 2);
  point(0, 0) = draws.samples[2 * 123];
  point(0, 1) = draws.samples[2 * 123 + 1];
  EXPECT_EQ(draws.log_posterior[123], -0.5 * t_at_points(estimator, x, point)[0]);
}

}  // namespace
}  // namespace nsbi::inference
