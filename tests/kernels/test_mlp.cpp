// The MLP's oneDNN forward and backward passes against the naive double-precision ReferenceMlp, for every
// activation; the reference's own gradients against central finite differences; the parameter layout; bf16
// GEMM inputs against the reference on bf16-rounded values.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/precision.hpp"
#include "nsbi/kernels/threads.hpp"
#include "reference_mlp.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatMatrix;
using nsbi::FloatVector;
using nsbi::kernels::Activation;
using nsbi::kernels::Mlp;
using nsbi::kernels::MlpArchitecture;
using nsbi::test::relative_error;

// float32 against double: every value is a chain of dot products (length <= 64: the batch in the weight
// gradients, the widths elsewhere) through three layers. With unit roundoff u = 6e-8 a dot product of length
// n is off by at most about n u = 4e-6 relative to the sum of its terms' magnitudes, and rounding errors
// add randomly, so the norm-wise error is typically ~1e-6; 1e-5 leaves room for the three layers and for
// cancellation, while a wrong index or a missing term gives errors of order 1.
constexpr double float_tolerance = 1e-5;

// A network, its parameters (initialised, then biases set to random values so the bias paths matter),
// a batch of inputs and the upstream gradient d loss / d logit.
struct Problem {
  MlpArchitecture arch;
  std::size_t batch;
  std::vector<float> parameters;
  std::vector<float> inputs;
  std::vector<float> logit_gradients;
};

Problem make_problem(const MlpArchitecture& arch, std::size_t batch, unsigned seed) {
  Problem problem{arch, batch, {}, {}, {}};
  FloatVector parameters = nsbi::make_float_vector("parameters", arch.n_parameters());
  nsbi::kernels::initialise_parameters(arch, seed, parameters);
  problem.parameters = nsbi::test::to_host(parameters);
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  std::normal_distribution<float> normal;
  for (std::size_t l = 0; l < arch.n_layers(); ++l)
    for (std::size_t o = 0; o < arch.layer_outputs(l); ++o)
      problem.parameters[arch.bias_offset(l) + o] = uniform(engine);
  for (std::size_t k = 0; k < batch * arch.n_inputs; ++k) problem.inputs.push_back(normal(engine));
  for (std::size_t i = 0; i < batch; ++i) problem.logit_gradients.push_back(2.0f * uniform(engine));
  return problem;
}

nsbi::test::ReferenceMlp reference_of(const Problem& problem) {
  return {problem.arch, std::vector<double>(problem.parameters.begin(), problem.parameters.end())};
}

std::vector<double> reference_logits(const Problem& problem) {
  const auto reference = reference_of(problem);
  const std::vector<double> x(problem.inputs.begin(), problem.inputs.end());
  std::vector<double> logits;
  for (std::size_t i = 0; i < problem.batch; ++i)
    logits.push_back(reference.logit(&x[i * problem.arch.n_inputs]));
  return logits;
}

// d (Σ_i c_i s_i) / d parameters and / d inputs, c the logit gradients.
void reference_gradients(const Problem& problem, std::vector<double>& gradient,
                         std::vector<double>& input_gradient) {
  const auto reference = reference_of(problem);
  const std::size_t n_in = problem.arch.n_inputs;
  const std::vector<double> x(problem.inputs.begin(), problem.inputs.end());
  gradient.assign(problem.arch.n_parameters(), 0.0);
  input_gradient.assign(problem.batch * n_in, 0.0);
  for (std::size_t i = 0; i < problem.batch; ++i)
    reference.accumulate_gradient(&x[i * n_in], problem.logit_gradients[i], gradient,
                                  &input_gradient[i * n_in]);
}

struct Result {
  std::vector<float> logits, gradient, input_gradient;
};

Result run_mlp(Mlp& mlp, const Problem& problem) {
  const FloatVector parameters = nsbi::test::float_vector(problem.parameters);
  const FloatMatrix inputs = nsbi::test::float_matrix(problem.inputs, problem.batch, problem.arch.n_inputs);
  const FloatVector logits = nsbi::make_float_vector("logits", problem.batch);
  const FloatVector logit_gradients = nsbi::test::float_vector(problem.logit_gradients);
  const FloatVector gradient("gradient", problem.arch.n_parameters());
  const FloatMatrix input_gradient("input_gradient", problem.batch, problem.arch.n_inputs);
  mlp.forward(parameters, inputs, logits);
  mlp.backward(parameters, logit_gradients, gradient, input_gradient);
  return {nsbi::test::to_host(logits), nsbi::test::to_host(gradient), nsbi::test::to_host(input_gradient)};
}

void expect_matches_reference(const Problem& problem, const Result& result) {
  std::vector<double> gradient, input_gradient;
  reference_gradients(problem, gradient, input_gradient);
  EXPECT_LT(relative_error(result.logits, reference_logits(problem)), float_tolerance);
  EXPECT_LT(relative_error(result.gradient, gradient), float_tolerance);
  EXPECT_LT(relative_error(result.input_gradient, input_gradient), float_tolerance);
  // Per layer too: a small layer's error would hide behind a large one's values in the norm-wise check.
  for (std::size_t l = 0; l < problem.arch.n_layers(); ++l) {
    const std::size_t first = problem.arch.weight_offset(l);
    const std::size_t last = problem.arch.weight_offset(l + 1);
    const std::vector<float> got(result.gradient.begin() + first, result.gradient.begin() + last);
    const std::vector<double> want(gradient.begin() + first, gradient.begin() + last);
    EXPECT_LT(relative_error(got, want), float_tolerance) << "layer " << l;
  }
}

class MlpActivation : public ::testing::TestWithParam<Activation> {};

TEST_P(MlpActivation, ForwardAndBackwardMatchTheDoubleReference) {
  const Problem problem = make_problem({5, {32, 24}, GetParam()}, 64, 11);
  Mlp mlp(problem.arch);
  expect_matches_reference(problem, run_mlp(mlp, problem));
}

// Central differences in double with h = 1e-6: truncation error ~h^2 |s'''| ~ 1e-12, rounding ~1e-16 |L| /
// h ~ 1e-9; 1e-6 (relative to the largest gradient) is far above both, far below any wrong derivative.
void expect_reference_gradients_match_finite_differences(const Problem& problem) {
  std::vector<double> gradient, input_gradient;
  reference_gradients(problem, gradient, input_gradient);
  const std::size_t n_in = problem.arch.n_inputs;
  auto reference = reference_of(problem);
  std::vector<double> x(problem.inputs.begin(), problem.inputs.end());
  const auto loss = [&] {
    double sum = 0.0;
    for (std::size_t i = 0; i < problem.batch; ++i)
      sum += problem.logit_gradients[i] * reference.logit(&x[i * n_in]);
    return sum;
  };
  constexpr double h = 1e-6;
  const auto central_difference = [&](double& variable) {
    const double saved = variable;
    variable = saved + h;
    const double up = loss();
    variable = saved - h;
    const double down = loss();
    variable = saved;
    return (up - down) / (2.0 * h);
  };
  std::vector<double> numeric;
  for (double& p : reference.parameters()) numeric.push_back(central_difference(p));
  EXPECT_LT(relative_error(numeric, gradient), 1e-6);
  std::vector<double> numeric_inputs;
  for (double& v : x) numeric_inputs.push_back(central_difference(v));
  EXPECT_LT(relative_error(numeric_inputs, input_gradient), 1e-6);
}

TEST_P(MlpActivation, ReferenceGradientsMatchFiniteDifferences) {
  expect_reference_gradients_match_finite_differences(make_problem({4, {7, 5}, GetParam()}, 6, 12));
}

// Residual blocks: the double reference's skips against finite differences, then Mlp against the reference
// (widths 24, three residual layers past the first, the last one fused with the output layer).
TEST_P(MlpActivation, ResidualGradientsMatchFiniteDifferencesAndTheReference) {
  expect_reference_gradients_match_finite_differences(make_problem({4, {6, 6, 6}, GetParam(), true}, 6, 13));
  const Problem problem = make_problem({5, {24, 24, 24, 24}, GetParam(), true}, 64, 14);
  Mlp mlp(problem.arch);
  const Result result = run_mlp(mlp, problem);
  expect_matches_reference(problem, result);
  // The skips matter: the same weights without them give other logits.
  Problem plain = problem;
  plain.arch.residual = false;
  EXPECT_GT(relative_error(result.logits, reference_logits(plain)), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Activations, MlpActivation,
                         ::testing::Values(Activation::relu, Activation::silu, Activation::tanh,
                                           Activation::softplus),
                         [](const auto& test) { return nsbi::kernels::activation_name(test.param); });

TEST(Mlp, LogisticRegressionHasNoHiddenLayer) {
  const Problem problem = make_problem({3, {}, Activation::tanh}, 16, 13);
  Mlp mlp(problem.arch);
  expect_matches_reference(problem, run_mlp(mlp, problem));
}

TEST(Mlp, BatchSizesShareOneInstanceAndRepeatBitwise) {
  // Plans are cached per batch size: alternate sizes, and a repeated pass must give the same bits.
  const MlpArchitecture arch{6, {16, 16, 8}, Activation::silu};
  const Problem large = make_problem(arch, 48, 14);
  const Problem small = make_problem(arch, 5, 15);
  Mlp mlp(arch);
  const Result first = run_mlp(mlp, large);
  expect_matches_reference(large, first);
  expect_matches_reference(small, run_mlp(mlp, small));
  const Result again = run_mlp(mlp, large);
  EXPECT_EQ(0,
            std::memcmp(first.gradient.data(), again.gradient.data(), first.gradient.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(first.logits.data(), again.logits.data(), first.logits.size() * sizeof(float)));
}

TEST(Mlp, TwoGemmThreadsMatchTheReference) {
  const int threads = nsbi::kernels::gemm_threads();
  nsbi::kernels::set_gemm_threads(2);
  EXPECT_EQ(2, nsbi::kernels::gemm_threads());
  const Problem problem = make_problem({4, {64, 64}, Activation::relu}, 256, 16);
  Mlp mlp(problem.arch);
  expect_matches_reference(problem, run_mlp(mlp, problem));
  nsbi::kernels::set_gemm_threads(1);
  expect_matches_reference(problem, run_mlp(mlp, problem));  // the plans are rebuilt for one thread
  nsbi::kernels::set_gemm_threads(threads);
  EXPECT_THROW(nsbi::kernels::set_gemm_threads(0), nsbi::ConfigError);
}

TEST(Mlp, BackwardWithoutInputGradients) {
  const Problem problem = make_problem({3, {8}, Activation::softplus}, 10, 17);
  Mlp mlp(problem.arch);
  const FloatVector parameters = nsbi::test::float_vector(problem.parameters);
  const FloatVector logits = nsbi::make_float_vector("logits", problem.batch);
  const FloatVector gradient("gradient", problem.arch.n_parameters());
  mlp.forward(parameters, nsbi::test::float_matrix(problem.inputs, problem.batch, 3), logits);
  mlp.backward(parameters, nsbi::test::float_vector(problem.logit_gradients), gradient);
  std::vector<double> want, unused;
  reference_gradients(problem, want, unused);
  EXPECT_LT(relative_error(nsbi::test::to_host(gradient), want), float_tolerance);
}

TEST(Mlp, ParameterLayoutIsTheDocumentedOne) {
  // 3 -> 4 -> 2 -> 1: W0 [4, 3] at 0, b0 at 12, W1 [2, 4] at 16, b1 at 24, W2 [1, 2] at 26, b2 at 28.
  const MlpArchitecture arch{3, {4, 2}, Activation::relu};
  EXPECT_EQ(0u, arch.weight_offset(0));
  EXPECT_EQ(12u, arch.bias_offset(0));
  EXPECT_EQ(16u, arch.weight_offset(1));
  EXPECT_EQ(24u, arch.bias_offset(1));
  EXPECT_EQ(26u, arch.weight_offset(2));
  EXPECT_EQ(28u, arch.bias_offset(2));
  EXPECT_EQ(29u, arch.n_parameters());
  EXPECT_EQ(22u, arch.n_weights());
}

// bf16 with one hidden layer: its one GEMM (X W_0^T) reads bf16-rounded X and W_0 and accumulates in float;
// the bias, the activation and the output layer are float. So the logits are the double reference's on the
// rounded X and W_0, to float accumulation (float_tolerance, as above); against the unrounded reference they
// differ by the rounding itself (2^-9 relative per input: well above float_tolerance, below 1e-2). The
// backward pass rounds its GEMM inputs too (dZ, X, W_0): its gradients are within the same 1e-2.
TEST(Mlp, Bf16RoundsTheGemmInputsAndAccumulatesInFloat) {
  if (!nsbi::kernels::unsupported_reason(nsbi::kernels::Precision::bf16).empty())
    GTEST_SKIP() << "no native bf16 here";
  const Problem problem = make_problem({4, {48}, Activation::tanh}, 64, 18);
  Mlp mlp(problem.arch, nsbi::kernels::Device::host, nsbi::kernels::Precision::bf16);
  const Result result = run_mlp(mlp, problem);
  EXPECT_NE(mlp.gemm_implementations().find("bf16"), std::string::npos) << mlp.gemm_implementations();

  Problem rounded = problem;
  for (float& x : rounded.inputs) x = nsbi::test::round_to_bf16(x);
  for (std::size_t k = 0; k < problem.arch.bias_offset(0); ++k)
    rounded.parameters[k] = nsbi::test::round_to_bf16(rounded.parameters[k]);
  EXPECT_LT(relative_error(result.logits, reference_logits(rounded)), float_tolerance);
  const double rounding = relative_error(result.logits, reference_logits(problem));
  EXPECT_GT(rounding, float_tolerance);
  EXPECT_LT(rounding, 1e-2);
  std::vector<double> gradient, input_gradient;
  reference_gradients(problem, gradient, input_gradient);
  EXPECT_LT(relative_error(result.gradient, gradient), 1e-2);
  EXPECT_LT(relative_error(result.input_gradient, input_gradient), 1e-2);
}

TEST(Mlp, BadArchitecturesAndNamesAreConfigErrors) {
  EXPECT_THROW(Mlp(MlpArchitecture{0, {4}, Activation::relu}), nsbi::ConfigError);
  EXPECT_THROW(Mlp(MlpArchitecture{2, {4, 0}, Activation::relu}), nsbi::ConfigError);
  EXPECT_THROW(Mlp(MlpArchitecture{2, {4, 4, 3}, Activation::relu, true}), nsbi::ConfigError);
  EXPECT_NO_THROW(Mlp(MlpArchitecture{2, {4, 4, 3}, Activation::relu}));
  EXPECT_THROW(nsbi::kernels::activation_from_name("sigmoid"), nsbi::ConfigError);
  for (Activation a : {Activation::relu, Activation::silu, Activation::tanh, Activation::softplus})
    EXPECT_EQ(a, nsbi::kernels::activation_from_name(nsbi::kernels::activation_name(a)));
}

}  // namespace
