#pragma once
// AdamW (Loshchilov & Hutter 2019) over the flat parameter buffer, as torch.optim.AdamW computes it, so that
// nsbi and the PyTorch scripts it replaces take the same steps.

#include <cstddef>
#include <cstdint>

#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

/// Hyper-parameters; the defaults are PyTorch's. The learning rate may change between steps (schedules).
struct AdamWConfig {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 1e-2;  // decoupled: multiplies the parameters, not added to the gradient
};

/// The optimizer's state, flat buffers of the parameter layout: checkpointed with the parameters, it resumes
/// training bit for bit.
struct AdamWState {
  explicit AdamWState(std::size_t n_parameters);  // zero moments, step 0
  FloatVector first_moment;                       // m
  FloatVector second_moment;                      // v
  std::uint64_t step = 0;                         // steps taken, for the bias corrections
};

/// One step: t = ++state.step, then for every parameter p with gradient g
///   p ← p (1 − lr λ),  m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,
///   p ← p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + ε).
void adamw_step(const ExecutionSpace& space, const AdamWConfig& config, AdamWState& state,
                const FloatVector& parameters, const ConstFloatVector& gradients);
inline void adamw_step(const AdamWConfig& config, AdamWState& state, const FloatVector& parameters,
                       const ConstFloatVector& gradients) {
  adamw_step(ExecutionSpace(), config, state, parameters, gradients);
}

}  // namespace nsbi::kernels
