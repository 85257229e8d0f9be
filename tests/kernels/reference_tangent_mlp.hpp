#pragma once
// The logit and its directional derivatives in double, by forward-mode differentiation written from the
// definitions (z = W a + b, a = f(z); ż = W ȧ, ȧ = f'(z) ż, no bias on tangents; a residual layer adds its
// input a and ȧ to both), for the tangent and
// gold-loss tests. Shares nothing with nsbi::kernels beyond the architecture's sizes; its activations are
// those of reference_mlp.hpp, and test_tangent_mlp.cpp checks its tangents against finite differences.

#include <cstddef>
#include <vector>

#include "reference_mlp.hpp"

namespace nsbi::test {

struct LogitAndTangents {
  double logit = 0.0;
  std::vector<double> tangents;  // [P]
};

/// s(x) and ṡ_p = Σ_j ∂s/∂x_j directions[p n_inputs + j] for the P rows of directions [P, n_inputs].
inline LogitAndTangents reference_tangents(const kernels::MlpArchitecture& arch, const std::vector<double>& p,
                                           const double* x, const std::vector<double>& directions) {
  const std::size_t n_tangents = directions.size() / arch.n_inputs;
  std::vector<double> a(x, x + arch.n_inputs);
  std::vector<std::vector<double>> t(n_tangents);
  for (std::size_t q = 0; q < n_tangents; ++q)
    t[q].assign(directions.begin() + q * arch.n_inputs, directions.begin() + (q + 1) * arch.n_inputs);
  for (std::size_t l = 0; l < arch.n_layers(); ++l) {
    const std::size_t n_in = arch.layer_inputs(l);
    const std::size_t n_out = arch.layer_outputs(l);
    const bool hidden = l + 1 < arch.n_layers();
    std::vector<double> next(n_out);
    std::vector<std::vector<double>> next_t(n_tangents, std::vector<double>(n_out));
    for (std::size_t o = 0; o < n_out; ++o) {
      double z = p[arch.bias_offset(l) + o];
      for (std::size_t i = 0; i < n_in; ++i) z += p[arch.weight_offset(l) + o * n_in + i] * a[i];
      const double slope = hidden ? reference_derivative(arch.activation, z) : 1.0;
      const double skip = arch.skips(l) ? a[o] : 0.0;
      next[o] = hidden ? reference_activation(arch.activation, z) + skip : z;
      for (std::size_t q = 0; q < n_tangents; ++q) {
        double zt = 0.0;
        for (std::size_t i = 0; i < n_in; ++i) zt += p[arch.weight_offset(l) + o * n_in + i] * t[q][i];
        next_t[q][o] = slope * zt + (arch.skips(l) ? t[q][o] : 0.0);
      }
    }
    a = next;
    t = next_t;
  }
  LogitAndTangents result{a[0], {}};
  for (std::size_t q = 0; q < n_tangents; ++q) result.tangents.push_back(t[q][0]);
  return result;
}

/// Central difference of f(variable) with step h, restoring the variable.
template <class F>
double central_difference(double& variable, double h, F&& f) {
  const double saved = variable;
  variable = saved + h;
  const double up = f();
  variable = saved - h;
  const double down = f();
  variable = saved;
  return (up - down) / (2.0 * h);
}

}  // namespace nsbi::test
