#pragma once
// The network seam: what the trainer needs from a network, whatever its kind. A network maps the
// standardised inputs (the observables, then θ) to one logit, log r̂, through one flat float32 parameter
// buffer; the losses with a score term also need the logit's θ-tangent and its backward pass.
// make_network is the one place that turns a description (train.network) into a network: kernels::Mlp and
// kernels::TangentMlp are its one implementation today; a convolutional trunk with a parametric head, or
// residual blocks, plug in there (docs/development.md, "The network seam").

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/views.hpp"
#include "nsbi/training/settings.hpp"

namespace nsbi::training {

class Network {
 public:
  virtual ~Network() = default;

  /// The length of the flat parameter buffer.
  virtual std::size_t n_parameters() const = 0;
  /// Fills `parameters` with the initial weights of `seed`: a pure function of the seed, the same bits on
  /// every rank and run.
  virtual void initialise(std::uint64_t seed, const FloatVector& parameters) const = 0;

  /// logits(i) for inputs [B, n_inputs]; keeps what backward needs (inputs unchanged until then).
  virtual void forward(const FloatVector& parameters, const ConstFloatMatrix& inputs,
                       const FloatVector& logits) = 0;
  /// After forward: gradients = ∂L/∂parameters given logit_gradients(i) = ∂L/∂logit_i.
  virtual void backward(const FloatVector& parameters, const FloatVector& logit_gradients,
                        const FloatVector& gradients) = 0;

  /// A network made with tangents: forward, and tangents(i, p) = Σ_j ∂logit/∂u_j · directions(p, j) for the
  /// P rows of `directions` [P, n_inputs] (∂u/∂θ_p of the standardised inputs u), tangents [B, P].
  virtual void forward_with_tangents(const FloatVector& parameters, const ConstFloatMatrix& inputs,
                                     const ConstFloatMatrix& directions, const FloatVector& logits,
                                     const FloatMatrix& tangents) = 0;
  /// After forward_with_tangents: gradients = ∂L/∂parameters through the logits and the tangents.
  virtual void backward_with_tangents(const FloatVector& parameters, const FloatVector& logit_gradients,
                                      const ConstFloatMatrix& tangent_gradients,
                                      const FloatVector& gradients) = 0;

  /// The oneDNN implementations its GEMMs ran (kernels::Mlp::gemm_implementations): what outputs record.
  virtual std::string gemm_implementations() const = 0;
};

/// The network of `description` on `n_inputs` inputs; `tangents`: it serves forward_with_tangents and
/// backward_with_tangents (the score losses) instead of forward and backward. ConfigError for a description
/// no network implements.
std::unique_ptr<Network> make_network(const NetworkDescription& description, std::size_t n_inputs,
                                      bool tangents, kernels::Device device = kernels::Device::host,
                                      kernels::Precision precision = kernels::Precision::f32);

/// The MLP of a description's head on `n_inputs` inputs: what model.h5 records (its /architecture).
kernels::MlpArchitecture head_architecture(const NetworkDescription& description, std::size_t n_inputs);

}  // namespace nsbi::training
