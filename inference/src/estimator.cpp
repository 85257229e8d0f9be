#include "nsbi/inference/estimator.hpp"

#include "nsbi/core/error.hpp"

namespace nsbi::inference {

LearnedEstimator::LearnedEstimator(const training::ModelRecord& model, kernels::Precision precision)
    : evaluator_(model.ensemble(), kernels::PairwiseEvaluator::default_block_pairs, precision) {}

const std::string& LearnedEstimator::name() const {
  static const std::string name = "learned";
  return name;
}

void LearnedEstimator::log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) {
  evaluator_.evaluate(x, theta, out);
}

ExactEstimator::ExactEstimator(const sims::Simulator& simulator, std::vector<double> theta_ref)
    : simulator_(simulator), theta_ref_(std::move(theta_ref)) {
  NSBI_ASSERT(theta_ref_.size() == simulator.info().n_parameters(), "reference point has the wrong length");
}

const std::string& ExactEstimator::name() const {
  static const std::string name = "exact";
  return name;
}

void ExactEstimator::log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) {
  const std::size_t n = x.extent(0);
  const std::size_t k_points = theta.extent(0);
  NSBI_ASSERT(out.extent(0) == n && out.extent(1) == k_points && theta.extent(1) == theta_ref_.size(),
              "exact estimator: shapes of x, theta and out disagree");
  if (column_.extent(0) < n) column_ = Vector("nsbi::inference::ExactEstimator::column", n);
  const auto column = Kokkos::subview(column_, std::make_pair(std::size_t{0}, n));
  std::vector<double> point(theta_ref_.size());
  for (std::size_t k = 0; k < k_points; ++k) {
    for (std::size_t p = 0; p < point.size(); ++p) point[p] = theta(k, p);
    const std::string why = simulator_.exact_ratio_unavailable(point.data(), theta_ref_.data());
    if (!why.empty()) throw ConfigError("estimator: exact: " + why);
    simulator_.exact_log_ratio(ExecutionSpace(), point.data(), theta_ref_.data(), x, column);
    Kokkos::parallel_for(
        "nsbi::inference::ExactEstimator::copy", Kokkos::RangePolicy<ExecutionSpace>(0, n),
        KOKKOS_LAMBDA(const std::size_t i) { out(i, k) = column(i); });
  }
  Kokkos::fence();
  rows_ += n * k_points;
}

}  // namespace nsbi::inference
