// TangentMlp's tangents against central finite differences of the double ReferenceMlp's logit, its backward
// pass against finite differences of a double-precision loss of logits and tangents (every parameter), its
// logits and tangent-free gradients against Mlp's, and relu's rejection.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/tangent_mlp.hpp"
#include "nsbi/kernels/threads.hpp"
#include "reference_mlp.hpp"
#include "reference_tangent_mlp.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatMatrix;
using nsbi::FloatVector;
using nsbi::kernels::Activation;
using nsbi::kernels::MlpArchitecture;
using nsbi::kernels::TangentMlp;
using nsbi::test::relative_error;

// float32 against double, as in test_mlp.cpp: chains of dot products of length <= 64 through at most four
// layers, each off by about n u (u = 6e-8) relative to the magnitudes of its terms, errors adding randomly:
// norm-wise ~1e-6. The tangents add one multiplication by f' per layer and the gradients one by f'' and a
// sum over P <= 3 tangents: the same order. 1e-5 leaves room for that and for cancellation, while a wrong
// index, a missing term or a missing f'' gives errors of order 1e-2 to 1.
constexpr double float_tolerance = 1e-5;

struct Problem {
  MlpArchitecture arch;
  std::size_t batch;
  std::size_t n_tangents;
  std::vector<float> parameters;
  std::vector<float> inputs;      // [B, n_inputs]
  std::vector<float> directions;  // [P, n_inputs]
  std::vector<float> logit_gradients;
  std::vector<float> tangent_gradients;  // [B, P]
};

Problem make_problem(const MlpArchitecture& arch, std::size_t batch, std::size_t n_tangents, unsigned seed) {
  Problem problem{arch, batch, n_tangents, {}, {}, {}, {}, {}};
  FloatVector parameters = nsbi::make_float_vector("parameters", arch.n_parameters());
  nsbi::kernels::initialise_parameters(arch, seed, parameters);
  problem.parameters = nsbi::test::to_host(parameters);
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  std::normal_distribution<float> normal;
  // Random biases, so that the bias paths (primal only, never tangent) matter.
  for (std::size_t l = 0; l < arch.n_layers(); ++l)
    for (std::size_t o = 0; o < arch.layer_outputs(l); ++o)
      problem.parameters[arch.bias_offset(l) + o] = uniform(engine);
  for (std::size_t k = 0; k < batch * arch.n_inputs; ++k) problem.inputs.push_back(normal(engine));
  for (std::size_t k = 0; k < n_tangents * arch.n_inputs; ++k) problem.directions.push_back(normal(engine));
  for (std::size_t i = 0; i < batch; ++i) problem.logit_gradients.push_back(2.0f * uniform(engine));
  for (std::size_t k = 0; k < batch * n_tangents; ++k)
    problem.tangent_gradients.push_back(2.0f * uniform(engine));
  return problem;
}

std::vector<double> as_double(const std::vector<float>& values) { return {values.begin(), values.end()}; }

struct Result {
  std::vector<float> logits, tangents, gradient;
};

Result run_tangent(TangentMlp& mlp, const Problem& problem, bool zero_tangent_gradients = false) {
  const std::size_t n_in = problem.arch.n_inputs;
  const FloatVector parameters = nsbi::test::float_vector(problem.parameters);
  const FloatMatrix inputs = nsbi::test::float_matrix(problem.inputs, problem.batch, n_in);
  const FloatMatrix directions = nsbi::test::float_matrix(problem.directions, problem.n_tangents, n_in);
  const FloatVector logits = nsbi::make_float_vector("logits", problem.batch);
  const FloatMatrix tangents = nsbi::make_float_matrix("tangents", problem.batch, problem.n_tangents);
  const FloatVector logit_gradients = nsbi::test::float_vector(problem.logit_gradients);
  const FloatMatrix tangent_gradients =
      zero_tangent_gradients
          ? FloatMatrix("zero", problem.batch, problem.n_tangents)
          : nsbi::test::float_matrix(problem.tangent_gradients, problem.batch, problem.n_tangents);
  const FloatVector gradient = nsbi::make_float_vector("gradient", problem.arch.n_parameters());
  mlp.forward(parameters, inputs, directions, logits, tangents);
  mlp.backward(parameters, logit_gradients, tangent_gradients, gradient);
  return {nsbi::test::to_host(logits), nsbi::test::to_host(tangents), nsbi::test::to_host(gradient)};
}

// ṡ_ip by central differences of the double reference's logit along d_p: h = 1e-5 in input space gives
// truncation h² |d|³ |s'''| / 6 ~ 1e-10 and rounding 1e-16 |s| / h ~ 1e-11, far below float_tolerance.
std::vector<double> finite_difference_tangents(const Problem& problem) {
  const nsbi::test::ReferenceMlp reference(problem.arch, as_double(problem.parameters));
  const std::size_t n_in = problem.arch.n_inputs;
  std::vector<double> tangents;
  constexpr double h = 1e-5;
  for (std::size_t i = 0; i < problem.batch; ++i)
    for (std::size_t p = 0; p < problem.n_tangents; ++p) {
      std::vector<double> up(n_in), down(n_in);
      for (std::size_t j = 0; j < n_in; ++j) {
        up[j] = problem.inputs[i * n_in + j] + h * problem.directions[p * n_in + j];
        down[j] = problem.inputs[i * n_in + j] - h * problem.directions[p * n_in + j];
      }
      tangents.push_back((reference.logit(up.data()) - reference.logit(down.data())) / (2.0 * h));
    }
  return tangents;
}

// L(parameters) = Σ_i c_i s_i + Σ_ip b_ip ṡ_ip in double, ṡ by the forward-mode reference.
double reference_loss(const Problem& problem, const std::vector<double>& parameters) {
  const std::size_t n_in = problem.arch.n_inputs;
  const std::vector<double> x = as_double(problem.inputs);
  const std::vector<double> directions = as_double(problem.directions);
  double loss = 0.0;
  for (std::size_t i = 0; i < problem.batch; ++i) {
    const auto r = nsbi::test::reference_tangents(problem.arch, parameters, &x[i * n_in], directions);
    loss += problem.logit_gradients[i] * r.logit;
    for (std::size_t p = 0; p < problem.n_tangents; ++p)
      loss += problem.tangent_gradients[i * problem.n_tangents + p] * r.tangents[p];
  }
  return loss;
}

// ∂L/∂parameters by central differences, h = 1e-6: truncation ~h² ~ 1e-12, rounding ~1e-16 Σ|terms| / h ~
// 1e-9, relative to gradients of order 0.1 to 1.
std::vector<double> finite_difference_gradient(const Problem& problem) {
  std::vector<double> parameters = as_double(problem.parameters);
  std::vector<double> gradient;
  for (double& p : parameters)
    gradient.push_back(
        nsbi::test::central_difference(p, 1e-6, [&] { return reference_loss(problem, parameters); }));
  return gradient;
}

void expect_per_layer(const MlpArchitecture& arch, const std::vector<float>& got,
                      const std::vector<double>& want, double tolerance, const std::string& what) {
  for (std::size_t l = 0; l < arch.n_layers(); ++l) {
    const std::vector<float> g(got.begin() + arch.weight_offset(l), got.begin() + arch.weight_offset(l + 1));
    const std::vector<double> w(want.begin() + arch.weight_offset(l),
                                want.begin() + arch.weight_offset(l + 1));
    EXPECT_LT(relative_error(g, w), tolerance) << what << ", layer " << l;
  }
}

std::string describe(const MlpArchitecture& arch, std::size_t batch, std::size_t n_tangents) {
  std::string text = nsbi::kernels::activation_name(arch.activation) + " hidden {";
  for (std::size_t w : arch.hidden) text += std::to_string(w) + " ";
  return text + "} B " + std::to_string(batch) + " P " + std::to_string(n_tangents);
}

const std::vector<std::vector<std::size_t>> tiny_hidden{{}, {5}, {6, 4}, {4, 5, 3}};

class TangentActivation : public ::testing::TestWithParam<Activation> {};

TEST_P(TangentActivation, TangentsMatchFiniteDifferencesAndLogitsMatchMlp) {
  unsigned seed = 100;
  for (const auto& hidden : tiny_hidden) {
    const MlpArchitecture arch{4, hidden, GetParam()};
    TangentMlp tangent_mlp(arch);  // one instance: plans for every (B, P) side by side
    nsbi::kernels::Mlp mlp(arch);
    for (std::size_t n_tangents : {1, 2, 3})
      for (std::size_t batch : {1, 4, 7, 33}) {
        const Problem problem = make_problem(arch, batch, n_tangents, ++seed);
        const std::string what = describe(arch, batch, n_tangents);
        const Result result = run_tangent(tangent_mlp, problem);
        EXPECT_LT(relative_error(result.tangents, finite_difference_tangents(problem)), float_tolerance)
            << what;
        // The forward-mode double reference, used for the gradients below, agrees with the differences to
        // their own accuracy (1e-8).
        const std::vector<double> x = as_double(problem.inputs);
        std::vector<double> reference;
        for (std::size_t i = 0; i < batch; ++i)
          for (double t : nsbi::test::reference_tangents(arch, as_double(problem.parameters), &x[i * 4],
                                                         as_double(problem.directions))
                              .tangents)
            reference.push_back(t);
        EXPECT_LT(relative_error(reference, finite_difference_tangents(problem)), 1e-8) << what;
        // The primal path is Mlp's: the first layer's GEMM has the same shape, the others see more rows,
        // which oneDNN may split differently; allow a few ulp of the largest logit.
        const FloatVector logits = nsbi::make_float_vector("logits", batch);
        mlp.forward(nsbi::test::float_vector(problem.parameters),
                    nsbi::test::float_matrix(problem.inputs, batch, 4), logits);
        EXPECT_LT(relative_error(result.logits, nsbi::test::to_host(logits)), 4.0 * 6e-8) << what;
      }
  }
}

TEST_P(TangentActivation, BackwardMatchesFiniteDifferencesOfADoubleLoss) {
  unsigned seed = 200;
  for (const auto& hidden : tiny_hidden)
    for (std::size_t n_tangents : {1, 3})
      for (std::size_t batch : {1, 3}) {
        const MlpArchitecture arch{3, hidden, GetParam()};
        const Problem problem = make_problem(arch, batch, n_tangents, ++seed);
        const std::string what = describe(arch, batch, n_tangents);
        TangentMlp mlp(arch);
        const Result result = run_tangent(mlp, problem);
        const std::vector<double> want = finite_difference_gradient(problem);
        EXPECT_LT(relative_error(result.gradient, want), float_tolerance) << what;
        expect_per_layer(arch, result.gradient, want, float_tolerance, what);
        // The tangent path matters here: the gradient of Σ c_i s_i alone is far from the full one.
        TangentMlp again(arch);
        EXPECT_GT(relative_error(run_tangent(again, problem, true).gradient, want), 1e-2) << what;
      }
}

TEST_P(TangentActivation, WiderLayersMatchTheDoubleReference) {
  // Widths 32 and 24, 16 examples: oneDNN's blocked GEMM paths, with every parameter checked.
  const MlpArchitecture arch{5, {32, 24}, GetParam()};
  const Problem problem = make_problem(arch, 16, 2, 300);
  TangentMlp mlp(arch);
  const Result result = run_tangent(mlp, problem);
  EXPECT_LT(relative_error(result.tangents, finite_difference_tangents(problem)), float_tolerance);
  const std::vector<double> want = finite_difference_gradient(problem);
  EXPECT_LT(relative_error(result.gradient, want), float_tolerance);
  expect_per_layer(arch, result.gradient, want, float_tolerance, "wide");
}

// Residual blocks: tangents and the gradient of the double loss (f'' through the skips included) against
// finite differences, for a network of one layer past the first and of three.
TEST_P(TangentActivation, ResidualMatchesFiniteDifferences) {
  unsigned seed = 400;
  for (const std::vector<std::size_t>& hidden : {std::vector<std::size_t>{5, 5}, {6, 6, 6, 6}})
    for (std::size_t batch : {1, 5}) {
      const MlpArchitecture arch{3, hidden, GetParam(), true};
      const Problem problem = make_problem(arch, batch, 2, ++seed);
      const std::string what = "residual " + describe(arch, batch, 2);
      TangentMlp mlp(arch);
      const Result result = run_tangent(mlp, problem);
      EXPECT_LT(relative_error(result.tangents, finite_difference_tangents(problem)), float_tolerance)
          << what;
      const std::vector<double> want = finite_difference_gradient(problem);
      EXPECT_LT(relative_error(result.gradient, want), float_tolerance) << what;
      expect_per_layer(arch, result.gradient, want, float_tolerance, what);
      // The skips matter: the plain network's gradient of the same loss is another one.
      Problem plain = problem;
      plain.arch.residual = false;
      EXPECT_GT(relative_error(result.gradient, finite_difference_gradient(plain)), 1e-2) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(Activations, TangentActivation,
                         ::testing::Values(Activation::silu, Activation::tanh, Activation::softplus),
                         [](const auto& test) { return nsbi::kernels::activation_name(test.param); });

TEST(TangentMlp, ZeroTangentGradientsGiveMlpGradients) {
  for (Activation activation : {Activation::silu, Activation::tanh, Activation::softplus}) {
    const MlpArchitecture arch{5, {16, 8}, activation};
    const Problem problem = make_problem(arch, 9, 2, 400);
    TangentMlp tangent_mlp(arch);
    const Result result = run_tangent(tangent_mlp, problem, true);
    nsbi::kernels::Mlp mlp(arch);
    const FloatVector parameters = nsbi::test::float_vector(problem.parameters);
    const FloatVector logits = nsbi::make_float_vector("logits", problem.batch);
    const FloatVector gradient = nsbi::make_float_vector("gradient", arch.n_parameters());
    mlp.forward(parameters, nsbi::test::float_matrix(problem.inputs, problem.batch, 5), logits);
    mlp.backward(parameters, nsbi::test::float_vector(problem.logit_gradients), gradient);
    // The same float operations but for GEMMs over more (zero) rows: a few ulp of the largest value.
    EXPECT_LT(relative_error(result.gradient, nsbi::test::to_host(gradient)), 4.0 * 6e-8)
        << nsbi::kernels::activation_name(activation);
  }
}

TEST(TangentMlp, RepeatsBitwiseAcrossBatchSizesAndThreads) {
  const MlpArchitecture arch{6, {16, 16, 8}, Activation::silu};
  const Problem large = make_problem(arch, 48, 2, 500);
  const Problem small = make_problem(arch, 5, 3, 501);
  TangentMlp mlp(arch);
  const Result first = run_tangent(mlp, large);
  run_tangent(mlp, small);
  const Result again = run_tangent(mlp, large);
  EXPECT_EQ(0,
            std::memcmp(first.gradient.data(), again.gradient.data(), first.gradient.size() * sizeof(float)));
  EXPECT_EQ(0,
            std::memcmp(first.tangents.data(), again.tangents.data(), first.tangents.size() * sizeof(float)));
  const int threads = nsbi::kernels::gemm_threads();
  nsbi::kernels::set_gemm_threads(2);  // the plans are rebuilt for two threads
  const Result two = run_tangent(mlp, large);
  nsbi::kernels::set_gemm_threads(threads);
  EXPECT_LT(relative_error(two.tangents, finite_difference_tangents(large)), float_tolerance);
  EXPECT_LT(relative_error(two.gradient, first.gradient), float_tolerance);
}

TEST(TangentMlp, ReluIsAConfigErrorNamingIt) {
  try {
    TangentMlp mlp(MlpArchitecture{4, {8}, Activation::relu});
    FAIL() << "relu accepted";
  } catch (const nsbi::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("relu"), std::string::npos) << error.what();
  }
  EXPECT_THROW(TangentMlp(MlpArchitecture{0, {4}, Activation::tanh}), nsbi::ConfigError);
  EXPECT_NO_THROW(TangentMlp(MlpArchitecture{4, {}, Activation::relu}));  // no hidden layer, no activation
}

}  // namespace
