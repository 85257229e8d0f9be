// The gold losses of docs/statistics.md: ROLR, ALICE's soft labels and the score term against direct double
// formulas and their finite differences, ROLR's optimum (the mean ratio), rows of weight 0, and the full
// CASCAL / RASCAL / ALICES / SALLY losses of a small TangentMlp against a double-precision evaluation
// differentiated by finite differences in every parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/tangent_mlp.hpp"
#include "reference_tangent_mlp.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatMatrix;
using nsbi::FloatVector;
using nsbi::kernels::Activation;
using nsbi::kernels::MlpArchitecture;
using nsbi::test::float_matrix;
using nsbi::test::float_vector;
using nsbi::test::relative_error;
using nsbi::test::to_host;

// A double result rounded to float: within half an ulp (2^-24 = 6e-8 relative); with the finite-difference
// error of the reference (< 1e-9 relative, see each use) 1.2e-7 relative is about one ulp.
constexpr double float_rounding = 1.2e-7;

// The ROLR term of one row from its definition: class 0 regresses r, class 1 regresses 1/r (soft labels mix).
double direct_rolr(double s, double y, double l) {
  const double class0 = std::exp(l) - std::exp(s);
  const double class1 = std::exp(-l) - std::exp(-s);
  return (1.0 - y) * class0 * class0 + y * class1 * class1;
}

double direct_bce(double s, double y) {
  const double sigma = 1.0 / (1.0 + std::exp(-s));
  return -(y * std::log(sigma) + (1.0 - y) * std::log(1.0 - sigma));
}

double direct_sigmoid(double l) { return 1.0 / (1.0 + std::exp(-l)); }

TEST(Rolr, MatchesTheDirectFormulaAndItsDerivative) {
  const std::vector<float> logits{-2.5f, -0.75f, 0.0f, 0.4f, 1.25f, 2.0f, -1.0f, 3.0f};
  const std::vector<float> labels{0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.3f, 0.0f};  // 0.3: a soft label
  const std::vector<float> log_r{-1.5f, 0.5f, 1.0f, -0.25f, 2.5f, 1.0f, 0.2f, 2.75f};
  const std::vector<float> weights{1.0f, 2.0f, 0.5f, 1.0f, 1.5f, 1.0f, 0.25f, 3.0f};
  const double global_batch = 20.0;
  FloatVector gradient("gradient", logits.size());
  const double loss = nsbi::kernels::rolr(float_vector(logits), float_vector(labels), float_vector(log_r),
                                          float_vector(weights), global_batch, gradient);
  const std::vector<float> got = to_host(gradient);
  double want = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    double s = logits[i];
    want += weights[i] * direct_rolr(s, labels[i], log_r[i]);
    // h = 1e-6: truncation h² |f'''| / 6 ~ 1e-10 |f'|, rounding 1e-16 |f| / h ~ 1e-10 |f'| (|f| ~ |f'| here).
    const double want_gradient = weights[i] / global_batch * nsbi::test::central_difference(s, 1e-6, [&] {
                                   return direct_rolr(s, labels[i], log_r[i]);
                                 });
    EXPECT_NEAR(want_gradient, got[i], float_rounding * std::fabs(want_gradient)) << i;
  }
  // Both sides in double from the same float inputs; the direct form cancels a little where e^ℓ ≈ e^s (no
  // row here is within 0.2 in log), so 1e-12 relative is generous and far below any wrong term.
  EXPECT_NEAR(want / global_batch, loss, 1e-12 * want / global_batch);

  const double unweighted = nsbi::kernels::rolr(float_vector(logits), float_vector(labels),
                                                float_vector(log_r), FloatVector(), global_batch, gradient);
  double want_unweighted = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i)
    want_unweighted += direct_rolr(logits[i], labels[i], log_r[i]);
  EXPECT_NEAR(want_unweighted / global_batch, unweighted, 1e-12 * want_unweighted / global_batch);
}

TEST(Rolr, TheMeanRatioIsTheOptimum) {
  // For one x: class-0 rows whose gold ratios r_k average R = 2 and class-1 rows whose 1/r_k average 1/R =
  // 0.5 (unbiased targets, as the simulator's joint ratios are). Σ_k of the loss is minimised at r̂ = R,
  // s = log 2: there the summed gradient vanishes, on either side it points away, and the loss is larger.
  const std::vector<float> labels{0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f};
  std::vector<float> log_r;
  for (double r : {0.5, 1.5, 2.5, 3.5}) log_r.push_back(static_cast<float>(std::log(r)));
  for (double inverse : {0.25, 0.75}) log_r.push_back(static_cast<float>(-std::log(inverse)));
  const auto summed = [&](double s, double& gradient_sum, double& magnitude) {
    FloatVector gradient("gradient", labels.size());
    const double loss =
        nsbi::kernels::rolr(float_vector(std::vector<float>(labels.size(), static_cast<float>(s))),
                            float_vector(labels), float_vector(log_r), FloatVector(), 1.0, gradient);
    gradient_sum = magnitude = 0.0;
    for (float g : to_host(gradient)) {
      gradient_sum += g;
      magnitude += std::fabs(g);
    }
    return loss;
  };
  const double optimum = std::log(2.0);
  double at, at_magnitude, below, above, unused;
  const double loss_at = summed(optimum, at, at_magnitude);
  // Rounding of s, ℓ_k (float) and of each gradient moves Σ g by about 1e-7 Σ|g|: 1e-5 is far above that and
  // far below the 2e-2 relative slope seen 0.01 away.
  EXPECT_LT(std::fabs(at), 1e-5 * at_magnitude);
  EXPECT_GT(summed(optimum - 0.01, below, unused), loss_at);
  EXPECT_GT(summed(optimum + 0.01, above, unused), loss_at);
  EXPECT_LT(below, -1e-3 * at_magnitude);
  EXPECT_GT(above, 1e-3 * at_magnitude);
}

TEST(Rolr, LargeValuesGiveInfinityOrZeroNeverNaN) {
  // s = ℓ = 400: e^{2s} overflows but the residual is exactly 0: loss and gradient 0. ℓ = s + 1 = 401: the
  // loss e^{800} (e − 1)² is beyond double range, +∞, and the gradient −∞ (class 0: −2 e^{2s} (e − 1)).
  // Class 1 with s = ℓ = −400 is the mirror image.
  const std::vector<float> logits{400.0f, 400.0f, -400.0f};
  const std::vector<float> labels{0.0f, 0.0f, 1.0f};
  const std::vector<float> log_r{400.0f, 401.0f, -400.0f};
  FloatVector gradient("gradient", 3);
  const double loss = nsbi::kernels::rolr(float_vector(logits), float_vector(labels), float_vector(log_r),
                                          FloatVector(), 1.0, gradient);
  EXPECT_EQ(std::numeric_limits<double>::infinity(), loss);
  const std::vector<float> got = to_host(gradient);
  EXPECT_EQ(0.0f, got[0]);
  EXPECT_EQ(-std::numeric_limits<float>::infinity(), got[1]);
  EXPECT_EQ(0.0f, got[2]);
  // Without the overflowing row the loss is exactly 0.
  const double finite =
      nsbi::kernels::rolr(float_vector({400.0f, -400.0f}), float_vector({0.0f, 1.0f}),
                          float_vector({400.0f, -400.0f}), FloatVector(), 1.0, FloatVector("gradient", 2));
  EXPECT_EQ(0.0, finite);
}

TEST(Rolr, RowsOfWeightZeroAreRemoved) {
  // The third row has weight 0 and a NaN gold ratio and an absurd logit: it must not show anywhere.
  const std::vector<float> logits{0.5f, -1.0f, 500.0f, 0.25f};
  const std::vector<float> labels{0.0f, 1.0f, 0.0f, 1.0f};
  const std::vector<float> log_r{1.0f, -0.5f, std::numeric_limits<float>::quiet_NaN(), 0.75f};
  FloatVector gradient("gradient", 4);
  const double with = nsbi::kernels::rolr(float_vector(logits), float_vector(labels), float_vector(log_r),
                                          float_vector({1.0f, 1.0f, 0.0f, 1.0f}), 10.0, gradient);
  FloatVector kept_gradient("kept", 3);
  const double without =
      nsbi::kernels::rolr(float_vector({0.5f, -1.0f, 0.25f}), float_vector({0.0f, 1.0f, 1.0f}),
                          float_vector({1.0f, -0.5f, 0.75f}), FloatVector(), 10.0, kept_gradient);
  EXPECT_EQ(without, with);
  EXPECT_GT(without, 0.0);
  const std::vector<float> got = to_host(gradient);
  const std::vector<float> kept = to_host(kept_gradient);
  EXPECT_EQ(kept[0], got[0]);
  EXPECT_EQ(kept[1], got[1]);
  EXPECT_EQ(0.0f, got[2]);
  EXPECT_EQ(kept[2], got[3]);
}

TEST(Alice, LabelsAreTheClassOneProbabilityAndBceWithThemIsAlice) {
  const std::vector<float> log_r{-800.0f, -30.0f, -2.0f, -0.1f, 0.0f, 0.5f, 3.0f, 30.0f, 800.0f};
  FloatVector labels("labels", log_r.size());
  nsbi::kernels::alice_labels(float_vector(log_r), labels);
  const std::vector<float> y = to_host(labels);
  for (std::size_t i = 0; i < log_r.size(); ++i) {
    const double want = direct_sigmoid(log_r[i]);  // exp(800) = ∞ gives 1 / ∞ = 0: exact
    EXPECT_NEAR(want, y[i], 6e-8 * want) << log_r[i];
  }
  EXPECT_EQ(0.0f, y[0]);
  EXPECT_EQ(1.0f, y[8]);

  // ALICE's value and gradient against the direct cross-entropy with y = σ(ℓ) and its finite difference.
  const std::vector<float> inner_log_r{-2.0f, -0.1f, 0.5f, 1.5f, 3.0f};
  const std::vector<float> logits{-1.0f, 0.3f, 0.5f, -0.5f, 2.0f};
  FloatVector soft("soft", 5);
  nsbi::kernels::alice_labels(float_vector(inner_log_r), soft);
  FloatVector gradient("gradient", 5);
  const double loss =
      nsbi::kernels::bce_with_logits(float_vector(logits), soft, FloatVector(), 5.0, gradient);
  const std::vector<float> got = to_host(gradient);
  double want = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    double s = logits[i];
    const double label = direct_sigmoid(inner_log_r[i]);
    want += direct_bce(s, label);
    const double want_gradient =
        nsbi::test::central_difference(s, 1e-6, [&] { return direct_bce(s, label); }) / 5.0;
    // float: the label's rounding (1/2 ulp of y ≤ 1) and bce's few ulp; absolute, as σ(s) − y may cancel.
    EXPECT_NEAR(want_gradient, got[i], 5e-7) << i;
  }
  EXPECT_NEAR(want / 5.0, loss, 5e-7 * want / 5.0);

  // The optimum: with s = ℓ the model already predicts σ(ℓ), and ALICE's gradient vanishes (up to float
  // rounding of σ twice); with σ(−ℓ) labels (the other class convention) it would not.
  nsbi::kernels::bce_with_logits(float_vector(inner_log_r), soft, FloatVector(), 1.0, gradient);
  for (float g : to_host(gradient)) EXPECT_LT(std::fabs(g), 3e-7);
}

TEST(ScoreMse, MatchesTheDirectFormulaAndItsDerivative) {
  // 5 rows, P = 2; row 1 has weight 0 and NaN scores (a class-0 row without a joint score).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<float> tangents{0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f, 0.0f, 3.0f, 1.0f, -2.0f};
  const std::vector<float> scores{
      0.25f, -1.5f, static_cast<float>(nan), static_cast<float>(nan), 0.5f, 1.0f, -1.0f, 2.5f, 1.0f, -0.5f};
  const std::vector<float> weights{1.0f, 0.0f, 2.0f, 1.0f, 0.5f};
  const double alpha = 0.7;
  const double score_rows = 7.0;  // the global count: other ranks hold the other rows
  FloatMatrix gradient("gradient", 5, 2);
  const double loss = nsbi::kernels::score_mse(float_matrix(tangents, 5, 2), float_matrix(scores, 5, 2),
                                               float_vector(weights), alpha, score_rows, gradient);
  const std::vector<float> got = to_host(gradient);
  const auto row_loss = [&](std::size_t i, const std::vector<double>& t) {
    double sum = 0.0;
    for (std::size_t p = 0; p < 2; ++p) sum += (t[p] - scores[i * 2 + p]) * (t[p] - scores[i * 2 + p]);
    return alpha * weights[i] * sum / score_rows;
  };
  double want = 0.0;
  for (std::size_t i = 0; i < 5; ++i) {
    if (weights[i] == 0.0f) {
      EXPECT_EQ(0.0f, got[i * 2]);
      EXPECT_EQ(0.0f, got[i * 2 + 1]);
      continue;
    }
    std::vector<double> t{tangents[i * 2], tangents[i * 2 + 1]};
    want += row_loss(i, t);
    for (std::size_t p = 0; p < 2; ++p) {
      // A quadratic: the central difference is exact up to rounding, 1e-16 |f| / h ~ 1e-10.
      const double want_gradient = nsbi::test::central_difference(t[p], 1e-6, [&] { return row_loss(i, t); });
      EXPECT_NEAR(want_gradient, got[i * 2 + p], float_rounding * std::fabs(want_gradient) + 1e-9) << i << p;
    }
  }
  EXPECT_NEAR(want, loss, 1e-13 * want);
  EXPECT_GT(want, 0.0);
  // Unweighted is weight 1 everywhere (finite scores now).
  std::vector<float> finite_scores = scores;
  finite_scores[2] = finite_scores[3] = 1.0f;
  const double unweighted = nsbi::kernels::score_mse(
      float_matrix(tangents, 5, 2), float_matrix(finite_scores, 5, 2), FloatVector(), 1.0, 1.0, gradient);
  double want_unweighted = 0.0;
  for (std::size_t k = 0; k < 10; ++k)
    want_unweighted += (tangents[k] - finite_scores[k]) * static_cast<double>(tangents[k] - finite_scores[k]);
  EXPECT_NEAR(want_unweighted, unweighted, 1e-13 * want_unweighted);
}

// ---- The full losses on a small network ----

enum class Gold { cascal, rascal, alices, sally };

std::string gold_name(Gold gold) {
  switch (gold) {
    case Gold::cascal:
      return "cascal";
    case Gold::rascal:
      return "rascal";
    case Gold::alices:
      return "alices";
    case Gold::sally:
      return "sally";
  }
  return "";
}

// x has 2 components and θ 2; the tangents are ∂s/∂θ_p = ∂s/∂u_{2+p} / std_{2+p} with std = (0.5, 2): the
// directions the trainer uses. Class 1 rows carry the score term (their joint score is at their own θ);
// SALLY has every row at θ0 with a score and no logit term.
struct GoldProblem {
  MlpArchitecture arch;
  std::size_t batch = 8;
  std::vector<float> parameters, inputs, directions, labels, log_r, scores, score_weights;
  double alpha = 0.8;
  double score_rows = 0.0;
};

GoldProblem make_gold_problem(Activation activation, Gold gold, unsigned seed) {
  GoldProblem problem;
  problem.arch = {4, {6, 5}, activation};
  FloatVector parameters = nsbi::make_float_vector("parameters", problem.arch.n_parameters());
  nsbi::kernels::initialise_parameters(problem.arch, seed, parameters);
  problem.parameters = to_host(parameters);
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  for (std::size_t l = 0; l < problem.arch.n_layers(); ++l)
    for (std::size_t o = 0; o < problem.arch.layer_outputs(l); ++o)
      problem.parameters[problem.arch.bias_offset(l) + o] = uniform(engine);
  for (std::size_t k = 0; k < problem.batch * 4; ++k) problem.inputs.push_back(normal(engine));
  problem.directions = {0.0f, 0.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.5f};
  for (std::size_t i = 0; i < problem.batch; ++i) {
    problem.labels.push_back(gold == Gold::sally ? 1.0f : static_cast<float>(i % 2));
    problem.log_r.push_back(2.0f * uniform(engine));
    problem.scores.push_back(normal(engine));
    problem.scores.push_back(normal(engine));
    problem.score_weights.push_back(problem.labels.back());
    problem.score_rows += problem.labels.back();
  }
  return problem;
}

// The loss in double from the definitions: s and ṡ by the forward-mode reference, then the logit term
// (CARL's cross-entropy, ROLR, or ALICE's cross-entropy with y = σ(ℓ)) as a mean over the batch, plus
// α Σ_{class 1} |ṡ − t|² / score_rows.
double reference_gold_loss(const GoldProblem& problem, Gold gold, const std::vector<double>& parameters) {
  const std::vector<double> x(problem.inputs.begin(), problem.inputs.end());
  const std::vector<double> directions(problem.directions.begin(), problem.directions.end());
  double logit_term = 0.0;
  double score_term = 0.0;
  for (std::size_t i = 0; i < problem.batch; ++i) {
    const auto r = nsbi::test::reference_tangents(problem.arch, parameters, &x[i * 4], directions);
    const double y = problem.labels[i];
    const double l = problem.log_r[i];
    if (gold == Gold::cascal) logit_term += direct_bce(r.logit, y);
    if (gold == Gold::rascal) logit_term += direct_rolr(r.logit, y, l);
    if (gold == Gold::alices) logit_term += direct_bce(r.logit, direct_sigmoid(l));
    for (std::size_t p = 0; p < 2; ++p) {
      const double residual = r.tangents[p] - problem.scores[i * 2 + p];
      score_term += problem.score_weights[i] * residual * residual;
    }
  }
  return logit_term / static_cast<double>(problem.batch) + problem.alpha * score_term / problem.score_rows;
}

// The trainer's composition: TangentMlp forward, the kernels' losses, TangentMlp backward.
double kernel_gold_loss(const GoldProblem& problem, Gold gold, std::vector<float>& gradient_out) {
  const std::size_t b = problem.batch;
  nsbi::kernels::TangentMlp mlp(problem.arch);
  const FloatVector parameters = float_vector(problem.parameters);
  const FloatVector logits = nsbi::make_float_vector("logits", b);
  const FloatMatrix tangents = nsbi::make_float_matrix("tangents", b, 2);
  mlp.forward(parameters, float_matrix(problem.inputs, b, 4), float_matrix(problem.directions, 2, 4), logits,
              tangents);
  const FloatVector logit_gradients("logit_gradients", b);  // zero: SALLY has no logit term
  const FloatVector labels = float_vector(problem.labels);
  const auto batch = static_cast<double>(b);
  double loss = 0.0;
  if (gold == Gold::cascal)
    loss += nsbi::kernels::bce_with_logits(logits, labels, FloatVector(), batch, logit_gradients);
  if (gold == Gold::rascal)
    loss += nsbi::kernels::rolr(logits, labels, float_vector(problem.log_r), FloatVector(), batch,
                                logit_gradients);
  if (gold == Gold::alices) {
    const FloatVector soft("soft", b);
    nsbi::kernels::alice_labels(float_vector(problem.log_r), soft);
    loss += nsbi::kernels::bce_with_logits(logits, soft, FloatVector(), batch, logit_gradients);
  }
  const FloatMatrix tangent_gradients("tangent_gradients", b, 2);
  loss += nsbi::kernels::score_mse(tangents, float_matrix(problem.scores, b, 2),
                                   float_vector(problem.score_weights), problem.alpha, problem.score_rows,
                                   tangent_gradients);
  const FloatVector gradient("gradient", problem.arch.n_parameters());
  mlp.backward(parameters, logit_gradients, tangent_gradients, gradient);
  gradient_out = to_host(gradient);
  return loss;
}

class GoldLoss : public ::testing::TestWithParam<std::tuple<Gold, Activation>> {};

TEST_P(GoldLoss, ValueAndGradientMatchFiniteDifferencesOfTheDoubleLoss) {
  const auto [gold, activation] = GetParam();
  const GoldProblem problem = make_gold_problem(activation, gold, 600 + static_cast<unsigned>(gold));
  std::vector<float> gradient;
  const double loss = kernel_gold_loss(problem, gold, gradient);
  std::vector<double> parameters(problem.parameters.begin(), problem.parameters.end());
  // float32 network (norm-wise ~1e-6, see test_tangent_mlp.cpp) and float losses: 1e-5 relative.
  const double want = reference_gold_loss(problem, gold, parameters);
  EXPECT_NEAR(want, loss, 1e-5 * want);
  // Central differences in double, h = 1e-6 (truncation ~1e-12, rounding ~1e-16 |L| / h ~ 1e-10).
  std::vector<double> numeric;
  for (double& p : parameters)
    numeric.push_back(nsbi::test::central_difference(
        p, 1e-6, [&] { return reference_gold_loss(problem, gold, parameters); }));
  EXPECT_LT(relative_error(gradient, numeric), 1e-5);
  for (std::size_t l = 0; l < problem.arch.n_layers(); ++l) {
    const std::size_t first = problem.arch.weight_offset(l);
    const std::size_t last = problem.arch.weight_offset(l + 1);
    EXPECT_LT(relative_error(std::vector<float>(gradient.begin() + first, gradient.begin() + last),
                             std::vector<double>(numeric.begin() + first, numeric.begin() + last)),
              1e-5)
        << "layer " << l;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Losses, GoldLoss,
    ::testing::Combine(::testing::Values(Gold::cascal, Gold::rascal, Gold::alices, Gold::sally),
                       ::testing::Values(Activation::silu, Activation::tanh, Activation::softplus)),
    [](const auto& test) {
      return gold_name(std::get<0>(test.param)) + "_" +
             nsbi::kernels::activation_name(std::get<1>(test.param));
    });

}  // namespace
