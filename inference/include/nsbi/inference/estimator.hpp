#pragma once
// The per-event log likelihood ratio behind every statistic: log r(x_i | θ_k, θ_ref) for all events × a set
// of θ points, from a trained model (learned: log r̂) or from the simulator's exact likelihood (exact: how
// learned results are validated, docs/statistics.md). θ_ref is fixed per estimator; statistics use only
// differences in θ (q, hypothesis tests), so its value never matters to them.

#include <memory>
#include <string>
#include <vector>

#include "nsbi/kernels/pairwise_evaluator.hpp"
#include "nsbi/kernels/views.hpp"
#include "nsbi/sims/simulator.hpp"
#include "nsbi/training/model_file.hpp"

namespace nsbi::inference {

class RatioEstimator {
 public:
  virtual ~RatioEstimator() = default;
  /// "learned" or "exact".
  virtual const std::string& name() const = 0;
  /// out(i, k) = log r(x(i, :) | theta(k, :), θ_ref), x [N, D], theta [K, P], out [N, K].
  virtual void log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) = 0;
  /// Network rows (or likelihood evaluations) so far: for throughput figures.
  virtual std::uint64_t rows_evaluated() const = 0;
  /// The oneDNN implementations of its network GEMMs (kernels::PairwiseEvaluator::gemm_implementations);
  /// "" for an estimator without a network.
  virtual std::string gemm_implementations() const = 0;
};

/// log r̂ of a model (the ensemble's, for an ensemble); θ_ref is the model's reference.
class LearnedEstimator final : public RatioEstimator {
 public:
  /// `precision`: the element type of the network GEMMs' inputs (kernels/precision.hpp).
  LearnedEstimator(const training::ModelRecord& model, kernels::Precision precision);
  const std::string& name() const override;
  void log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) override;
  std::uint64_t rows_evaluated() const override { return evaluator_.rows_evaluated(); }
  std::string gemm_implementations() const override { return evaluator_.gemm_implementations(); }

 private:
  kernels::PairwiseEvaluator evaluator_;
};

/// log p(x|θ)/p(x|θ_ref) of a built-in simulator, where it has an exact form (Simulator::exact_log_ratio).
class ExactEstimator final : public RatioEstimator {
 public:
  /// The simulator must outlive the estimator.
  ExactEstimator(const sims::Simulator& simulator, std::vector<double> theta_ref);
  const std::string& name() const override;
  void log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) override;
  std::uint64_t rows_evaluated() const override { return rows_; }
  std::string gemm_implementations() const override { return ""; }
  const std::vector<double>& reference() const { return theta_ref_; }

 private:
  const sims::Simulator& simulator_;
  std::vector<double> theta_ref_;
  Vector column_;
  std::uint64_t rows_ = 0;
};

}  // namespace nsbi::inference
