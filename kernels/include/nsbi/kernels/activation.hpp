#pragma once
// The hidden-layer activations of the classifier and their derivatives, as float32 kernel-side functions.
// Smooth ones (tanh, SiLU, softplus) are what the score-based losses need (docs/statistics.md, "Gold").

#include <Kokkos_Macros.hpp>
#include <string>
#include <type_traits>

#include "nsbi/kernels/float_math.hpp"

namespace nsbi::kernels {

enum class Activation { relu, silu, tanh, softplus };

/// "relu", "silu", "tanh", "softplus": the names used in configs and in model.h5.
std::string activation_name(Activation activation);
/// The inverse of activation_name; an unknown name is a ConfigError that lists the valid ones.
Activation activation_from_name(const std::string& name);

/// Whether the derivative needs the pre-activation z; relu and tanh get theirs from a = f(z), so their
/// layers keep only a (one buffer, half the memory traffic).
constexpr bool needs_preactivation(Activation activation) {
  return activation == Activation::silu || activation == Activation::softplus;
}

/// Calls body(std::integral_constant<Activation, A>{}) for the runtime activation A, so that each
/// activation gets its own compiled kernel.
template <class Body>
void with_activation(Activation activation, Body&& body) {
  switch (activation) {
    case Activation::relu:
      return body(std::integral_constant<Activation, Activation::relu>{});
    case Activation::silu:
      return body(std::integral_constant<Activation, Activation::silu>{});
    case Activation::tanh:
      return body(std::integral_constant<Activation, Activation::tanh>{});
    case Activation::softplus:
      return body(std::integral_constant<Activation, Activation::softplus>{});
  }
}

/// Calls body(activation constant, std::bool_constant<skip>{}): with_activation for kernels that also have a
/// residual (skip) variant.
template <class Body>
void with_activation_and_skip(Activation activation, bool skip, Body&& body) {
  with_activation(activation, [&](auto a) {
    if (skip)
      body(a, std::true_type{});
    else
      body(a, std::false_type{});
  });
}

template <Activation A>
KOKKOS_FORCEINLINE_FUNCTION float activate(float z) {
  if constexpr (A == Activation::relu) return z > 0.0f ? z : 0.0f;
  if constexpr (A == Activation::tanh) return float_math::tanh(z);
  if constexpr (A == Activation::silu) return z * float_math::sigmoid(z);
  if constexpr (A == Activation::softplus) return float_math::softplus(z);
}

/// f'(z) given z and a = f(z) (relu and tanh read only a, silu and softplus only z).
template <Activation A>
KOKKOS_FORCEINLINE_FUNCTION float activation_derivative(float z, float a) {
  if constexpr (A == Activation::relu) return a > 0.0f ? 1.0f : 0.0f;
  if constexpr (A == Activation::tanh) return 1.0f - a * a;
  if constexpr (A == Activation::silu) {
    const float s = float_math::sigmoid(z);
    return s * (1.0f + z * (1.0f - s));
  }
  if constexpr (A == Activation::softplus) return float_math::sigmoid(z);
}

/// f''(z) given z and a = f(z), for the tangent (score) path's backward pass. relu's is 0 (it is undefined at
/// 0 and zero elsewhere, which is why the score-based losses reject relu).
template <Activation A>
KOKKOS_FORCEINLINE_FUNCTION float activation_second_derivative(float z, float a) {
  if constexpr (A == Activation::relu) return 0.0f;
  if constexpr (A == Activation::tanh) return -2.0f * a * (1.0f - a * a);
  if constexpr (A == Activation::silu) {
    // d/dz [σ + z σ(1 − σ)] = σ(1 − σ) (2 + z (1 − 2σ)).
    const float s = float_math::sigmoid(z);
    return s * (1.0f - s) * (2.0f + z * (1.0f - 2.0f * s));
  }
  if constexpr (A == Activation::softplus) {
    const float s = float_math::sigmoid(z);
    return s * (1.0f - s);
  }
}

}  // namespace nsbi::kernels
