#pragma once
// The classifier's losses (docs/statistics.md): binary cross-entropy on the logit, in the stable form, and
// the gold losses that use the simulator's joint log ratio ℓ_i = log r(x_i, z_i | θ_i, θ0) and joint score.
// Class convention of nsbi: label 1 = x_i ~ p(x|θ_i) (numerator), label 0 = x_i ~ p(x|θ0) (reference);
// r̂ = exp(s). All take one rank's slice of a global batch, sum in double, and write gradients already divided
// by the normaliser, so that the ranks' results add up to the global ones; an empty `weights` view is all 1.

#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

/// For one rank's slice of a global batch of size global_batch, with logits s_i, labels y_i in [0, 1] (soft
/// labels allowed) and weights w_i (empty: all 1):
///   ℓ_i = w_i [max(s_i, 0) − s_i y_i + log(1 + exp(−|s_i|))]
///       = −w_i [y_i log σ(s_i) + (1 − y_i) log σ(−s_i)],
/// returns Σ_i ℓ_i / global_batch and writes logit_gradients(i) = w_i (σ(s_i) − y_i) / global_batch. Summed
/// over the ranks sharing the batch, both are the global mean and its gradient. float32 per sample (summed
/// in double), within a few ulp; finite for every finite logit.
double bce_with_logits(const ExecutionSpace& space, const ConstFloatVector& logits,
                       const ConstFloatVector& labels, const ConstFloatVector& weights, double global_batch,
                       const FloatVector& logit_gradients);
inline double bce_with_logits(const ConstFloatVector& logits, const ConstFloatVector& labels,
                              const ConstFloatVector& weights, double global_batch,
                              const FloatVector& logit_gradients) {
  return bce_with_logits(ExecutionSpace(), logits, labels, weights, global_batch, logit_gradients);
}

/// ROLR: class 0 rows regress r, w_i (e^{ℓ_i} − e^{s_i})²; class 1 rows regress 1/r, w_i (e^{−ℓ_i} −
/// e^{−s_i})² (MadMiner writes it with y = 1 for reference samples). A soft label y_i mixes the two terms
/// with weights 1 − y_i and y_i. Returns Σ_i / global_batch and writes logit_gradients(i) = ∂/∂s_i /
/// global_batch. Computed in double per row as e^{2s} expm1(ℓ − s)² (and e^{−2s} expm1(s − ℓ)²), which keeps
/// the small residuals near the optimum accurate and never forms ∞ − ∞: the result is NaN only for NaN
/// inputs. Beyond double range (|s|, |ℓ| ≳ 350) the loss is +∞; gradients beyond float range (|s| ≳ 44 with a
/// large residual) are ±∞. A non-finite loss is the trainer's to report. Rows of weight 0 are skipped (their
/// ℓ is not read).
double rolr(const ExecutionSpace& space, const ConstFloatVector& logits, const ConstFloatVector& labels,
            const ConstFloatVector& joint_log_r, const ConstFloatVector& weights, double global_batch,
            const FloatVector& logit_gradients);
inline double rolr(const ConstFloatVector& logits, const ConstFloatVector& labels,
                   const ConstFloatVector& joint_log_r, const ConstFloatVector& weights, double global_batch,
                   const FloatVector& logit_gradients) {
  return rolr(ExecutionSpace(), logits, labels, joint_log_r, weights, global_batch, logit_gradients);
}

/// ALICE's soft labels: labels(i) = σ(ℓ_i) = r / (1 + r), the probability of class 1 given (x, z) (MadMiner's
/// s = 1/(1 + r) is the probability of the reference class); ALICE is bce_with_logits with these
/// labels. Computed in double, rounded to float: 1 for ℓ ≳ 17 (float resolves no closer to 1), 0 only below
/// ℓ ≈ −103 (under float's smallest subnormal).
void alice_labels(const ExecutionSpace& space, const ConstFloatVector& joint_log_r,
                  const FloatVector& labels);
inline void alice_labels(const ConstFloatVector& joint_log_r, const FloatVector& labels) {
  alice_labels(ExecutionSpace(), joint_log_r, labels);
}

/// The score term of CASCAL, RASCAL, ALICES and SALLY: α Σ_i w_i Σ_p (tangents(i, p) − scores(i, p))² /
/// score_rows; writes tangent_gradients(i, p) = 2 α w_i (tangents − scores) / score_rows. w_i = 0 marks rows
/// without a score term (class 0 rows): their scores are not read and their gradients are 0. score_rows is
/// the global count of rows carrying the term (the normaliser).
double score_mse(const ExecutionSpace& space, const ConstFloatMatrix& tangents,
                 const ConstFloatMatrix& scores, const ConstFloatVector& weights, double alpha,
                 double score_rows, const FloatMatrix& tangent_gradients);
inline double score_mse(const ConstFloatMatrix& tangents, const ConstFloatMatrix& scores,
                        const ConstFloatVector& weights, double alpha, double score_rows,
                        const FloatMatrix& tangent_gradients) {
  return score_mse(ExecutionSpace(), tangents, scores, weights, alpha, score_rows, tangent_gradients);
}

}  // namespace nsbi::kernels
