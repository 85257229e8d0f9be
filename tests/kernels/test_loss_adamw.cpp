// Binary cross-entropy on logits against its direct formula (extreme logits included) and AdamW against a
// two-step update computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/loss.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatVector;
using nsbi::test::float_vector;
using nsbi::test::to_host;

// The textbook form, -w [y log σ(s) + (1 - y) log(1 - σ(s))], in double: accurate for |s| <= 10, where
// neither σ nor 1 - σ rounds to 0 or 1.
double direct_bce(double s, double y, double w) {
  const double sigma = 1.0 / (1.0 + std::exp(-s));
  return -w * (y * std::log(sigma) + (1.0 - y) * std::log(1.0 - sigma));
}

TEST(BceWithLogits, MatchesTheDirectFormula) {
  const std::vector<float> logits{-9.5f, -3.0f, -0.25f, 0.0f, 0.7f, 2.0f, 6.0f, 10.0f};
  const std::vector<float> labels{0.0f, 1.0f, 1.0f, 0.0f, 0.3f, 1.0f, 0.0f, 1.0f};  // 0.3: a soft label
  const std::vector<float> weights{1.0f, 2.0f, 0.5f, 1.0f, 1.5f, 1.0f, 0.25f, 3.0f};
  const double global_batch = 20.0;  // this slice is part of a larger batch
  FloatVector gradient("gradient", logits.size());
  const double loss = nsbi::kernels::bce_with_logits(float_vector(logits), float_vector(labels),
                                                     float_vector(weights), global_batch, gradient);
  double want = 0.0;
  const std::vector<float> got = to_host(gradient);
  for (std::size_t i = 0; i < logits.size(); ++i) {
    want += direct_bce(logits[i], labels[i], weights[i]);
    const double sigma = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    const double want_gradient = weights[i] * (sigma - labels[i]) / global_batch;
    // float32 with a few roundings (exp within 1 ulp, a division, a subtraction without cancellation): 4 ulp.
    EXPECT_NEAR(want_gradient, got[i], 4.8e-7 * std::fabs(want_gradient)) << i;
  }
  // Each term within a few float ulp (log1p within 3 ulp), summed in double.
  EXPECT_NEAR(want / global_batch, loss, 5e-7 * want / global_batch);

  // Unweighted is weight 1.
  const double unweighted = nsbi::kernels::bce_with_logits(float_vector(logits), float_vector(labels),
                                                           FloatVector(), global_batch, gradient);
  double want_unweighted = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) want_unweighted += direct_bce(logits[i], labels[i], 1.0);
  EXPECT_NEAR(want_unweighted / global_batch, unweighted, 5e-7 * want_unweighted / global_batch);
}

TEST(BceWithLogits, ExtremeLogitsStayFinite) {
  // s = ±50: σ(50) rounds to 1 in double, so the direct formula would take log(0). The exact values:
  // ℓ(50, 1) = log(1 + e^-50) = e^-50 (to 1e-22 relative), ℓ(50, 0) = 50 + e^-50, and d ℓ / d s =
  // σ(s) - y = ∓e^-50 / (1 + e^-50) for the right labels, ±1 for the wrong ones. A NaN would trap.
  const std::vector<float> logits{50.0f, 50.0f, -50.0f, -50.0f};
  const std::vector<float> labels{1.0f, 0.0f, 0.0f, 1.0f};
  FloatVector gradient("gradient", 4);
  const double loss = nsbi::kernels::bce_with_logits(float_vector(logits), float_vector(labels),
                                                     FloatVector(), 1.0, gradient);
  const double tiny = std::exp(-50.0);
  EXPECT_NEAR(100.0 + 4.0 * tiny, loss, 1e-13);
  const std::vector<float> got = to_host(gradient);
  EXPECT_NEAR(-tiny, got[0], 5e-7 * tiny);  // a few ulp, as above
  EXPECT_LT(got[0], 0.0f);                  // not flushed to 0: float represents 2e-22
  EXPECT_EQ(1.0f, got[1]);
  EXPECT_NEAR(tiny, got[2], 5e-7 * tiny);
  EXPECT_EQ(-1.0f, got[3]);
}

TEST(BceWithLogits, SlicesOfAGlobalBatchSumToTheWhole) {
  // What data-parallel training relies on: the ranks' losses and gradients, each divided by the global
  // batch size, add up to the global mean.
  std::vector<float> logits, labels;
  for (int i = 0; i < 10; ++i) {
    logits.push_back(0.37f * static_cast<float>(i) - 1.5f);
    labels.push_back(static_cast<float>(i % 2));
  }
  FloatVector whole_gradient("whole", 10);
  const double whole = nsbi::kernels::bce_with_logits(float_vector(logits), float_vector(labels),
                                                      FloatVector(), 10.0, whole_gradient);
  const std::vector<float> first_logits(logits.begin(), logits.begin() + 4);
  const std::vector<float> first_labels(labels.begin(), labels.begin() + 4);
  const std::vector<float> second_logits(logits.begin() + 4, logits.end());
  const std::vector<float> second_labels(labels.begin() + 4, labels.end());
  FloatVector first_gradient("first", 4), second_gradient("second", 6);
  const double first = nsbi::kernels::bce_with_logits(float_vector(first_logits), float_vector(first_labels),
                                                      FloatVector(), 10.0, first_gradient);
  const double second = nsbi::kernels::bce_with_logits(
      float_vector(second_logits), float_vector(second_labels), FloatVector(), 10.0, second_gradient);
  EXPECT_NEAR(whole, first + second, 1e-15 * whole);
  std::vector<float> joined = to_host(first_gradient);
  for (float g : to_host(second_gradient)) joined.push_back(g);
  EXPECT_EQ(to_host(whole_gradient), joined);
}

TEST(AdamW, TwoStepsMatchTheHandComputedUpdate) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; p = (1, -2), g1 = (0.5, -3), g2 = (-0.25, 1).
  // Step 1, first parameter: p = 1 · (1 - 0.001) = 0.999, m = 0.05, v = 0.00025, m̂ = 0.5, sqrt(v̂) = 0.5,
  //   p = 0.999 - 0.1 · 0.5 / (0.5 + 1e-8) = 0.899000002.
  // Step 2: p = 0.899000002 · 0.999, m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
  //   p -= 0.1 · (0.02 / 0.19) / (sqrt(0.00031225 / 0.001999) + 1e-8) → 0.8714672987.
  // The second parameter the same way: -1.8980000003, then -1.8560801433.
  const nsbi::kernels::AdamWConfig config{0.1, 0.9, 0.999, 1e-8, 0.01};
  nsbi::kernels::AdamWState state(2);
  FloatVector parameters = float_vector({1.0f, -2.0f});
  nsbi::kernels::adamw_step(config, state, parameters, float_vector({0.5f, -3.0f}));
  std::vector<float> p = to_host(parameters);
  // float arithmetic on values of order 1: a few ulp (1.2e-7 each).
  EXPECT_NEAR(0.899000002, p[0], 5e-7);
  EXPECT_NEAR(-1.8980000003, p[1], 5e-7);
  nsbi::kernels::adamw_step(config, state, parameters, float_vector({-0.25f, 1.0f}));
  p = to_host(parameters);
  EXPECT_NEAR(0.8714672987, p[0], 5e-7);
  EXPECT_NEAR(-1.8560801433, p[1], 5e-7);
  EXPECT_EQ(2u, state.step);
  const std::vector<float> m = to_host(state.first_moment);
  const std::vector<float> v = to_host(state.second_moment);
  EXPECT_NEAR(0.02, m[0], 1e-8);
  EXPECT_NEAR(-0.17, m[1], 1e-7);
  EXPECT_NEAR(0.00031225, v[0], 1e-10);
  EXPECT_NEAR(0.009991, v[1], 1e-9);
}

TEST(AdamW, ZeroGradientOnlyDecaysTheWeights) {
  // With g = 0 the moments stay 0 and the update is p (1 - lr λ) exactly: what freezes nothing by accident.
  const nsbi::kernels::AdamWConfig config{0.5, 0.9, 0.999, 1e-8, 0.1};
  nsbi::kernels::AdamWState state(3);
  FloatVector parameters = float_vector({1.0f, -4.0f, 0.0f});
  nsbi::kernels::adamw_step(config, state, parameters, float_vector({0.0f, 0.0f, 0.0f}));
  const std::vector<float> want{0.95f, -3.8f, 0.0f};
  EXPECT_EQ(want, to_host(parameters));
}

}  // namespace
