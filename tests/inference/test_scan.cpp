// Grids, scans, refined minima, profiles, toys and the analysis of observed data (inference/), against closed
// forms.

#include <gtest/gtest.h>

#include <cmath>

#include "nsbi/inference/analysis.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/scan.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::inference {
namespace {

Grid square_grid(std::size_t points) {
  return Grid({{"a", linspace(-1, 1, points), false}, {"b", linspace(-1, 1, points), false}});
}

// A quadratic t: log r(x_i|θ) = −[(θ − c)ᵀ A (θ − c)] / (2N) + x_i(0) · 0, so t(D|θ) = (θ − c)ᵀ A (θ − c) for
// N events, whatever the events. Refinement must find c off the grid exactly (t is quadratic).
class QuadraticEstimator final : public RatioEstimator {
 public:
  QuadraticEstimator(double ca, double cb, double aa, double ab, double bb)
      : ca_(ca), cb_(cb), aa_(aa), ab_(ab), bb_(bb) {}
  const std::string& name() const override { return name_; }
  void log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) override {
    const double n = static_cast<double>(x.extent(0));
    for (std::size_t k = 0; k < theta.extent(0); ++k) {
      const double da = theta(k, 0) - ca_;
      const double db = theta(k, 1) - cb_;
      const double t = aa_ * da * da + 2 * ab_ * da * db + bb_ * db * db;
      for (std::size_t i = 0; i < x.extent(0); ++i) out(i, k) = -t / (2 * n);
    }
    rows_ += x.extent(0) * theta.extent(0);
  }
  std::uint64_t rows_evaluated() const override { return rows_; }
  std::string gemm_implementations() const override { return ""; }

 private:
  double ca_, cb_, aa_, ab_, bb_;
  std::string name_ = "quadratic";
  std::uint64_t rows_ = 0;
};

TEST(Grid, IndexingVolumesAndInterpolation) {
  const Grid grid({{"a", linspace(0, 1, 3), false}, {"s", {0, 1}, true}, {"c", linspace(-2, 2, 5), false}});
  ASSERT_EQ(grid.size(), 30u);
  for (std::size_t k = 0; k < grid.size(); ++k) EXPECT_EQ(grid.ravel(grid.unravel(k)), k);
  double theta[3];
  grid.point(grid.ravel({2, 1, 0}), theta);
  EXPECT_DOUBLE_EQ(theta[0], 1.0);
  EXPECT_DOUBLE_EQ(theta[1], 1.0);
  EXPECT_DOUBLE_EQ(theta[2], -2.0);
  // Cells tile the continuous box [0,1]×[−2,2] once per discrete value.
  double volume = 0;
  for (std::size_t k = 0; k < grid.size(); ++k) volume += grid.cell_volume(k);
  EXPECT_NEAR(volume, 2 * 1.0 * 4.0, 1e-12);
  // Multilinear interpolation reproduces a function linear in each continuous axis.
  std::vector<double> values(grid.size());
  for (std::size_t k = 0; k < grid.size(); ++k) {
    grid.point(k, theta);
    values[k] = 1 + 2 * theta[0] - 3 * theta[2] + theta[0] * theta[2] + 10 * theta[1];
  }
  const double at[3] = {0.37, 1.0, -0.81};
  EXPECT_NEAR(interpolate(grid, values, at), 1 + 2 * 0.37 + 3 * 0.81 - 0.37 * 0.81 + 10, 1e-12);
}

TEST(Scan, RefinementFindsTheMinimumOfAQuadraticOffTheGrid) {
  const Grid grid = square_grid(11);
  QuadraticEstimator estimator(0.237, -0.418, 30.0, 12.0, 20.0);
  Matrix x("x", 20, 2);
  const ScanValues values = scan_experiments(estimator, x, 1, 20, grid);
  const Minimum grid_only = minimise(estimator, x, grid, values.t, {false, 0});
  EXPECT_GT(grid_only.t, 1e-3);  // the grid misses the minimum
  const Minimum refined = minimise(estimator, x, grid, values.t, {});
  EXPECT_NEAR(refined.theta[0], 0.237, 1e-9);
  EXPECT_NEAR(refined.theta[1], -0.418, 1e-9);
  EXPECT_NEAR(refined.t, 0.0, 1e-12);
}

TEST(Scan, RefinementStaysInsideTheGridRange) {
  const Grid grid = square_grid(9);
  QuadraticEstimator estimator(1.7, 0.2, 5.0, 0.0, 5.0);  // the minimum is beyond a = 1
  Matrix x("x", 5, 2);
  const ScanValues values = scan_experiments(estimator, x, 1, 5, grid);
  const Minimum best = minimise(estimator, x, grid, values.t, {});
  EXPECT_DOUBLE_EQ(best.theta[0], 1.0);
  EXPECT_NEAR(best.theta[1], 0.2, 1e-9);
}

TEST(Scan, ExperimentsAreSummedIndependentlyOfBlocking) {
  // The exact gaussian2d ratio on toys: t of an experiment scanned with others equals t scanned alone, bit
  // for bit, and equals −2 Σ log r computed directly.
  const auto simulator = sims::make_simulator("gaussian2d");
  const Grid grid({{"mu2", linspace(-0.9, 0.9, 5), false}, {"rho12", linspace(-0.9, 0.9, 5), false}});
  Matrix x("x", 6 * 4, 2);
  const double theta[2] = {0.2, -0.3};
  simulate_toys(*simulator, theta, 11, ToyStage::calibrate, 0, 0, 4, x);
  ExactEstimator estimator(*simulator, {0.0, 0.0});
  const ScanValues all = scan_experiments(estimator, x, 6, 4, grid);
  for (std::size_t e = 0; e < 6; ++e) {
    const auto rows = std::make_pair(e * 4, e * 4 + 4);
    const ScanValues one = scan_experiments(estimator, Kokkos::subview(x, rows, Kokkos::ALL), 1, 4, grid);
    for (std::size_t k = 0; k < grid.size(); ++k) EXPECT_EQ(one.t[k], all.t[e * grid.size() + k]);
  }
  double point[2];
  grid.point(7, point);
  double expected = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const double a = x(i, 0);
    const double b = x(i, 1) - point[0];
    const double r = point[1];
    const double log_p = -0.5 * (a * a + b * b - 2 * r * a * b) / (1 - r * r) - 0.5 * std::log(1 - r * r);
    const double log_p0 = -0.5 * (x(i, 0) * x(i, 0) + x(i, 1) * x(i, 1));
    expected += -2 * (log_p - log_p0);
  }
  EXPECT_NEAR(all.t[7], expected, 1e-12);
}

TEST(Scan, ProfileMinimisesOverTheNuisanceAxes) {
  const Grid grid = square_grid(3);
  std::vector<double> values(grid.size());
  for (std::size_t k = 0; k < values.size(); ++k) values[k] = static_cast<double>((k * 7) % 5);
  const Profile profile = profile_out(grid, values, {false, true});
  ASSERT_EQ(profile.grid.size(), 3u);
  EXPECT_EQ(profile.grid.axes()[0].name, "a");
  for (std::size_t i = 0; i < 3; ++i) {
    double expected = 1e9;
    for (std::size_t j = 0; j < 3; ++j) expected = std::min(expected, values[grid.ravel({i, j})]);
    EXPECT_EQ(profile.values[i], expected);
  }
}

TEST(Toys, AToyIsTheSameWhicheverBlockMakesIt) {
  const auto simulator = sims::make_simulator("spin3d");
  const double h1[1] = {1.0};
  Matrix whole("whole", 10 * 3, 3);
  Matrix tail("tail", 4 * 3, 3);
  simulate_toys(*simulator, h1, 5, ToyStage::test_h1, 0, 0, 3, whole);
  simulate_toys(*simulator, h1, 5, ToyStage::test_h1, 0, 6, 3, tail);
  for (std::size_t i = 0; i < tail.extent(0); ++i)
    for (std::size_t d = 0; d < 3; ++d) EXPECT_EQ(tail(i, d), whole(18 + i, d));
  // Another stage or θ index draws other numbers.
  Matrix other("other", 10 * 3, 3);
  simulate_toys(*simulator, h1, 5, ToyStage::test_h0, 0, 0, 3, other);
  EXPECT_NE(other(0, 0), whole(0, 0));
  EXPECT_NE(toy_seed(5, ToyStage::calibrate, 1), toy_seed(5, ToyStage::calibrate, 2));
}

TEST(ExactRatio, LeptonHasTheSpinRatioAtOneMassOnly) {
  const auto lepton = sims::make_simulator("lepton");
  const double spin1[2] = {700, 1};
  const double spin0[2] = {700, 0};
  const double other_mass[2] = {650, 0};
  EXPECT_EQ(lepton->exact_ratio_unavailable(spin1, spin0), "");
  EXPECT_NE(lepton->exact_ratio_unavailable(spin1, other_mass), "");
  Matrix x("x", 3, 5);
  const double phis[3][2] = {{0.1, 0.1}, {0.2, 0.2 + 3.14159}, {-3.0, 2.9}};
  for (std::size_t i = 0; i < 3; ++i) {
    x(i, 2) = phis[i][0];
    x(i, 4) = phis[i][1];
  }
  Vector out("out", 3);
  lepton->exact_log_ratio(ExecutionSpace(), spin1, spin0, x, out);
  for (std::size_t i = 0; i < 3; ++i) {
    const double delta = std::remainder(phis[i][1] - phis[i][0], 2 * M_PI);
    EXPECT_NEAR(out(i), -2.5 * std::cos(delta) - std::log(std::cyl_bessel_i(0.0, 2.5)), 1e-12);
  }
}

// The analysis of observed data with b profiled: t = 30 (a − 0.237)² + 20 (b + 0.418)², so θ̂ = c, one dof,
// the 68% interval of a is 0.237 ± √(1/30) (less the profile's offset on the grid of b), and the posterior is
// a distribution with samples inside the grid.
TEST(Analysis, BestFitIntervalAndPosteriorOfAQuadraticT) {
  QuadraticEstimator estimator(0.237, -0.418, 30.0, 0.0, 20.0);
  const Grid grid = square_grid(21);
  const Matrix x("nsbi::test::events", 10, 1);
  AnalysisSettings settings;
  settings.profiled = {false, true};
  settings.posterior_samples = 100;
  settings.seed = 5;
  const Analysis r = analyse_observed(estimator, x, grid, settings);
  EXPECT_NEAR(r.best.theta[0], 0.237, 1e-9);
  EXPECT_NEAR(r.best.theta[1], -0.418, 1e-9);
  EXPECT_EQ(r.dof, 1);
  ASSERT_EQ(r.poi.grid.n_parameters(), 1u);
  const double offset = 20.0 * 0.018 * 0.018;  // the grid's b nearest to −0.418 is −0.4
  const double half_width = std::sqrt((1.0 - offset) / 30.0);
  const auto& bounds = r.one_d.at("a").second;  // [L, 2], the 68% level first
  EXPECT_NEAR(bounds[0], 0.237 - half_width, 0.01);
  EXPECT_NEAR(bounds[1], 0.237 + half_width, 0.01);
  double total = 0;
  for (const double p : r.posterior) total += p;
  EXPECT_NEAR(total, 1.0, 1e-12);
  ASSERT_EQ(r.samples.size(), 200u);
  for (const double v : r.samples) EXPECT_TRUE(v >= -1.0 && v <= 1.0);
  EXPECT_NE(r.summary.dump().find("\"best_fit\""), std::string::npos);
}

}  // namespace
}  // namespace nsbi::inference
