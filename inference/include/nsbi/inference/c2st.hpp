#pragma once
// The classifier two-sample test (C2ST, docs/statistics.md "Comparing two sample sets"), as sbibm defines
// it: how well an MLP tells samples of A (class 0) from samples of B (class 1), by cross-validated accuracy.
// 0.5: the classifier cannot tell them apart; 1: the sets are fully separable.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nsbi::inference {

/// The test's settings; the defaults follow sbibm (which uses scikit-learn's MLPClassifier defaults).
struct C2stSettings {
  std::size_t folds = 5;          // stratified folds, >= 2
  std::size_t hidden = 0;         // units of each of the two ReLU hidden layers; 0: 10 × dimension
  std::size_t max_epochs = 1000;  // upper bound on passes over a fold's training rows
  std::size_t batch_size = 200;   // mini-batch rows (the last batch of an epoch may be smaller)
  double learning_rate = 1e-3;    // Adam (no weight decay)
  // Early stopping: training ends once the epoch's mean training loss has not fallen by more than
  // `tolerance` below its best for more than `patience` epochs in a row.
  double tolerance = 1e-4;
  std::size_t patience = 10;
  std::uint64_t seed = 0;  // folds, mini-batch order and initial weights
};

struct C2stResult {
  double accuracy = 0;                   // mean of the fold accuracies
  double standard_error = 0;             // their standard deviation / sqrt(folds)
  std::vector<double> fold_accuracies;   // held-out accuracy of each fold
  std::vector<std::size_t> fold_epochs;  // epochs each fold's classifier trained for
};

/// C2ST of the samples `a` [n_a, dimension] and `b` [n_b, dimension] (row-major). Both sets are z-scored
/// with the mean and standard deviation of `a`; each fold holds about 1/folds of each set's rows, and a
/// fresh classifier (the same initial weights in every fold) trained on the other folds predicts class 1
/// where its logit is positive. The same seed gives the same bits. Serial (one process).
/// ConfigError for settings out of range; InputError if a set has fewer rows than folds, a value is not
/// finite, or a column of `a` is constant (no standard deviation to scale by).
C2stResult c2st(const std::vector<double>& a, const std::vector<double>& b, std::size_t dimension,
                const C2stSettings& settings);

}  // namespace nsbi::inference
