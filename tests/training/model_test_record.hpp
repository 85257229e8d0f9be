#pragma once
// A complete ModelRecord for the model-file tests: random weights from initialise_parameters (one seed per
// member), random biases so that the bias paths matter, a non-trivial standardisation, history, diagnostics
// and provenance. Shared by test_model_file.cpp and the Python fixture.

#include <random>
#include <string>
#include <vector>

#include "nsbi/kernels/initialise.hpp"
#include "nsbi/training/model_file.hpp"
#include "test_helpers.hpp"

namespace nsbi::test {

inline training::ModelRecord model_test_record(std::vector<std::size_t> hidden,
                                               kernels::Activation activation, std::size_t n_members,
                                               unsigned seed, bool residual = false) {
  training::ModelRecord record;
  record.simulator = "gaussian2d";
  record.observable_names = {"x1", "x2", "m_jj"};
  record.parameter_names = {"mu2", "rho12"};
  record.parameter_min = {-1.0, -0.99};
  record.parameter_max = {1.0, 0.99};
  record.reference = "theta: {mu2: 0, rho12: 0}";
  record.loss = "alices";
  record.loss_alpha = 0.5;
  record.architecture = {5, std::move(hidden), activation, residual};
  record.standardization_mean = {0.25, -1.5, 91.0, 0.0, 0.01};
  record.standardization_scale = {1.5, 0.75, 4.0, 0.577, 0.57};
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  for (std::size_t k = 0; k < n_members; ++k) {
    const kernels::MlpArchitecture& arch = record.architecture;
    const FloatVector parameters = make_float_vector("parameters", arch.n_parameters());
    kernels::initialise_parameters(arch, seed + k, parameters);
    std::vector<float> flat = to_host(parameters);
    for (std::size_t l = 0; l < arch.n_layers(); ++l)
      for (std::size_t o = 0; o < arch.layer_outputs(l); ++o) flat[arch.bias_offset(l) + o] = uniform(engine);
    record.members.push_back(flat);
    const double m = static_cast<double>(k);
    record.history.push_back(
        {{100, 200, 300}, {1, 2, 3}, {0.69 - m, 0.6, 0.55}, {0.7, 0.61, 0.58 + m}, {1e-3, 5e-4, 2.5e-4}});
  }
  record.diagnostics["calibration"] = {{4, 2}, {0.1, 0.09, 0.3, 0.31, 0.5, 0.52, 0.9, 0.88}};
  record.diagnostics["expected_ratio"] = {{3}, {0.99, 1.0, 1.02}};
  record.config = "campaign: {name: test, seed: 7}\ntrain: {hidden: [64, 64]}\n";
  record.seed = 18446744073709551557ull;  // above 2^63: stored as int64, must come back unchanged
  record.provenance = {"0.1.0 (git abc123)", "2024-05-01T12:00:00Z", "node042", "nsbi train c.yaml", 2};
  return record;
}

}  // namespace nsbi::test
