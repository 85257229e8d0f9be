#pragma once
// An independent, naive double-precision MLP for the tests: loops written from the definition in mlp.hpp
// (W_l [n_out, n_in] row-major then b_l, hidden layers f(W a + b), plus a for the residual layers, one
// linear output), with its own activations and a hand-written backward pass. It shares no code with
// nsbi::kernels beyond the architecture's sizes.

#include <cmath>
#include <cstddef>
#include <vector>

#include "nsbi/kernels/mlp.hpp"

namespace nsbi::test {

inline double reference_activation(kernels::Activation activation, double z) {
  switch (activation) {
    case kernels::Activation::relu:
      return z > 0.0 ? z : 0.0;
    case kernels::Activation::tanh:
      return std::tanh(z);
    case kernels::Activation::silu:
      return z / (1.0 + std::exp(-z));
    case kernels::Activation::softplus:
      return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
  }
  return 0.0;
}

inline double reference_derivative(kernels::Activation activation, double z) {
  switch (activation) {
    case kernels::Activation::relu:
      return z > 0.0 ? 1.0 : 0.0;
    case kernels::Activation::tanh: {
      const double t = std::tanh(z);
      return 1.0 - t * t;
    }
    case kernels::Activation::silu: {
      const double s = 1.0 / (1.0 + std::exp(-z));
      return s + z * s * (1.0 - s);
    }
    case kernels::Activation::softplus:
      return 1.0 / (1.0 + std::exp(-z));
  }
  return 0.0;
}

class ReferenceMlp {
 public:
  ReferenceMlp(kernels::MlpArchitecture architecture, std::vector<double> parameters)
      : arch_(std::move(architecture)), p_(std::move(parameters)) {}

  /// The logit of one sample x[n_inputs].
  double logit(const double* x) const {
    std::vector<std::vector<double>> z, a;
    return forward(x, z, a);
  }

  /// Adds c · d s(x) / d parameters to gradient and c · d s(x) / d x to input_gradient (if not null).
  void accumulate_gradient(const double* x, double c, std::vector<double>& gradient,
                           double* input_gradient) const {
    std::vector<std::vector<double>> z, a;
    forward(x, z, a);
    const std::size_t n_layers = arch_.n_layers();
    std::vector<double> delta{c};  // d (c s) / d (pre-activation of the current layer)
    std::vector<double> upper;     // d (c s) / d (output of the current layer), for a hidden layer
    for (std::size_t l = n_layers; l-- > 0;) {
      const std::size_t n_in = arch_.layer_inputs(l);
      const std::size_t n_out = arch_.layer_outputs(l);
      const double* input = l == 0 ? x : a[l - 1].data();
      const std::size_t w = arch_.weight_offset(l);
      const std::size_t b = arch_.bias_offset(l);
      std::vector<double> below(n_in, 0.0);
      for (std::size_t o = 0; o < n_out; ++o) {
        gradient[b + o] += delta[o];
        for (std::size_t i = 0; i < n_in; ++i) {
          gradient[w + o * n_in + i] += delta[o] * input[i];
          below[i] += delta[o] * p_[w + o * n_in + i];
        }
      }
      if (arch_.skips(l))  // a_l = a_{l-1} + f(z_l): the skip passes d / d a_l on unchanged
        for (std::size_t i = 0; i < n_in; ++i) below[i] += upper[i];
      if (l == 0) {
        if (input_gradient)
          for (std::size_t i = 0; i < n_in; ++i) input_gradient[i] += below[i];
      } else {
        upper = below;
        for (std::size_t i = 0; i < n_in; ++i)
          below[i] *= reference_derivative(arch_.activation, z[l - 1][i]);
      }
      delta = below;
    }
  }

  std::vector<double>& parameters() { return p_; }

 private:
  double forward(const double* x, std::vector<std::vector<double>>& z,
                 std::vector<std::vector<double>>& a) const {
    const std::size_t n_layers = arch_.n_layers();
    double logit = 0.0;
    for (std::size_t l = 0; l < n_layers; ++l) {
      const std::size_t n_in = arch_.layer_inputs(l);
      const std::size_t n_out = arch_.layer_outputs(l);
      const double* input = l == 0 ? x : a[l - 1].data();
      std::vector<double> pre(n_out);
      for (std::size_t o = 0; o < n_out; ++o) {
        double sum = p_[arch_.bias_offset(l) + o];
        for (std::size_t i = 0; i < n_in; ++i) sum += p_[arch_.weight_offset(l) + o * n_in + i] * input[i];
        pre[o] = sum;
      }
      if (l + 1 == n_layers) {
        logit = pre[0];
      } else {
        std::vector<double> post(n_out);
        for (std::size_t o = 0; o < n_out; ++o)
          post[o] = reference_activation(arch_.activation, pre[o]) + (arch_.skips(l) ? input[o] : 0.0);
        z.push_back(pre);
        a.push_back(post);
      }
    }
    return logit;
  }

  kernels::MlpArchitecture arch_;
  std::vector<double> p_;
};

}  // namespace nsbi::test
