// The check of E_θ0[r̂] = 1 (check_expected_ratio) on sums of known r̂: its standard error and effective
// events against their definitions, the Bonferroni threshold, and the verdict: consistent, failure (a point 5
// standard errors off, beyond the tolerance), significant within the tolerance, noise-limited (a standard
// error too large for the tolerance, a heavy-tailed point, a point without events).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nsbi/training/diagnostics.hpp"

namespace nsbi::training {
namespace {

// Σ r̂, Σ r̂², n of `values`, appended to `sums` as one grid point.
void add_point(const std::vector<double>& values, std::vector<double>& sums) {
  double total = 0, squares = 0;
  for (const double r : values) {
    total += r;
    squares += r * r;
  }
  sums.insert(sums.end(), {total, squares, static_cast<double>(values.size())});
}

// n events at 1 + shift − d and n at 1 + shift + d: mean 1 + shift.
std::vector<double> pairs(std::size_t n, double d, double shift) {
  std::vector<double> values;
  for (std::size_t i = 0; i < n; ++i) values.insert(values.end(), {1.0 + shift - d, 1.0 + shift + d});
  return values;
}

TEST(ExpectedRatioCheck, StandardErrorAndEffectiveEventsFollowTheirDefinitions) {
  std::vector<double> values;
  for (int i = 0; i < 1000; ++i) values.push_back(0.2 + 1.6 * std::fmod(0.618034 * i, 1.0));
  std::vector<double> sums;
  add_point(values, sums);
  const ExpectedRatioCheck check = check_expected_ratio(sums, 0.05);
  // Two-pass mean and sample variance of the same values.
  double mean = 0;
  for (const double r : values) mean += r / values.size();
  double variance = 0, squares = 0, total = 0;
  for (const double r : values) {
    variance += (r - mean) * (r - mean) / (values.size() - 1);
    squares += r * r;
    total += r;
  }
  const double standard_error = std::sqrt(variance / values.size());
  EXPECT_NEAR(check.mean[0], mean, 1e-12);
  EXPECT_NEAR(check.standard_error[0], standard_error, 1e-9 * standard_error);
  EXPECT_NEAR(check.z[0], (mean - 1) / standard_error, 1e-6);
  EXPECT_NEAR(check.effective_events[0], total * total / squares, 1e-9);
  EXPECT_LT(check.effective_events[0], 1000.0);  // unequal r̂ count for fewer than n
}

TEST(ExpectedRatioCheck, ThresholdIsTheTwoSidedOnePercentLevelOverTheGrid) {
  EXPECT_NEAR(check_expected_ratio({1000, 1000, 1000}, 0.05).threshold, 2.5758293035489, 1e-9);  // Φ⁻¹(0.995)
  const std::vector<double> ten(30, 1.0);
  EXPECT_NEAR(check_expected_ratio(ten, 0.05).threshold, 3.2905267314919, 1e-9);  // Φ⁻¹(1 − 0.01 / 20)
}

TEST(ExpectedRatioCheck, ExactlyOneIsConsistent) {
  std::vector<double> sums;
  for (int k = 0; k < 5; ++k) add_point(std::vector<double>(1000, 1.0), sums);
  const ExpectedRatioCheck check = check_expected_ratio(sums, 0.05);
  EXPECT_EQ(check.verdict, "consistent");
  EXPECT_EQ(check.failed, 0u);
  EXPECT_EQ(check.noise_limited, 0u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(check.z[k], 0.0);
    EXPECT_EQ(check.standard_error[k], 0.0);
    EXPECT_EQ(check.effective_events[k], 1000.0);
  }
}

TEST(ExpectedRatioCheck, FiveStandardErrorsOffBeyondTheToleranceIsAFailureThreeIsNotOnNinePoints) {
  // 2n events at 1 ± d: sample SD d sqrt(2n / (2n − 1)), standard error 0.0095; the shift moves the mean by
  // z standard errors. With tolerance 0.04 the check sees deviations of its size (3.26 x 0.0095 = 0.031).
  const std::size_t n = 500;
  const double d = 0.3;
  const double standard_error = d * std::sqrt(2.0 * n / (2.0 * n - 1)) / std::sqrt(2.0 * n);
  const auto grid = [&](double z_of_point_4, double tolerance) {
    std::vector<double> sums;
    for (int k = 0; k < 9; ++k) add_point(pairs(n, d, k == 4 ? z_of_point_4 * standard_error : 0.0), sums);
    return check_expected_ratio(sums, tolerance);
  };
  const ExpectedRatioCheck off = grid(5.0, 0.04);  // 0.047 off
  EXPECT_EQ(off.verdict, "failure");
  EXPECT_EQ(off.failed, 1u);
  EXPECT_EQ(off.worst, 4u);
  EXPECT_NEAR(off.z[4], 5.0, 1e-6);
  const ExpectedRatioCheck low = grid(-5.0, 0.04);  // whatever the sign
  EXPECT_EQ(low.verdict, "failure");
  EXPECT_NEAR(low.z[4], -5.0, 1e-6);
  // 3 standard errors: beyond the one-point level (2.58) but within nine points' (3.26).
  const ExpectedRatioCheck three = grid(3.0, 0.04);
  EXPECT_NEAR(three.z[4], 3.0, 1e-6);
  EXPECT_EQ(three.verdict, "consistent");
  EXPECT_EQ(three.significant, 0u);
  EXPECT_EQ(three.worst, 4u);
  // 5 standard errors within a tolerance of 0.1: beyond noise, but accepted.
  const ExpectedRatioCheck accepted = grid(5.0, 0.1);
  EXPECT_EQ(accepted.verdict, "consistent");
  EXPECT_EQ(accepted.significant, 1u);
  // A tolerance of 0.02 is below what this standard error can see: noise-limited at every point.
  const ExpectedRatioCheck blurred = grid(0.0, 0.02);
  EXPECT_EQ(blurred.verdict, "noise-limited");
  EXPECT_EQ(blurred.noise_limited, 9u);
}

TEST(ExpectedRatioCheck, HeavyTailedOrEmptyPointsAreNoiseLimited) {
  // 999 events at r̂ = 0.0005 and one at 499.5: mean 0.5, but about one effective event carries it, so its
  // standard error cannot decide.
  std::vector<double> heavy(999, 0.0005);
  heavy.push_back(499.5);
  std::vector<double> sums;
  add_point(std::vector<double>(1000, 1.0), sums);
  add_point(heavy, sums);
  ExpectedRatioCheck check = check_expected_ratio(sums, 0.05);
  EXPECT_LT(check.effective_events[1], 2.0);
  EXPECT_EQ(check.noise_limited, 1u);
  EXPECT_EQ(check.verdict, "noise-limited");
  // Too few events in all (50 at 1 ± 0.5) is noise-limited too, even far off.
  sums.resize(3);
  add_point(pairs(25, 0.5, 2.0), sums);
  check = check_expected_ratio(sums, 0.05);
  EXPECT_GT(std::abs(check.z[1]), 5.0);
  EXPECT_EQ(check.verdict, "noise-limited");
  // A point without events has no z; a failure elsewhere decides.
  sums.resize(3);
  sums.insert(sums.end(), {0.0, 0.0, 0.0});
  add_point(std::vector<double>(1000, 1.2), sums);
  check = check_expected_ratio(sums, 0.05);
  EXPECT_TRUE(std::isnan(check.z[1]));
  EXPECT_EQ(check.noise_limited, 1u);
  EXPECT_EQ(check.failed, 1u);
  EXPECT_EQ(check.worst, 2u);
  EXPECT_EQ(check.z[2], HUGE_VAL);  // r̂ = 1.2 exactly: no spread, any offset is infinitely significant
  EXPECT_EQ(check.verdict, "failure");
}

}  // namespace
}  // namespace nsbi::training
