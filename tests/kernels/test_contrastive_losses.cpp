// The contrastive losses NRE-B and NRE-C and the balancing penalty's pieces against their definitions
// written out directly in double, their gradients against central finite differences of those definitions,
// NRE-C's K = 1, γ = 1 corner against binary cross-entropy, and extreme logits.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "nsbi/kernels/loss.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatVector;
using nsbi::test::float_vector;
using nsbi::test::to_host;

// Logits of n examples with `per` logits each, in blocks (logits[a·n + i]), spread over [−4, 4].
std::vector<float> block_logits(std::size_t n, std::size_t per) {
  std::vector<float> s(n * per);
  for (std::size_t j = 0; j < s.size(); ++j) s[j] = static_cast<float>(4.0 * std::sin(1.7 * j + 0.3));
  return s;
}

// Definition of NRE-B, one example: −log(e^{s_0} / Σ_a e^{s_a}).
double direct_nre_b(const std::vector<double>& s) {
  double z = 0.0;
  for (const double v : s) z += std::exp(v);
  return -std::log(std::exp(s[0]) / z);
}

// Definition of NRE-C, one example of K + 1 logits: the dependent set s_0..s_{K−1} with the true θ in it,
// the independent set s_1..s_K; q(y) of the paper's classifier with r̂ = e^s.
double direct_nre_c(const std::vector<double>& s, double gamma) {
  const std::size_t k = s.size() - 1;
  const double g = gamma / static_cast<double>(k);
  double dependent = 1.0, independent = 1.0;
  for (std::size_t a = 0; a < k; ++a) dependent += g * std::exp(s[a]);
  for (std::size_t a = 1; a <= k; ++a) independent += g * std::exp(s[a]);
  const double q_true = g * std::exp(s[0]) / dependent;
  const double q_none = 1.0 / independent;
  return -(gamma / (1.0 + gamma) * std::log(q_true) + 1.0 / (1.0 + gamma) * std::log(q_none));
}

// Σ_i w_i ℓ(logits of example i) / global, in double, from the block layout.
double direct_total(const std::vector<double>& logits, std::size_t n, const std::vector<float>& weights,
                    double global, const std::function<double(const std::vector<double>&)>& loss) {
  const std::size_t per = logits.size() / n;
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> s(per);
    for (std::size_t a = 0; a < per; ++a) s[a] = logits[a * n + i];
    total += (weights.empty() ? 1.0 : weights[i]) * loss(s);
  }
  return total / global;
}

// Checks a kernel's loss and gradient against the direct definition and its central differences.
void check_against_definition(const std::vector<float>& logits, std::size_t n,
                              const std::vector<float>& weights, double global,
                              const std::function<double(const std::vector<double>&)>& loss, double got_loss,
                              const FloatVector& gradient) {
  std::vector<double> s(logits.begin(), logits.end());
  const double want = direct_total(s, n, weights, global, loss);
  // Double throughout; the gradients are rounded to float (half an ulp, 6e-8 relative).
  EXPECT_NEAR(want, got_loss, 1e-12 * std::fabs(want));
  const std::vector<float> got = to_host(gradient);
  const double h = 1e-5;
  for (std::size_t j = 0; j < s.size(); ++j) {
    std::vector<double> up = s, down = s;
    up[j] += h;
    down[j] -= h;
    const double numeric =
        (direct_total(up, n, weights, global, loss) - direct_total(down, n, weights, global, loss)) / (2 * h);
    // Central differences: truncation O(h²) ≈ 1e-10 of the second derivatives (≤ 1 here), rounding of the
    // sums ≈ 1e-16 / h = 1e-11; plus the float rounding of the kernel's gradient.
    EXPECT_NEAR(numeric, got[j], 1e-8 + 1.2e-7 * std::fabs(numeric)) << "logit " << j;
  }
}

TEST(NreB, MatchesItsDefinitionAndItsFiniteDifferences) {
  const std::size_t n = 6, k = 4;
  const std::vector<float> logits = block_logits(n, k);
  const std::vector<float> weights{1.0f, 2.0f, 0.0f, 0.5f, 1.0f, 3.0f};
  FloatVector gradient("gradient", n * k);
  const double loss = nsbi::kernels::nre_b(float_vector(logits), n, k, float_vector(weights), 20.0, gradient);
  check_against_definition(logits, n, weights, 20.0, direct_nre_b, loss, gradient);
  // Unweighted is weight 1.
  const double unweighted = nsbi::kernels::nre_b(float_vector(logits), n, k, FloatVector(), 20.0, gradient);
  check_against_definition(logits, n, {}, 20.0, direct_nre_b, unweighted, gradient);
}

TEST(NreB, OnlyDifferencesBetweenCandidatesMatter) {
  // Adding c(x_i) to every logit of example i changes neither the loss nor its gradient: NRE-B's logit is
  // log r up to a function of x.
  const std::size_t n = 5, k = 3;
  std::vector<float> logits = block_logits(n, k);
  for (float& s : logits) s = std::round(8.0f * s) / 8.0f;  // so that the shifts below are exact in float
  FloatVector gradient("gradient", n * k), shifted_gradient("shifted", n * k);
  const double loss = nsbi::kernels::nre_b(float_vector(logits), n, k, FloatVector(), 5.0, gradient);
  for (std::size_t a = 0; a < k; ++a)
    for (std::size_t i = 0; i < n; ++i) logits[a * n + i] += 2.0f * static_cast<float>(i);  // exact in float
  const double shifted =
      nsbi::kernels::nre_b(float_vector(logits), n, k, FloatVector(), 5.0, shifted_gradient);
  EXPECT_NEAR(loss, shifted, 1e-13);
  const std::vector<float> a = to_host(gradient), b = to_host(shifted_gradient);
  for (std::size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-7) << j;
}

TEST(NreC, MatchesItsDefinitionAndItsFiniteDifferences) {
  const std::size_t n = 5;
  const std::vector<float> weights{1.0f, 0.5f, 2.0f, 1.0f, 0.0f};
  for (const std::size_t k : {1u, 2u, 5u})
    for (const double gamma : {1.0, 0.25, 4.0}) {
      SCOPED_TRACE("K = " + std::to_string(k) + ", γ = " + std::to_string(gamma));
      const std::vector<float> logits = block_logits(n, k + 1);
      FloatVector gradient("gradient", n * (k + 1));
      const double loss =
          nsbi::kernels::nre_c(float_vector(logits), n, k, gamma, float_vector(weights), 8.0, gradient);
      check_against_definition(
          logits, n, weights, 8.0, [&](const std::vector<double>& s) { return direct_nre_c(s, gamma); }, loss,
          gradient);
    }
}

TEST(NreC, OneClassAndEvenOddsIsBinaryCrossEntropy) {
  // K = 1, γ = 1: ½ BCE(s_0, 1) + ½ BCE(s_1, 0) per example, i.e. bce_with_logits over the 2n pairs with
  // the examples' count n doubled as its normaliser.
  const std::size_t n = 7;
  const std::vector<float> logits = block_logits(n, 2);
  std::vector<float> labels(2 * n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) labels[i] = 1.0f;
  FloatVector contrastive("contrastive", 2 * n), binary("binary", 2 * n);
  const double c = nsbi::kernels::nre_c(float_vector(logits), n, 1, 1.0, FloatVector(), 7.0, contrastive);
  const double b =
      nsbi::kernels::bce_with_logits(float_vector(logits), float_vector(labels), FloatVector(), 14.0, binary);
  // bce_with_logits works in float per sample (a few ulp), nre_c in double.
  EXPECT_NEAR(c, b, 1e-6 * b);
  const std::vector<float> x = to_host(contrastive), y = to_host(binary);
  for (std::size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(x[j], y[j], 1e-6 * std::fabs(y[j]) + 1e-12) << j;
}

TEST(Contrastive, ExtremeLogitsStayFinite) {
  // ±300: e^{300} overflows float and e^{600} nearly double; the losses subtract the largest exponent. A NaN
  // would trap (FE_INVALID); an overflow would show as ∞.
  const std::vector<float> logits{300.0f, -300.0f, -300.0f, 300.0f, 0.0f, 300.0f};  // n = 2, 3 per example
  FloatVector gradient("gradient", 6);
  const double b = nsbi::kernels::nre_b(float_vector(logits), 2, 3, FloatVector(), 2.0, gradient);
  // Example 0 (300, −300, 0) picks its true candidate: loss e^{−300} ≈ 0; example 1 (−300, 300, 300) has
  // its true logit 600 below two best ones: loss 600 + log 2. The mean of the two:
  EXPECT_NEAR(b, 300.0 + 0.5 * std::log(2.0), 1e-9);
  for (const float g : to_host(gradient)) EXPECT_TRUE(std::isfinite(g));
  const double c = nsbi::kernels::nre_c(float_vector(logits), 2, 2, 1.0, FloatVector(), 2.0, gradient);
  EXPECT_TRUE(std::isfinite(c));
  for (const float g : to_host(gradient)) EXPECT_TRUE(std::isfinite(g));
}

TEST(Balance, SigmoidSumAndItsGradient) {
  // Two blocks of n = 3 pairs sharing the weights of their examples.
  const std::vector<float> logits{-2.0f, 0.0f, 1.5f, 3.0f, -0.5f, 0.25f};
  const std::vector<float> weights{1.0f, 2.0f, 0.5f};
  double want = 0.0;
  for (std::size_t j = 0; j < logits.size(); ++j)
    want += weights[j % 3] / (1.0 + std::exp(-static_cast<double>(logits[j])));
  EXPECT_NEAR(nsbi::kernels::sigmoid_sum(float_vector(logits), float_vector(weights)), want, 1e-14);
  FloatVector gradient = float_vector(std::vector<float>(6, 1.0f));  // added to what is there
  nsbi::kernels::add_sigmoid_gradient(float_vector(logits), float_vector(weights), 0.5, gradient);
  const std::vector<float> got = to_host(gradient);
  for (std::size_t j = 0; j < logits.size(); ++j) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[j])));
    EXPECT_NEAR(got[j], 1.0 + 0.5 * weights[j % 3] * p * (1.0 - p), 1.2e-7) << j;
  }
}

}  // namespace
