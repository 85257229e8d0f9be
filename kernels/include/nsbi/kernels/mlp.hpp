#pragma once
// The parametric classifier s(x, θ) of docs/statistics.md ("What is learned"): a multilayer perceptron on
// the standardised (x, θ), whose single output is the logit, log r̂.
//
// Parameter layout (stable: model.h5 stores this buffer and numpy evaluators read it). All parameters live
// in one contiguous float32 buffer, so a data-parallel step needs one allreduce; gradients use the same
// layout. Layers l = 0 .. L follow each other; layer l maps n_in = layer_inputs(l) to n_out =
// layer_outputs(l) and stores
//   W_l [n_out, n_in], row-major: W_l(o, i) at weight_offset(l) + o * n_in + i, then
//   b_l [n_out]:                  b_l(o)    at bias_offset(l) + o = weight_offset(l) + n_out * n_in + o.
// The network: a_{-1} = input, a_l = f(W_l a_{l-1} + b_l) for the hidden layers l < L, and the logit
// s = W_L a_{L-1} + b_L (one output, no activation). With no hidden layers it is logistic regression.
// A residual network (`residual`) adds each hidden layer's input to its output past the first:
// a_l = a_{l-1} + f(W_l a_{l-1} + b_l) for 1 <= l < L (all hidden layers of one width); the parameters are
// the same.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/kernels/activation.hpp"
#include "nsbi/kernels/device.hpp"
#include "nsbi/kernels/precision.hpp"
#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

struct MlpArchitecture {
  std::size_t n_inputs = 0;
  std::vector<std::size_t> hidden;  // widths of the hidden layers
  Activation activation = Activation::relu;
  bool residual = false;  // hidden layers past the first add their input (above)

  std::size_t n_layers() const { return hidden.size() + 1; }
  std::size_t layer_inputs(std::size_t layer) const;
  std::size_t layer_outputs(std::size_t layer) const;
  std::size_t weight_offset(std::size_t layer) const;
  std::size_t bias_offset(std::size_t layer) const;
  std::size_t n_parameters() const;
  /// Σ_l n_in · n_out: one sample costs 2 × this in forward flops and 6 × this for forward and backward.
  std::size_t n_weights() const;
  /// Whether hidden layer l adds its input to its output.
  bool skips(std::size_t layer) const { return residual && layer > 0 && layer < hidden.size(); }
  /// ConfigError unless n_inputs and every width are positive and, for a residual network, the hidden
  /// layers have one width.
  void validate() const;
};

/// Forward and backward passes of one network on host memory, GEMMs through oneDNN matmul. Buffers and
/// oneDNN primitives are made once per batch size (and thread count, see threads.hpp) and reused, so steps
/// allocate nothing. Not thread-safe: one instance per concurrent user.
class Mlp {
 public:
  /// `device` and `precision`: where and in which element type its GEMMs run (the seams; host only today).
  explicit Mlp(MlpArchitecture architecture, Device device = Device::host,
               Precision precision = Precision::f32);
  ~Mlp();
  Mlp(Mlp&&) noexcept;
  Mlp& operator=(Mlp&&) noexcept;

  const MlpArchitecture& architecture() const { return architecture_; }
  /// The oneDNN implementations of the GEMMs made so far (detail::GemmContext::implementations): empty
  /// before the first pass, or without hidden layers.
  std::string gemm_implementations() const;

  /// logits(i) = s(inputs(i, :)) for a batch of inputs [B, n_inputs]; keeps what backward needs. The
  /// inputs must stay unchanged until backward.
  void forward(const ExecutionSpace& space, const ConstFloatVector& parameters,
               const ConstFloatMatrix& inputs, const FloatVector& logits);
  void forward(const ConstFloatVector& parameters, const ConstFloatMatrix& inputs,
               const FloatVector& logits) {
    forward(ExecutionSpace(), parameters, inputs, logits);
  }

  /// After forward with the same parameters: given logit_gradients(i) = d loss / d s_i, overwrites gradients
  /// (the parameter layout above) with d loss / d parameters and, when input_gradients is not empty, with
  /// d loss / d inputs [B, n_inputs].
  void backward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                const ConstFloatVector& logit_gradients, const FloatVector& gradients,
                const FloatMatrix& input_gradients = {});
  void backward(const ConstFloatVector& parameters, const ConstFloatVector& logit_gradients,
                const FloatVector& gradients, const FloatMatrix& input_gradients = {}) {
    backward(ExecutionSpace(), parameters, logit_gradients, gradients, input_gradients);
  }

 private:
  struct Impl;  // oneDNN objects and per-batch-size buffers, kept out of this header
  MlpArchitecture architecture_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsbi::kernels
