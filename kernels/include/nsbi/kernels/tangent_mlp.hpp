#pragma once
// The classifier with forward-mode tangents, for the score-augmented losses of docs/statistics.md ("Gold":
// CASCAL, RASCAL, ALICES, SALLY). They need ∂s/∂θ_p of the logit with respect to its θ inputs
// inside the loss, and the gradient of that with respect to the weights. The inputs are standardised,
// u = (v − mean) / std, so ∂s/∂θ_p = ∂s/∂u_{D+p} / std_{D+p}: the derivative along a fixed direction of
// input space, the same for every example. P such tangents travel with the forward pass:
//   ż_0 = W_0 d_p,  ȧ_l = f'(z_l) ż_l,  ż_{l+1} = W_{l+1} ȧ_l,  ṡ_p = w_L · ȧ_{L-1},
// and the backward pass differentiates a loss of both s and ṡ: the tangent rows add to dW (never to db),
// and through ȧ_l = f'(z_l) ż_l they add f''(z_l) ż_l ⊙ ∂L/∂ȧ_l to the primal ∂L/∂z_l.
//
// Each layer stacks the B primal rows and the B·P tangent rows (tangent p of example i is row B + i P + p)
// into one [B (1 + P), width] matrix, so that a layer is one oneDNN matmul for all of them: a step costs
// about (1 + P) Mlp steps. Parameter layout and MlpArchitecture are those of mlp.hpp.

#include <memory>
#include <string>

#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

/// An Mlp whose forward pass also carries P tangents (directional derivatives of the logit along fixed input
/// directions) and whose backward pass differentiates a loss of both logits and tangents. Smooth activations
/// only (tanh, silu, softplus): relu is a ConfigError naming the activation (its second derivative is zero
/// almost everywhere and undefined at 0, so the score term would not train), unless there is no hidden layer
/// (logistic regression: no activation is applied). Buffers and primitives are made once per (batch size, P)
/// and reused; not thread-safe.
class TangentMlp {
 public:
  /// `device` and `precision` as for Mlp.
  explicit TangentMlp(MlpArchitecture architecture, Device device = Device::host,
                      Precision precision = Precision::f32);
  ~TangentMlp();
  TangentMlp(TangentMlp&&) noexcept;
  TangentMlp& operator=(TangentMlp&&) noexcept;

  const MlpArchitecture& architecture() const { return architecture_; }
  /// As Mlp::gemm_implementations.
  std::string gemm_implementations() const;

  /// logits(i) = s(inputs(i, :)); tangents(i, p) = Σ_j ∂s/∂u_j (inputs(i, :)) · directions(p, j) for the P
  /// rows of `directions` [P >= 1, n_inputs] (the same for every example), tangents [B, P]. Keeps what
  /// backward needs; inputs and directions must stay unchanged until backward.
  void forward(const ExecutionSpace& space, const ConstFloatVector& parameters,
               const ConstFloatMatrix& inputs, const ConstFloatMatrix& directions, const FloatVector& logits,
               const FloatMatrix& tangents);
  void forward(const ConstFloatVector& parameters, const ConstFloatMatrix& inputs,
               const ConstFloatMatrix& directions, const FloatVector& logits, const FloatMatrix& tangents) {
    forward(ExecutionSpace(), parameters, inputs, directions, logits, tangents);
  }

  /// After forward with the same parameters: given logit_gradients(i) = ∂L/∂s_i and tangent_gradients(i, p) =
  /// ∂L/∂tangents(i, p), overwrites gradients (parameter layout of mlp.hpp) with ∂L/∂parameters through both
  /// paths (including the f'' terms).
  void backward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                const ConstFloatVector& logit_gradients, const ConstFloatMatrix& tangent_gradients,
                const FloatVector& gradients);
  void backward(const ConstFloatVector& parameters, const ConstFloatVector& logit_gradients,
                const ConstFloatMatrix& tangent_gradients, const FloatVector& gradients) {
    backward(ExecutionSpace(), parameters, logit_gradients, tangent_gradients, gradients);
  }

 private:
  struct Impl;  // oneDNN objects and per-batch-size buffers, kept out of this header
  MlpArchitecture architecture_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsbi::kernels
