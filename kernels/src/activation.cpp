#include "nsbi/kernels/activation.hpp"

#include "nsbi/core/error.hpp"

namespace nsbi::kernels {

std::string activation_name(Activation activation) {
  switch (activation) {
    case Activation::relu:
      return "relu";
    case Activation::silu:
      return "silu";
    case Activation::tanh:
      return "tanh";
    case Activation::softplus:
      return "softplus";
  }
  NSBI_ASSERT(false, "unknown activation");
}

Activation activation_from_name(const std::string& name) {
  for (Activation a : {Activation::relu, Activation::silu, Activation::tanh, Activation::softplus})
    if (activation_name(a) == name) return a;
  throw ConfigError("nsbi::kernels::activation_from_name: unknown activation '" + name +
                    "' (valid: relu, silu, tanh, softplus)");
}

}  // namespace nsbi::kernels
