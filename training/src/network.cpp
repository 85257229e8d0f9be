#include "nsbi/training/network.hpp"

#include <optional>

#include "nsbi/core/error.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/tangent_mlp.hpp"

namespace nsbi::training {
namespace {

// The head alone: an MLP on the inputs, with forward-mode tangents when the loss needs them.
class MlpNetwork final : public Network {
 public:
  MlpNetwork(kernels::MlpArchitecture architecture, bool tangents, kernels::Device device,
             kernels::Precision precision)
      : architecture_(std::move(architecture)) {
    if (tangents)
      tangent_mlp_.emplace(architecture_, device, precision);
    else
      mlp_.emplace(architecture_, device, precision);
  }

  std::size_t n_parameters() const override { return architecture_.n_parameters(); }

  void initialise(std::uint64_t seed, const FloatVector& parameters) const override {
    kernels::initialise_parameters(architecture_, seed, parameters);
  }

  void forward(const FloatVector& parameters, const ConstFloatMatrix& inputs,
               const FloatVector& logits) override {
    NSBI_ASSERT(mlp_, "nsbi::training: forward on a network made with tangents");
    mlp_->forward(parameters, inputs, logits);
  }

  void backward(const FloatVector& parameters, const FloatVector& logit_gradients,
                const FloatVector& gradients) override {
    NSBI_ASSERT(mlp_, "nsbi::training: backward on a network made with tangents");
    mlp_->backward(parameters, logit_gradients, gradients);
  }

  void forward_with_tangents(const FloatVector& parameters, const ConstFloatMatrix& inputs,
                             const ConstFloatMatrix& directions, const FloatVector& logits,
                             const FloatMatrix& tangents) override {
    NSBI_ASSERT(tangent_mlp_, "nsbi::training: tangents of a network made without them");
    tangent_mlp_->forward(parameters, inputs, directions, logits, tangents);
  }

  void backward_with_tangents(const FloatVector& parameters, const FloatVector& logit_gradients,
                              const ConstFloatMatrix& tangent_gradients,
                              const FloatVector& gradients) override {
    NSBI_ASSERT(tangent_mlp_, "nsbi::training: tangents of a network made without them");
    tangent_mlp_->backward(parameters, logit_gradients, tangent_gradients, gradients);
  }

  std::string gemm_implementations() const override {
    return mlp_ ? mlp_->gemm_implementations() : tangent_mlp_->gemm_implementations();
  }

 private:
  kernels::MlpArchitecture architecture_;
  std::optional<kernels::Mlp> mlp_;
  std::optional<kernels::TangentMlp> tangent_mlp_;
};

}  // namespace

kernels::MlpArchitecture head_architecture(const NetworkDescription& description, std::size_t n_inputs) {
  return {n_inputs, description.head.hidden, kernels::activation_from_name(description.head.activation),
          description.head.residual};
}

std::unique_ptr<Network> make_network(const NetworkDescription& description, std::size_t n_inputs,
                                      bool tangents, kernels::Device device, kernels::Precision precision) {
  return std::make_unique<MlpNetwork>(head_architecture(description, n_inputs), tangents, device, precision);
}

}  // namespace nsbi::training
