// End-to-end training with the kernels (standardise, forward, BCE, backward, AdamW) on the likelihood-ratio
// trick between N(0.5, 1) (class 1) and N(0, 1) (class 0), whose exact log ratio is linear:
// log r(x) = 0.5 x - 0.125. Tolerances come from the sample size through the Fisher information.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "nsbi/core/rng.hpp"
#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/standardize.hpp"
#include "statistics.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatMatrix;
using nsbi::FloatVector;
using nsbi::kernels::Activation;
using nsbi::kernels::MlpArchitecture;

constexpr double min_pvalue = 1e-4;

double exact_log_ratio(double x) { return 0.5 * x - 0.125; }
double sigmoid(double s) { return 1.0 / (1.0 + std::exp(-s)); }

// n draws of class 1, then n of class 0, each from its own stream.
std::vector<double> sample(std::size_t n, std::uint64_t seed) {
  std::vector<double> x(2 * n);
  for (std::size_t i = 0; i < 2 * n; ++i) {
    nsbi::rng::Stream stream(seed, nsbi::rng::Purpose::simulate, i);
    x[i] = (i < n ? 0.5 : 0.0) + stream.normal();
  }
  return x;
}

nsbi::Matrix column(const std::vector<double>& x) {
  nsbi::Matrix m = nsbi::make_matrix("x", x.size(), 1);
  Kokkos::deep_copy(
      m, Kokkos::View<const double**, Kokkos::LayoutRight, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
             x.data(), x.size(), 1));
  return m;
}

// A classifier trained full-batch (every step sees all 2n samples: the optimum is the maximum-likelihood
// fit, which the tolerances below are about) and evaluated on raw x.
class TrainedClassifier {
 public:
  TrainedClassifier(const MlpArchitecture& arch, const std::vector<double>& x, std::size_t steps, double lr)
      : standardization_(nsbi::kernels::column_statistics(column(x))),
        mlp_(arch),
        parameters_("parameters", arch.n_parameters()) {
    const std::size_t n = x.size();
    FloatMatrix inputs = nsbi::make_float_matrix("inputs", n, 1);
    nsbi::kernels::standardize(standardization_, column(x), 0, inputs);
    std::vector<float> label_values(n, 0.0f);
    for (std::size_t i = 0; i < n / 2; ++i) label_values[i] = 1.0f;
    const FloatVector labels = nsbi::test::float_vector(label_values);
    const FloatVector logits = nsbi::make_float_vector("logits", n);
    const FloatVector logit_gradients = nsbi::make_float_vector("logit_gradients", n);
    const FloatVector gradients = nsbi::make_float_vector("gradients", arch.n_parameters());
    nsbi::kernels::initialise_parameters(arch, 5, parameters_);
    nsbi::kernels::AdamWState state(arch.n_parameters());
    nsbi::kernels::AdamWConfig config;
    config.weight_decay = 0.0;  // the maximum-likelihood fit, unregularised
    for (std::size_t step = 0; step < steps; ++step) {
      // Constant, then divided by 10 and by 100 for the last fifths: settles AdamW's oscillation.
      config.learning_rate = step < 3 * steps / 5 ? lr : (step < 4 * steps / 5 ? 0.1 * lr : 0.01 * lr);
      mlp_.forward(parameters_, inputs, logits);
      nsbi::kernels::bce_with_logits(logits, labels, FloatVector(), static_cast<double>(n), logit_gradients);
      mlp_.backward(parameters_, logit_gradients, gradients);
      nsbi::kernels::adamw_step(config, state, parameters_, gradients);
    }
  }

  std::vector<double> log_ratio(const std::vector<double>& x) {
    FloatMatrix inputs = nsbi::make_float_matrix("inputs", x.size(), 1);
    nsbi::kernels::standardize(standardization_, column(x), 0, inputs);
    const FloatVector logits = nsbi::make_float_vector("logits", x.size());
    mlp_.forward(parameters_, inputs, logits);
    const std::vector<float> values = nsbi::test::to_host(logits);
    return {values.begin(), values.end()};
  }

  double mean() const { return nsbi::test::to_host(standardization_.mean)[0]; }
  double scale() const { return nsbi::test::to_host(standardization_.scale)[0]; }
  std::vector<float> parameters() const { return nsbi::test::to_host(parameters_); }

 private:
  nsbi::kernels::Standardization standardization_;
  nsbi::kernels::Mlp mlp_;
  FloatVector parameters_;
};

// The maximum-likelihood logistic fit s = a x + c (Newton's method in double) and the Fisher information
// per sample at the truth, I = mean σ(1 - σ) (x, 1)(x, 1)^T.
struct LogisticFit {
  std::array<double, 2> theta;  // a, c
  std::array<double, 4> information;
};

LogisticFit logistic_fit(const std::vector<double>& x) {
  const std::size_t n = x.size();
  LogisticFit fit{{0.5, -0.125}, {0, 0, 0, 0}};
  for (int iteration = 0; iteration < 3; ++iteration) {
    double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double y = i < n / 2 ? 1.0 : 0.0;
      const double p = sigmoid(fit.theta[0] * x[i] + fit.theta[1]);
      const double c = p * (1.0 - p);
      g0 += (p - y) * x[i];
      g1 += p - y;
      h00 += c * x[i] * x[i];
      h01 += c * x[i];
      h11 += c;
    }
    if (iteration == 0) fit.information = {h00 / n, h01 / n, h01 / n, h11 / n};  // at the truth
    const double det = h00 * h11 - h01 * h01;
    fit.theta[0] -= (h11 * g0 - h01 * g1) / det;
    fit.theta[1] -= (h00 * g1 - h01 * g0) / det;
  }
  return fit;
}

// n δ^T I δ for δ = (a, c) - reference.
double wald(const std::array<double, 2>& theta, const std::array<double, 2>& reference,
            const LogisticFit& fit, std::size_t n) {
  const double d0 = theta[0] - reference[0];
  const double d1 = theta[1] - reference[1];
  const auto& I = fit.information;
  return static_cast<double>(n) * (d0 * d0 * I[0] + 2.0 * d0 * d1 * I[1] + d1 * d1 * I[3]);
}

TEST(Training, LogisticRegressionReachesTheMaximumLikelihoodFit) {
  const std::vector<double> x = sample(1 << 15, 101);
  TrainedClassifier classifier({1, {}, Activation::relu}, x, 500, 0.05);
  // Back to raw x: s = w (x - mean) / scale + b.
  const std::vector<float> p = classifier.parameters();
  const std::array<double, 2> trained{p[0] / classifier.scale(),
                                      p[1] - p[0] * classifier.mean() / classifier.scale()};
  const LogisticFit fit = logistic_fit(x);
  // The optimiser's error, in units of the fit's own statistical error: n δ^T I δ ~ χ²_2 for the sampling
  // error (mean 2); 0.01 means training got ~15 times closer to the optimum than the data determine it.
  EXPECT_LT(wald(trained, fit.theta, fit, x.size()), 0.01);
  // The maximum-likelihood fit against the truth: asymptotically n δ^T I δ ~ χ²_2.
  const double w = wald(fit.theta, {0.5, -0.125}, fit, x.size());
  EXPECT_GT(nsbi::test::chi2_pvalue(w, 2.0), min_pvalue) << "Wald statistic " << w;
}

TEST(Training, SmallNetworkLearnsTheGaussianLogRatio) {
  const std::vector<double> x = sample(1 << 14, 102);
  const MlpArchitecture arch{1, {16}, Activation::tanh};
  TrainedClassifier classifier(arch, x, 600, 0.02);
  const std::vector<double> held_out = sample(1 << 13, 103);
  const std::vector<double> learned = classifier.log_ratio(held_out);
  double squared = 0.0, smallest_weight = 1.0;
  for (std::size_t i = 0; i < held_out.size(); ++i) {
    const double truth = exact_log_ratio(held_out[i]);
    squared += (learned[i] - truth) * (learned[i] - truth);
    smallest_weight = std::min(smallest_weight, sigmoid(truth) * (1.0 - sigmoid(truth)));
  }
  const double rms = std::sqrt(squared / static_cast<double>(held_out.size()));
  // For a maximum-likelihood fit with k parameters, n E[σ(1 - σ) (ŝ - s)^2] is asymptotically χ²_k
  // (k = 49 counts every weight, more than the network's effective degrees of freedom: conservative), and
  // E[σ(1 - σ) (ŝ - s)^2] >= min σ(1 - σ) · RMS^2 over the held-out sample.
  const double statistic = static_cast<double>(x.size()) * smallest_weight * rms * rms;
  EXPECT_GT(nsbi::test::chi2_pvalue(statistic, static_cast<double>(arch.n_parameters())), min_pvalue)
      << "RMS(log r̂ - log r) = " << rms;
}

}  // namespace
