#pragma once
// The classifier's loss (specs/statistics.md): binary cross-entropy on the logit, in the stable form.

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

}  // namespace nsbi::kernels
