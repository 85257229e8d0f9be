#include "nsbi/inference/c2st.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/threads.hpp"

namespace nsbi::inference {
namespace {

void check_settings(const C2stSettings& s, std::size_t dimension) {
  const auto require = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("c2st: " + what);
  };
  require(dimension > 0, "the samples need at least one column");
  require(s.folds >= 2, "folds must be at least 2 (got " + std::to_string(s.folds) + ")");
  require(s.max_epochs > 0, "max_epochs must be positive");
  require(s.batch_size > 0, "batch_size must be positive");
  require(std::isfinite(s.learning_rate) && s.learning_rate > 0, "learning_rate must be positive");
  require(std::isfinite(s.tolerance) && s.tolerance >= 0, "tolerance must be non-negative");
}

void check_samples(const std::vector<double>& samples, std::size_t dimension, std::size_t folds,
                   const char* name) {
  const std::string set = std::string("c2st: sample set ") + name;
  if (samples.size() % dimension != 0)
    throw InputError(set + ": " + std::to_string(samples.size()) + " values are not rows of " +
                     std::to_string(dimension) + " columns");
  const std::size_t rows = samples.size() / dimension;
  if (rows < folds)
    throw InputError(set + " has " + std::to_string(rows) + " samples; " + std::to_string(folds) +
                     " folds need at least one sample of each set per fold");
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (!std::isfinite(samples[i]))
      throw InputError(set + ": sample " + std::to_string(i / dimension) + ", column " +
                       std::to_string(i % dimension) + " is not finite");
}

// Both sets z-scored with the mean and (n − 1) standard deviation of A, as one float matrix: A's rows, then
// B's; labels 0 for A and 1 for B.
std::pair<FloatMatrix, FloatVector> standardised(const std::vector<double>& a, const std::vector<double>& b,
                                                 std::size_t dimension) {
  const std::size_t n_a = a.size() / dimension;
  const std::size_t n_b = b.size() / dimension;
  std::vector<double> mean(dimension, 0.0);
  std::vector<double> sd(dimension, 0.0);
  for (std::size_t i = 0; i < n_a; ++i)
    for (std::size_t k = 0; k < dimension; ++k) mean[k] += a[i * dimension + k];
  for (double& m : mean) m /= static_cast<double>(n_a);
  for (std::size_t i = 0; i < n_a; ++i)
    for (std::size_t k = 0; k < dimension; ++k) sd[k] += std::pow(a[i * dimension + k] - mean[k], 2);
  for (std::size_t k = 0; k < dimension; ++k) {
    sd[k] = std::sqrt(sd[k] / static_cast<double>(n_a - 1));
    if (!(sd[k] > 0))
      throw InputError("c2st: column " + std::to_string(k) +
                       " of sample set A is constant: it cannot be standardised");
  }
  FloatMatrix x = make_float_matrix("c2st inputs", n_a + n_b, dimension);
  FloatVector labels = make_float_vector("c2st labels", n_a + n_b);
  for (std::size_t i = 0; i < n_a + n_b; ++i) {
    const double* row = i < n_a ? &a[i * dimension] : &b[(i - n_a) * dimension];
    for (std::size_t k = 0; k < dimension; ++k) x(i, k) = static_cast<float>((row[k] - mean[k]) / sd[k]);
    labels(i) = i < n_a ? 0.0f : 1.0f;
  }
  return {x, labels};
}

// fold_of[i] for the rows of both sets: each set's rows shuffled (Stream(seed, split, set)) and dealt to the
// folds in turn, so every fold holds ⌊n/folds⌋ or ⌈n/folds⌉ rows of each set (stratified).
std::vector<std::size_t> assign_folds(std::size_t n_a, std::size_t n_b, const C2stSettings& s) {
  std::vector<std::size_t> fold_of(n_a + n_b);
  const std::size_t sizes[2] = {n_a, n_b};
  for (std::size_t set = 0; set < 2; ++set) {
    std::vector<std::size_t> rows(sizes[set]);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i + (set == 0 ? 0 : n_a);
    rng::Stream draws(s.seed, rng::Purpose::split, set);
    rng::fisher_yates(draws, rows.size(),
                      [&](std::uint64_t i, std::uint64_t j) { std::swap(rows[i], rows[j]); });
    for (std::size_t i = 0; i < rows.size(); ++i) fold_of[rows[i]] = i % s.folds;
  }
  return fold_of;
}

// Rows `rows` of x and labels, gathered into the leading rows of the batch buffers; returns those rows.
std::pair<ConstFloatMatrix, ConstFloatVector> gather(const FloatMatrix& x, const FloatVector& labels,
                                                     const std::size_t* rows, std::size_t n,
                                                     const FloatMatrix& batch_x, const FloatVector& batch_y) {
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < x.extent(1); ++k) batch_x(i, k) = x(rows[i], k);
    batch_y(i) = labels(rows[i]);
  }
  const auto leading = std::make_pair(std::size_t{0}, n);
  return {Kokkos::subview(batch_x, leading, Kokkos::ALL), Kokkos::subview(batch_y, leading)};
}

// Runs the GEMMs on one thread while it lives and restores the previous count: the C2ST's matrices (a few
// hundred rows by tens of units) are too small to share, and threads that wait for each other on a busy
// machine made it 20 times slower.
class OneGemmThread {
 public:
  OneGemmThread() : previous_(kernels::gemm_threads()) { kernels::set_gemm_threads(1); }
  ~OneGemmThread() { kernels::set_gemm_threads(previous_); }
  OneGemmThread(const OneGemmThread&) = delete;
  OneGemmThread& operator=(const OneGemmThread&) = delete;

 private:
  int previous_;
};

// One fold's classifier: mini-batch Adam over `train` until the early stop or max_epochs. Returns the epochs
// trained; `parameters` holds the trained weights.
std::size_t train_fold(kernels::Mlp& mlp, const FloatMatrix& x, const FloatVector& labels,
                       std::vector<std::size_t> train, std::size_t fold, const C2stSettings& s,
                       const FloatVector& parameters) {
  const std::size_t batch = std::min(s.batch_size, train.size());
  const FloatMatrix batch_x = make_float_matrix("c2st batch", batch, x.extent(1));
  const FloatVector batch_y = make_float_vector("c2st batch labels", batch);
  const FloatVector logits = make_float_vector("c2st logits", batch);
  const FloatVector logit_gradients = make_float_vector("c2st logit gradients", batch);
  const FloatVector gradients = make_float_vector("c2st gradients", parameters.extent(0));
  kernels::AdamWConfig adam;
  adam.learning_rate = s.learning_rate;
  adam.weight_decay = 0.0;
  kernels::AdamWState state(parameters.extent(0));
  kernels::initialise_parameters(mlp.architecture(), s.seed, parameters);
  double best = std::numeric_limits<double>::infinity();
  std::size_t stale = 0;
  for (std::size_t epoch = 0; epoch < s.max_epochs; ++epoch) {
    rng::Stream draws(s.seed, rng::Purpose::shuffle, (std::uint64_t{fold} << 32) | epoch);
    rng::fisher_yates(draws, train.size(),
                      [&](std::uint64_t i, std::uint64_t j) { std::swap(train[i], train[j]); });
    double loss = 0.0;
    for (std::size_t first = 0; first < train.size(); first += batch) {
      const std::size_t n = std::min(batch, train.size() - first);
      const auto [inputs, targets] = gather(x, labels, &train[first], n, batch_x, batch_y);
      const auto leading = std::make_pair(std::size_t{0}, n);
      const FloatVector batch_logits = Kokkos::subview(logits, leading);
      const FloatVector batch_gradients = Kokkos::subview(logit_gradients, leading);
      mlp.forward(parameters, inputs, batch_logits);
      loss += static_cast<double>(n) *
              kernels::bce_with_logits(batch_logits, targets, {}, static_cast<double>(n), batch_gradients);
      mlp.backward(parameters, batch_gradients, gradients);
      kernels::adamw_step(adam, state, parameters, gradients);
    }
    loss /= static_cast<double>(train.size());
    // scikit-learn's rule: a stale epoch is one that does not beat the best loss by the tolerance.
    stale = loss > best - s.tolerance ? stale + 1 : 0;
    best = std::min(best, loss);
    if (stale > s.patience) return epoch + 1;
  }
  return s.max_epochs;
}

// The fraction of `test` rows whose predicted class (logit > 0: B) is their label.
double accuracy(kernels::Mlp& mlp, const FloatMatrix& x, const FloatVector& labels,
                const std::vector<std::size_t>& test, const FloatVector& parameters) {
  const FloatMatrix test_x = make_float_matrix("c2st test", test.size(), x.extent(1));
  const FloatVector test_y = make_float_vector("c2st test labels", test.size());
  const FloatVector logits = make_float_vector("c2st test logits", test.size());
  const auto [inputs, targets] = gather(x, labels, test.data(), test.size(), test_x, test_y);
  mlp.forward(parameters, inputs, logits);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < test.size(); ++i) correct += (logits(i) > 0.0f) == (targets(i) > 0.5f);
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

}  // namespace

C2stResult c2st(const std::vector<double>& a, const std::vector<double>& b, std::size_t dimension,
                const C2stSettings& settings) {
  check_settings(settings, dimension);
  check_samples(a, dimension, settings.folds, "A");
  check_samples(b, dimension, settings.folds, "B");
  const OneGemmThread one_thread;
  const auto [x, labels] = standardised(a, b, dimension);
  const std::vector<std::size_t> fold_of = assign_folds(a.size() / dimension, b.size() / dimension, settings);
  const std::size_t width = settings.hidden > 0 ? settings.hidden : 10 * dimension;
  kernels::Mlp mlp(kernels::MlpArchitecture{dimension, {width, width}, kernels::Activation::relu});
  const FloatVector parameters = make_float_vector("c2st parameters", mlp.architecture().n_parameters());
  C2stResult result;
  for (std::size_t fold = 0; fold < settings.folds; ++fold) {
    std::vector<std::size_t> train;
    std::vector<std::size_t> test;
    for (std::size_t i = 0; i < fold_of.size(); ++i) (fold_of[i] == fold ? test : train).push_back(i);
    result.fold_epochs.push_back(train_fold(mlp, x, labels, train, fold, settings, parameters));
    result.fold_accuracies.push_back(accuracy(mlp, x, labels, test, parameters));
  }
  const double k = static_cast<double>(settings.folds);
  for (double value : result.fold_accuracies) result.accuracy += value / k;
  double squares = 0.0;
  for (double value : result.fold_accuracies) squares += std::pow(value - result.accuracy, 2);
  result.standard_error = std::sqrt(squares / (k - 1) / k);
  return result;
}

}  // namespace nsbi::inference
