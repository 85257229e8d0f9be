// The toy stages' statistics (inference/neyman.hpp, hypothesis.hpp, toy_items.hpp) on small hand-made toy
// samples whose answers are counted by hand: belts, confidence sets, coverage counts, p-values, and the
// layout of work items.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "nsbi/inference/hypothesis.hpp"
#include "nsbi/inference/neyman.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/toy_items.hpp"

namespace nsbi::inference {
namespace {

Grid line_grid() { return Grid({{"a", {0.0, 1.0, 2.0}, false}}); }

TEST(Neyman, WilksThresholdIsTheChiSquareQuantileOrZero) {
  EXPECT_EQ(wilks_threshold(0.95, 1), chi2_quantile(0.95, 1));
  EXPECT_EQ(wilks_threshold(0.95, 0), 0.0);
}

TEST(Neyman, BeltsAreEmpiricalQuantilesAndWilksFractions) {
  // Ten toys per point with q = 0.5, 1.5, ..., 9.5 (shifted by k): the fraction ≤ χ²_1(0.6827) = 1 is 1/10
  // at point 0 and 0 elsewhere.
  std::vector<std::vector<double>> q(3);
  for (std::size_t k = 0; k < 3; ++k)
    for (int i = 0; i < 10; ++i) q[k].push_back(0.5 + i + static_cast<double>(k));
  const std::vector<double> levels = {0.6826894921370859, 0.95};
  json::Object summary;
  const Belts belts = neyman_belts(line_grid(), q, levels, 1, summary);
  ASSERT_EQ(belts.thresholds.size(), 6u);
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t l = 0; l < 2; ++l) {
      std::vector<double> values = q[k];
      EXPECT_EQ(belts.thresholds[k * 2 + l], empirical_quantile(values, levels[l]));
    }
  EXPECT_EQ(belts.wilks_fraction[0], 0.1);
  EXPECT_EQ(belts.wilks_fraction[2], 0.0);
  const std::string text = summary.dump();
  EXPECT_NE(text.find("\"c_alpha\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"wilks_thresholds\""), std::string::npos) << text;
}

TEST(Neyman, ConfidenceSetHoldsThePointsBelowTheirBelt) {
  // Belt 1 everywhere at one level; observed q 2, 0.5, 2: only the middle point is inside.
  const std::vector<double> thresholds = {1.0, 1.0, 1.0};
  const auto sets = confidence_sets(line_grid(), {0.68}, thresholds, {2.0, 0.5, 2.0});
  ASSERT_EQ(sets.size(), 1u);
  const std::string text = sets[0].dump();
  EXPECT_NE(text.find("\"grid_points_inside\": 1"), std::string::npos) << text;
  EXPECT_NE(text.find("\"parameter\": \"a\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"pieces\""), std::string::npos) << text;
}

TEST(Neyman, ThresholdInterpolatesTheBeltOfTheLevel) {
  BeltTable belts;
  belts.grid = line_grid();
  belts.levels = {0.5, 0.9};
  belts.thresholds = {1.0, 10.0, 2.0, 20.0, 3.0, 30.0};  // [K, L]
  const double theta = 1.5;
  EXPECT_DOUBLE_EQ(neyman_threshold(belts, 0.9, &theta), 25.0);
  EXPECT_DOUBLE_EQ(neyman_threshold(belts, 0.5, &theta), 2.5);
}

TEST(Neyman, CoverageCountsTheToysBelowTheThreshold) {
  const std::vector<double> q = {0.1, 0.2, 0.3, 5.0};
  const CoverageCount count = coverage_count(q, 1.0, 0.75);
  EXPECT_EQ(count.covered, 3u);
  const BinomialInterval interval = clopper_pearson(3, 4, 0.95);
  EXPECT_EQ(count.interval.lower, interval.lower);
  EXPECT_EQ(count.interval.upper, interval.upper);
  EXPECT_TRUE(count.consistent);
}

TEST(Hypothesis, MedianAndPValuesAreCountsOfToys) {
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({4.0, 1.0, 2.0, 3.0}), 2.5);
  const std::vector<double> t_h0 = {1, 2, 3, 4};
  const std::vector<double> t_h1 = {-4, -3, -2, 2};
  // median under H1: −2.5; no H0 toy below it. Observed t = 2.5: 2 H0 toys ≤ it, none of H1 ≥ it.
  const std::string text = simple_test_summary(t_h0, t_h1, 2.5).dump();
  EXPECT_NE(text.find("\"median_t_under_h1\": -2.5"), std::string::npos) << text;
  EXPECT_NE(text.find("\"count\": 2"), std::string::npos) << text;
  EXPECT_NE(text.find("\"t_observed\": 2.5"), std::string::npos) << text;
  const std::string expected_only = simple_test_summary(t_h0, t_h1, std::nullopt).dump();
  EXPECT_EQ(expected_only.find("t_observed"), std::string::npos) << expected_only;
}

TEST(ToyItems, PlanAndTablesFollowTheItemLayout) {
  const ToyPlan plan(5, 2, 3);  // blocks of 2, 2, 1 toys
  EXPECT_EQ(plan.blocks_per_point, 3u);
  EXPECT_EQ(plan.block_size(2), 1u);
  EXPECT_EQ(plan.n_items(4), 12u);
  EXPECT_EQ(ToyPlan(3, 10, 1).toys_per_item, 3u);
  // Two estimators, one point: item b holds estimator 0's toys then estimator 1's, NaN-padded.
  const double nan = std::nan("");
  const std::vector<double> merged = {1, 2, 10, 20, 3, 4, 30, 40, 5, nan, 50, nan};
  const auto q = q_toy_table(merged, 2, 1, plan);
  EXPECT_EQ(q[0][0], (std::vector<double>{1, 2, 3, 4, 5}));
  EXPECT_EQ(q[1][0], (std::vector<double>{10, 20, 30, 40, 50}));
  // The test: items [0, 3) under H0, [3, 6) under H1, one estimator.
  const std::vector<double> t_merged = {1, 2, 3, 4, 5, nan, 6, 7, 8, 9, 10, nan};
  const auto t = simple_test_table(t_merged, 1, plan);
  EXPECT_EQ(t[0][0], (std::vector<double>{1, 2, 3, 4, 5}));
  EXPECT_EQ(t[0][1], (std::vector<double>{6, 7, 8, 9, 10}));
}

}  // namespace
}  // namespace nsbi::inference
