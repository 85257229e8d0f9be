#pragma once
// log r̂(x_i | θ_k, θ0) of a model for every pair of N events and K parameter points: the inner loop of
// scans and toy campaigns (docs/statistics.md: t(D|θ) = −2 Σ_i log r̂(x_i|θ,θ0) on a θ grid).
//
// Evaluated in large batches of pairs. The network's first layer is affine in its inputs, so its
// pre-activation splits as W·standardise([x; θ]) + b = (W_x·x'_i) + (W_θ·θ'_k + b): the two parts are
// computed once per event and once per θ point, and a pair costs one addition per first-layer unit
// instead of D + P multiply-adds (standardisation folded into the weights). The hidden layers run as
// oneDNN matmuls over blocks of pairs with the bias fused, and the activation as a post-op (ReLU, tanh,
// softplus) or a vectorised pass (SiLU, faster than oneDNN's swish post-op). Ensembles give
// log mean_k exp(log r̂_k) (log-sum-exp), as LikelihoodRatioEstimator. float32 network, double results,
// agreeing with LikelihoodRatioEstimator::log_ratio on the same pairs to float32 rounding (≈1e-5).

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/precision.hpp"
#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

/// What the evaluator needs of a trained model (training::ModelRecord::ensemble()): each member's MLP
/// parameters (layout of mlp.hpp) on inputs standardised as (v − mean) / scale, the D observables then the
/// P parameters.
struct StandardizedEnsemble {
  MlpArchitecture architecture;               // n_inputs = D + P
  std::size_t n_observables = 0;              // D
  std::vector<double> standardization_mean;   // [D + P]
  std::vector<double> standardization_scale;  // [D + P]
  std::vector<std::vector<float>> members;    // one flat parameter buffer per member
};

class PairwiseEvaluator {
 public:
  /// block_pairs: pairs per network pass (memory: a few × block_pairs × widest layer floats). 2048 keeps a
  /// pass's activations in cache: 5–8 % faster than 16384 for 3×64 and 4×512 networks (bench_pairwise).
  static constexpr std::size_t default_block_pairs = 2048;

  /// `precision`: the element type the hidden layers' GEMMs read (precision.hpp); the first layer and the
  /// output layer run in the row kernels, in double and float.
  explicit PairwiseEvaluator(const StandardizedEnsemble& record,
                             std::size_t block_pairs = default_block_pairs,
                             Precision precision = Precision::f32);
  ~PairwiseEvaluator();
  PairwiseEvaluator(PairwiseEvaluator&&) noexcept;
  PairwiseEvaluator& operator=(PairwiseEvaluator&&) noexcept;

  std::size_t n_observables() const;
  std::size_t n_parameters() const;

  /// out(i, k) = log r̂(x(i, :) | theta(k, :)) for x [N, D], theta [K, P], out [N, K]; the ensemble's value
  /// for an ensemble. Allocates nothing after the first call with the same K (or smaller).
  void evaluate(const ExecutionSpace& space, const ConstMatrix& x, const ConstMatrix& theta,
                const Matrix& out);
  void evaluate(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) {
    evaluate(ExecutionSpace(), x, theta, out);
  }

  /// As Mlp::gemm_implementations.
  std::string gemm_implementations() const;

  /// Network rows evaluated so far (pairs × members): for throughput figures.
  std::uint64_t rows_evaluated() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsbi::kernels
