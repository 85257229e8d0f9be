#pragma once
// The classifier's losses (docs/statistics.md): binary cross-entropy on the logit, in the stable form, and
// the gold losses that use the simulator's joint log ratio ℓ_i = log r(x_i, z_i | θ_i, θ0) and joint score,
// the contrastive losses NRE-B and NRE-C and the balancing penalty's pieces.
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

/// NRE-B (contrastive, Durkan et al. 2020): for n examples, K candidate logits each, laid out in blocks:
/// logits(a·n + i) = s_ia, the logit of x_i with candidate θ a, where a = 0 is the θ that generated x_i and
/// a = 1, ..., K − 1 are contrastive atoms. ℓ_i = w_i [log Σ_a exp(s_ia) − s_i0], the cross-entropy of
/// picking the true candidate; returns Σ_i ℓ_i / global_examples and writes logit_gradients(a·n + i) =
/// w_i (softmax_a(s_i) − [a = 0]) / global_examples. Summed over the ranks sharing a batch: its mean and
/// gradient. Computed in double per example with the maximum subtracted: finite for finite logits. Its
/// minimiser is log r + c(x_i): the softmax only sees differences between the candidates of one x.
double nre_b(const ExecutionSpace& space, const ConstFloatVector& logits, std::size_t n_examples,
             std::size_t n_candidates, const ConstFloatVector& weights, double global_examples,
             const FloatVector& logit_gradients);
inline double nre_b(const ConstFloatVector& logits, std::size_t n_examples, std::size_t n_candidates,
                    const ConstFloatVector& weights, double global_examples,
                    const FloatVector& logit_gradients) {
  return nre_b(ExecutionSpace(), logits, n_examples, n_candidates, weights, global_examples, logit_gradients);
}

/// NRE-C (Miller et al. 2022) with K contrastive classes and odds γ of a set holding x's own θ: for n
/// examples, K + 1 logits each in blocks as for nre_b, s_i0 of x_i's own θ and s_i1, ..., s_iK of atoms.
/// The dependent set is candidates 0, ..., K − 1 (the true θ in class 0 of it); the independent set is
/// candidates 1, ..., K. With c = log(γ/K), q_J = e^{c + s_i0} / (1 + Σ_{a<K} e^{c + s_ia}) and
/// q_0 = 1 / (1 + Σ_{a≥1} e^{c + s_ia}):
///   ℓ_i = −w_i [γ/(1 + γ) log q_J + 1/(1 + γ) log q_0].
/// Returns Σ_i ℓ_i / global_examples and writes its gradients by the logits / global_examples. Its minimiser
/// is s = log r exactly; K = 1, γ = 1 is bce_with_logits on the pairs (class 1: block 0, class 0: block 1).
/// Double per example, with the largest exponent subtracted: finite for finite logits.
double nre_c(const ExecutionSpace& space, const ConstFloatVector& logits, std::size_t n_examples,
             std::size_t n_classes, double gamma, const ConstFloatVector& weights, double global_examples,
             const FloatVector& logit_gradients);
inline double nre_c(const ConstFloatVector& logits, std::size_t n_examples, std::size_t n_classes,
                    double gamma, const ConstFloatVector& weights, double global_examples,
                    const FloatVector& logit_gradients) {
  return nre_c(ExecutionSpace(), logits, n_examples, n_classes, gamma, weights, global_examples,
               logit_gradients);
}

/// The balancing penalty's (BNRE, Delaunoy et al. 2022) pieces, on the binary classifier σ(s) of pairs:
/// Σ_j w_{j mod n} σ(s_j) over the logits, whose length is a multiple of n = weights.extent(0) (blocks of n
/// pairs sharing their examples' weights; an empty `weights` view is all 1). In double.
double sigmoid_sum(const ExecutionSpace& space, const ConstFloatVector& logits,
                   const ConstFloatVector& weights);
inline double sigmoid_sum(const ConstFloatVector& logits, const ConstFloatVector& weights) {
  return sigmoid_sum(ExecutionSpace(), logits, weights);
}
/// Adds scale · w_{j mod n} σ(s_j) σ(−s_j), the derivative of scale · sigmoid_sum, to logit_gradients(j).
void add_sigmoid_gradient(const ExecutionSpace& space, const ConstFloatVector& logits,
                          const ConstFloatVector& weights, double scale, const FloatVector& logit_gradients);
inline void add_sigmoid_gradient(const ConstFloatVector& logits, const ConstFloatVector& weights,
                                 double scale, const FloatVector& logit_gradients) {
  add_sigmoid_gradient(ExecutionSpace(), logits, weights, scale, logit_gradients);
}

}  // namespace nsbi::kernels
