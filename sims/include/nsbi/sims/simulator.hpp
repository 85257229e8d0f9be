#pragma once
// The simulator interface (docs/simulators.md): what a simulator declares about itself and the
// one thing it must do, fill x ~ p(x|theta) for a block of rows from each row's counter-based stream.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/kernels/views.hpp"

namespace nsbi::sims {

struct Parameter {
  std::string name;
  double min = 0;  // domain, inclusive
  double max = 0;
  std::vector<double> hypotheses;  // non-empty for a discrete hypothesis label (spin ∈ {0, 1})
  std::string doc;
  bool is_discrete() const { return !hypotheses.empty(); }
};

struct SimulatorInfo {
  std::string name;
  std::string doc;
  std::vector<Parameter> parameters;
  std::vector<std::string> observables;
  // The shape of one row's x when it is an array (an image: {channels, height, width}); empty for tabular
  // x, one value per name in `observables`. An array simulator names one observable (the whole array),
  // its rows hold the array flattened in row-major order, and datasets store x as [N, shape...].
  std::vector<std::size_t> observable_shape;
  // x is stored as float32 in datasets: only for simulators whose values float32 holds exactly (counts).
  bool x_float32 = false;
  bool has_exact_likelihood = false;  // log p(x|theta) available (for validation only)
  bool has_gold = false;              // joint log ratio and joint score available
  // Raised whenever the rows for a given (seed, row index, theta, options) change: part of a dataset's
  // identity, so that a file made by an earlier version is neither resumed with mixed rows nor kept.
  int stream_version = 1;

  std::size_t n_parameters() const { return parameters.size(); }
  /// Values in one row of x: the product of observable_shape, or the number of names for tabular x.
  std::size_t n_observables() const {
    if (observable_shape.empty()) return observables.size();
    std::size_t n = 1;
    for (const std::size_t extent : observable_shape) n *= extent;
    return n;
  }
  bool is_array() const { return !observable_shape.empty(); }
};

class Simulator {
 public:
  virtual ~Simulator() = default;
  virtual const SimulatorInfo& info() const = 0;

  /// x(i, :) ~ p(x | theta(i, :)) for every row i; row i draws from the stream
  /// (seed, Purpose::simulate, first_index + i), so a row's value does not depend on how rows are blocked.
  virtual void simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                        std::uint64_t first_index, std::uint64_t seed) const = 0;
  void simulate(const ConstMatrix& theta, const Matrix& x, std::uint64_t first_index,
                std::uint64_t seed) const {
    simulate(ExecutionSpace(), theta, x, first_index, seed);
  }

  /// Gold (docs/statistics.md, "Gold"): simulates rows exactly as simulate() does (the same x bits, from the
  /// same streams) and also writes what each row's latent history z_i gives:
  ///   log_r(i)    = log p(x_i, z_i | gold_theta(i, :)) − log p(x_i, z_i | theta0)
  ///   score(i, p) = ∂ log p(x_i, z_i | θ) / ∂θ_p at θ = theta(i, :)
  /// Only when info().has_gold (otherwise InternalError).
  virtual void simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                             const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                             const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const;

  /// out(i) = log p(x(i, :) | theta(i, :)); only when info().has_exact_likelihood (otherwise InternalError).
  virtual void log_likelihood(const ExecutionSpace& space, const ConstMatrix& theta, const ConstMatrix& x,
                              const Vector& out) const;
  void log_likelihood(const ConstMatrix& theta, const ConstMatrix& x, const Vector& out) const {
    log_likelihood(ExecutionSpace(), theta, x, out);
  }

  /// Why log p(x|theta_a)/p(x|theta_b) has no exact form here, or "" when it has one: for every pair when
  /// info().has_exact_likelihood; lepton has one between its spin hypotheses at the same mass
  /// (docs/simulators.md).
  virtual std::string exact_ratio_unavailable(const double* theta_a, const double* theta_b) const;
  /// out(i) = log p(x(i, :)|theta_a)/p(x(i, :)|theta_b), exactly; only when exact_ratio_unavailable is ""
  /// (otherwise InternalError). Used to validate learned ratios.
  virtual void exact_log_ratio(const ExecutionSpace& space, const double* theta_a, const double* theta_b,
                               const ConstMatrix& x, const Vector& out) const;
};

/// InternalError unless simulate_gold's arguments fit `info` and one another (theta0 given).
void check_gold_arguments(const SimulatorInfo& info, const ConstMatrix& theta, const Matrix& x,
                          const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                          const Matrix& score);

}  // namespace nsbi::sims
