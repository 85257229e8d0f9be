// Each built-in simulator against its exact densities (docs/simulators.md), so that a wrong constant
// anywhere shows up. Tolerances are 5 standard errors of the estimator in question (a false alarm rate of
// ~6e-7 per check with a fresh seed; the seeds here are fixed), goodness-of-fit tests require p > 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nsbi/sims/gaussian2d.hpp"
#include "nsbi/sims/lepton.hpp"
#include "nsbi/sims/registry.hpp"
#include "nsbi/sims/spin3d.hpp"
#include "statistics.hpp"

namespace nsbi::sims {
namespace {

constexpr double pi = 3.14159265358979323846;
constexpr double z = 5.0;  // tolerance in standard errors

struct Sample {
  std::vector<std::vector<double>> columns;  // columns[d][i]
  const std::vector<double>& operator[](std::size_t d) const { return columns[d]; }
};

// n events at the fixed parameter point theta.
Sample simulate_at(const Simulator& sim, const std::vector<double>& theta, std::size_t n,
                   std::uint64_t seed) {
  Matrix t = make_matrix("theta", n, theta.size());
  Matrix x = make_matrix("x", n, sim.info().n_observables());
  Kokkos::deep_copy(Kokkos::subview(t, Kokkos::ALL, 0), theta[0]);
  for (std::size_t p = 1; p < theta.size(); ++p)
    Kokkos::deep_copy(Kokkos::subview(t, Kokkos::ALL, p), theta[p]);
  sim.simulate(t, x, 0, seed);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  Sample s;
  s.columns.assign(x.extent(1), std::vector<double>(n));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < x.extent(1); ++d) s.columns[d][i] = host(i, d);
  return s;
}

std::vector<double> log_likelihood_at(const Simulator& sim, const std::vector<double>& theta,
                                      const Sample& s) {
  const std::size_t n = s[0].size();
  Matrix t = make_matrix("theta", n, theta.size());
  Matrix x = make_matrix("x", n, s.columns.size());
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t p = 0; p < theta.size(); ++p) t(i, p) = theta[p];
    for (std::size_t d = 0; d < s.columns.size(); ++d) x(i, d) = s[d][i];
  }
  Vector out("log_p", n);
  sim.log_likelihood(t, x, out);
  return std::vector<double>(out.data(), out.data() + n);
}

double mean(const std::vector<double>& v) { return test::sample_moments(v).mean; }

// Standard error of a Pearson correlation estimate for a bivariate normal: (1 - rho^2) / sqrt(n).
double correlation_se(double rho, std::size_t n) {
  return (1.0 - rho * rho) / std::sqrt(static_cast<double>(n));
}

TEST(Gaussian2d, MomentsAndCovarianceMatchTheSpec) {
  const auto sim = make_simulator("gaussian2d");
  const std::size_t n = 200000;
  for (const auto& theta : std::vector<std::vector<double>>{{0.0, 0.0}, {0.7, 0.8}, {-0.4, -0.95}}) {
    const Sample s = simulate_at(*sim, theta, n, 11);
    const auto m1 = test::sample_moments(s[0]);
    const auto m2 = test::sample_moments(s[1]);
    EXPECT_NEAR(m1.mean, 0.0, z * test::mean_standard_error(1.0, n));
    EXPECT_NEAR(m2.mean, theta[0], z * test::mean_standard_error(1.0, n));
    // Normal: fourth central moment 3 sigma^4.
    EXPECT_NEAR(m1.variance, 1.0, z * test::variance_standard_error(1.0, 3.0, n));
    EXPECT_NEAR(m2.variance, 1.0, z * test::variance_standard_error(1.0, 3.0, n));
    EXPECT_NEAR(test::correlation(s[0], s[1]), theta[1], z * correlation_se(theta[1], n))
        << "rho12=" << theta[1];
  }
}

TEST(Gaussian2d, ExactLikelihoodIsTheNormalisedDensityOfTheSamples) {
  const auto sim = make_simulator("gaussian2d");
  const std::vector<double> theta = {0.3, 0.6};
  // E[log p(x|theta)] = -(entropy) = -1 - log(2 pi) - log(1 - rho^2) / 2; Var[log p] = Var[chi2_2 / 2] = 1.
  const std::size_t n = 100000;
  const auto log_p = log_likelihood_at(*sim, theta, simulate_at(*sim, theta, n, 5));
  EXPECT_NEAR(mean(log_p), -1.0 - std::log(2 * pi) - 0.5 * std::log(1 - 0.36), z / std::sqrt(double(n)));
  // The density integrates to one (midpoint rule on [-9, 9]^2 around the mean).
  const int cells = 600;
  const double h = 18.0 / cells;
  Sample grid;
  grid.columns.assign(2, {});
  for (int i = 0; i < cells; ++i)
    for (int j = 0; j < cells; ++j) {
      grid.columns[0].push_back(-9 + (i + 0.5) * h);
      grid.columns[1].push_back(theta[0] - 9 + (j + 0.5) * h);
    }
  double integral = 0;
  for (double lp : log_likelihood_at(*sim, theta, grid)) integral += std::exp(lp) * h * h;
  EXPECT_NEAR(integral, 1.0, 1e-6);
}

TEST(Spin3d, EachHypothesisHasItsGaussianPart) {
  const auto sim = make_simulator("spin3d");
  const std::size_t n = 200000;
  const Sample h0 = simulate_at(*sim, {0.0}, n, 21);
  const Sample h1 = simulate_at(*sim, {1.0}, n, 22);
  EXPECT_NEAR(mean(h0[0]), 0.0, z * test::mean_standard_error(1.0, n));
  EXPECT_NEAR(mean(h0[1]), 0.0, z * test::mean_standard_error(1.0, n));
  EXPECT_NEAR(test::correlation(h0[0], h0[1]), 0.5, z * correlation_se(0.5, n));
  EXPECT_NEAR(mean(h1[0]), 0.25, z * test::mean_standard_error(1.0, n));
  EXPECT_NEAR(mean(h1[1]), 0.0, z * test::mean_standard_error(2.25, n));
  EXPECT_NEAR(test::sample_moments(h1[1]).variance, 2.25,
              z * test::variance_standard_error(2.25, 3 * 2.25 * 2.25, n));
  EXPECT_NEAR(test::correlation(h1[0], h1[1]), 0.0, z * correlation_se(0.0, n));
}

TEST(Spin3d, X3ModulationMatchesTheExactDensity) {
  const auto sim = make_simulator("spin3d");
  const std::size_t n = 200000;
  const Sample h0 = simulate_at(*sim, {0.0}, n, 31);
  const Sample h1 = simulate_at(*sim, {1.0}, n, 32);
  const auto uniform_cdf = [](double x) { return (x + pi) / (2 * pi); };
  EXPECT_GT(test::ks_statistic_pvalue(h0[2], uniform_cdf).pvalue, 1e-4);
  const test::TabulatedCdf modulated([](double x) { return 1 + 0.3 * std::sin(4 * x); }, -pi, pi, 4000);
  EXPECT_GT(test::ks_statistic_pvalue(h1[2], modulated).pvalue, 1e-4);
  EXPECT_LT(test::ks_statistic_pvalue(h1[2], uniform_cdf).pvalue, 1e-6) << "the modulation must be visible";
  // The amplitude: E[sin 4 x3] = 0.3 / 2 under H1; Var[sin 4 x3] <= 1/2.
  std::vector<double> s4(n);
  for (std::size_t i = 0; i < n; ++i) s4[i] = std::sin(4 * h1[2][i]);
  EXPECT_NEAR(mean(s4), 0.15, z * test::mean_standard_error(0.5, n));
}

TEST(Spin3d, ExactLikelihoodRatioIsNormalised) {
  // E_{H1}[p0(x) / p1(x)] = 1 holds only if both exact densities are right (the ratio has finite variance
  // under H1: 2 Sigma0^-1 - Sigma1^-1 is positive definite). SE from the sample.
  const auto sim = make_simulator("spin3d");
  const std::size_t n = 200000;
  const Sample h1 = simulate_at(*sim, {1.0}, n, 41);
  const auto lp0 = log_likelihood_at(*sim, {0.0}, h1);
  const auto lp1 = log_likelihood_at(*sim, {1.0}, h1);
  std::vector<double> ratio(n);
  for (std::size_t i = 0; i < n; ++i) ratio[i] = std::exp(lp0[i] - lp1[i]);
  const auto m = test::sample_moments(ratio);
  EXPECT_NEAR(m.mean, 1.0, z * test::mean_standard_error(m.variance, n));
}

// delta phi = wrap(MET_phi - muon_phi).
std::vector<double> delta_phi(const Sample& s) {
  std::vector<double> d(s[0].size());
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = rng::wrap_angle(s[4][i] - s[2][i]);
  return d;
}

TEST(Lepton, DeltaPhiLawForBothSpins) {
  const auto sim = make_simulator("lepton");
  const std::size_t n = 200000;
  const auto d0 = delta_phi(simulate_at(*sim, {600.0, 0.0}, n, 51));
  const auto d1 = delta_phi(simulate_at(*sim, {600.0, 1.0}, n, 52));
  EXPECT_GT(test::ks_statistic_pvalue(d0, [](double x) { return (x + pi) / (2 * pi); }).pvalue, 1e-4);
  const test::TabulatedCdf von_mises([](double x) { return std::exp(-2.5 * std::cos(x)); }, -pi, pi, 4000);
  EXPECT_GT(test::ks_statistic_pvalue(d1, von_mises).pvalue, 1e-4);
  // E[cos dphi] = -I1(2.5) / I0(2.5) for the von Mises around pi; Var[cos] <= 1.
  std::vector<double> c1(n);
  for (std::size_t i = 0; i < n; ++i) c1[i] = std::cos(d1[i]);
  EXPECT_NEAR(mean(c1), -test::bessel_i1(2.5) / test::bessel_i0(2.5), z * test::mean_standard_error(1.0, n));
}

TEST(Lepton, SpinLogRatioIsTheExactOne) {
  EXPECT_NEAR(Lepton::log_i0_kappa, std::log(test::bessel_i0(2.5)), 1e-12);
  // Under spin 0 the exact ratio p1/p0 averages to one: E[exp(-2.5 cos) / I0(2.5)] over uniform dphi.
  const auto sim = make_simulator("lepton");
  const std::size_t n = 200000;
  const Sample s = simulate_at(*sim, {800.0, 0.0}, n, 61);
  std::vector<double> ratio(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x[5] = {s[0][i], s[1][i], s[2][i], s[3][i], s[4][i]};
    ratio[i] = std::exp(Lepton::spin_log_ratio(x));
  }
  const auto m = test::sample_moments(ratio);
  EXPECT_NEAR(m.mean, 1.0, z * test::mean_standard_error(m.variance, n));
}

TEST(Lepton, KinematicsFollowTheMass) {
  const auto sim = make_simulator("lepton");
  const std::size_t n = 200000;
  for (double m : {400.0, 700.0, 1000.0}) {
    const Sample s = simulate_at(*sim, {m, 1.0}, n, 71);
    // muon_pt = pT_raw * N(1, 0.05^2), pT_raw ~ Gamma(2, m/5): mean 2m/5, E[pt^2] = 6 (m/5)^2 (1 + 0.05^2).
    const double scale = m / 5;
    const double pt_var = 6 * scale * scale * (1 + 0.0025) - 4 * scale * scale;
    const auto pt = test::sample_moments(s[0]);
    EXPECT_NEAR(pt.mean, 2 * scale, z * test::mean_standard_error(pt_var, n)) << "m=" << m;
    // MET = MET_raw * N(1, 0.08^2) with E[MET_raw] = alpha(m) 2m/5 + 2 * 0.0375 m (the clip at 0 is
    // negligible: it needs N(1, 0.2^2) < 0).
    const double alpha = std::min(0.8, std::max(0.4, 0.8 - 0.3 * (m - 400) / 600));
    const auto met = test::sample_moments(s[3]);
    EXPECT_NEAR(met.mean, alpha * 2 * scale + 2 * 0.0375 * m, z * test::mean_standard_error(met.variance, n))
        << "m=" << m;
    // muon_eta ~ N(0, w^2), w = 1 + (m - 400) / 600.
    const double w = 1 + (m - 400) / 600;
    const auto eta = test::sample_moments(s[1]);
    EXPECT_NEAR(eta.mean, 0.0, z * test::mean_standard_error(w * w, n));
    EXPECT_NEAR(eta.variance, w * w, z * test::variance_standard_error(w * w, 3 * w * w * w * w, n))
        << "m=" << m;
    EXPECT_GT(test::ks_statistic_pvalue(s[2], [](double x) { return (x + pi) / (2 * pi); }).pvalue, 1e-4);
  }
}

// A simulator by name; external runs the example program (docs/external_simulators.md), which keys every
// row's stream by (seed, index) as the built-in ones do.
std::unique_ptr<Simulator> simulator_for_test(const std::string& name) {
  if (name != "external") return make_simulator(name);
  return make_simulator(name, {{"command", "[" NSBI_SOURCE_DIR "/examples/external/smeared_gaussian.py]"}});
}

TEST(Simulators, RowsDependOnlyOnTheirGlobalIndex) {
  // Simulating rows [0, 1000) at once or as [0, 300) + [300, 1000) gives the same bits (20 rows split at 6
  // for an image simulator, whose rows cost milliseconds each).
  for (const auto& name : simulator_names()) {
    const auto sim = simulator_for_test(name);
    const auto& info = sim->info();
    const std::size_t n = info.is_array() ? 20 : 1000;
    const std::size_t cut = n * 3 / 10;
    Matrix theta = make_matrix("theta", n, info.n_parameters());
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < info.n_parameters(); ++p) {
        const auto& par = info.parameters[p];
        theta(i, p) = par.is_discrete() ? par.hypotheses[i % par.hypotheses.size()]
                                        : par.min + (par.max - par.min) * double(i % 17) / 16;
      }
    Matrix whole = make_matrix("whole", n, info.n_observables());
    Matrix split = make_matrix("split", n, info.n_observables());
    sim->simulate(theta, whole, 5000, 99);
    const auto first = std::make_pair(std::size_t{0}, cut);
    const auto second = std::make_pair(cut, n);
    sim->simulate(Kokkos::subview(theta, first, Kokkos::ALL), Kokkos::subview(split, first, Kokkos::ALL),
                  5000, 99);
    sim->simulate(Kokkos::subview(theta, second, Kokkos::ALL), Kokkos::subview(split, second, Kokkos::ALL),
                  5000 + cut, 99);
    for (std::size_t i = 0; i < n * info.n_observables(); ++i)
      ASSERT_EQ(whole.data()[i], split.data()[i]) << name << " element " << i;
    Matrix other_seed = make_matrix("other", n, info.n_observables());
    sim->simulate(theta, other_seed, 5000, 100);
    if (info.is_array()) {  // one pixel's count may repeat under another seed; the whole image does not
      bool differs = false;
      for (std::size_t d = 0; d < info.n_observables(); ++d)
        differs = differs || whole(0, d) != other_seed(0, d);
      EXPECT_TRUE(differs) << name;
    } else {
      EXPECT_NE(whole(0, 0), other_seed(0, 0)) << name;
    }
  }
}

TEST(Simulators, EachRowAloneEqualsTheRowInABlock) {
  // Rows in a block go through the vectorised path (and, where a rejection step ran out, the scalar
  // continuation); a block of one row through the scalar path. Both must give the same bits. 2000 rows
  // include ~12 (spin3d) and ~18 (lepton) spin-1 rows that need the continuation; an image simulator runs
  // 13 rows.
  for (const auto& name : simulator_names()) {
    const auto sim = simulator_for_test(name);
    const auto& info = sim->info();
    const std::size_t n = info.is_array() ? 13 : 2000;
    Matrix theta = make_matrix("theta", n, info.n_parameters());
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < info.n_parameters(); ++p) {
        const auto& par = info.parameters[p];
        theta(i, p) = par.is_discrete() ? par.hypotheses[i % par.hypotheses.size()]
                                        : par.min + (par.max - par.min) * double(i % 13) / 12;
      }
    Matrix block = make_matrix("block", n, info.n_observables());
    sim->simulate(theta, block, 70000, 5);
    Matrix alone = make_matrix("alone", 1, info.n_observables());
    for (std::size_t i = 0; i < n; ++i) {
      const auto row = std::make_pair(i, i + 1);
      sim->simulate(Kokkos::subview(theta, row, Kokkos::ALL), alone, 70000 + i, 5);
      for (std::size_t d = 0; d < info.n_observables(); ++d)
        ASSERT_EQ(alone(0, d), block(i, d)) << name << " row " << i << " observable " << d;
    }
  }
}

}  // namespace
}  // namespace nsbi::sims
