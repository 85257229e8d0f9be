#pragma once
// Proposals pi(theta) for amortized training sets (docs/config.md, `simulate.proposal`): per parameter a
// uniform box, a fixed point, a grid, or a choice among hypotheses. Row i of a dataset draws theta from the
// stream (seed, Purpose::proposal, i); grid parameters cycle through their product grid with the row index,
// so a grid dataset has equally many rows at every point.

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/kernels/views.hpp"
#include "nsbi/sims/simulator.hpp"

namespace YAML {
class Node;
}
namespace nsbi::config {
class Config;
class Schema;
}  // namespace nsbi::config

namespace nsbi::sims {

struct ParameterProposal {
  enum class Kind : int { uniform, fixed, grid, choice };
  static constexpr int max_choices = 16;

  Kind kind = Kind::uniform;
  double min = 0;  // uniform and grid: the interval (grid: both ends included)
  double max = 0;
  double value = 0;  // fixed
  int points = 0;    // grid
  int n_values = 0;  // choice: drawn with equal probability
  double values[max_choices] = {};
};

class Proposal {
 public:
  static constexpr int max_parameters = 8;

  /// One work item per chunk of rows (sims::rows_per_chunk). The uniform and choice parameters take the
  /// uniforms of the row's stream in parameter order, two per Philox block.
  struct Kernel {
    Kokkos::Array<ParameterProposal, max_parameters> parameters;
    Kokkos::Array<int, max_parameters> uniform_slot;           // which uniform of the row; -1: none
    Kokkos::Array<std::uint64_t, max_parameters> grid_stride;  // rows per step of a grid parameter
    int n_parameters;
    int n_uniforms;
    std::uint64_t grid_size;  // product of the grid parameters' points (1 when none)
    Matrix theta;
    std::uint64_t first_index;
    std::uint64_t seed;
    KOKKOS_FUNCTION void operator()(std::size_t chunk) const;
  };

  Proposal(const SimulatorInfo& simulator, std::vector<ParameterProposal> parameters);

  /// Declares the keys of a proposal section for this simulator: <section>.<parameter>.kind (uniform,
  /// fixed, grid, choice; default uniform, or choice for a discrete parameter), .min, .max, .value, .values,
  /// .points (optional; which ones a kind needs is checked by from_config).
  static void declare(config::Schema& schema, const std::string& section, const SimulatorInfo& simulator);

  /// Reads the proposal section (e.g. "simulate.proposal") of a validated config; parameters it does not
  /// mention get the default: uniform over the simulator's domain, or every hypothesis of a discrete one.
  /// Errors (unknown parameter or key, bounds outside the simulator's domain, ...) name file, line and key.
  static Proposal from_config(const config::Config& config, const std::string& section,
                              const SimulatorInfo& simulator);
  static Proposal default_for(const SimulatorInfo& simulator);
  /// Every row at the point theta (one value per parameter, each in the simulator's domain): the reference
  /// θ0 of a classifier. Reads <section>.<parameter> of a validated config, every parameter required.
  static Proposal fixed_point_from_config(const config::Config& config, const std::string& section,
                                          const SimulatorInfo& simulator);

  /// The proposal written out in full, one entry per parameter: stored in the resolved config.
  YAML::Node to_yaml() const;

  const std::vector<ParameterProposal>& parameters() const { return parameters_; }
  std::uint64_t grid_size() const { return grid_size_; }

  /// theta(i, :) for rows first_index + i.
  void sample(const ExecutionSpace& space, const Matrix& theta, std::uint64_t first_index,
              std::uint64_t seed) const;
  void sample(const Matrix& theta, std::uint64_t first_index, std::uint64_t seed) const {
    sample(ExecutionSpace(), theta, first_index, seed);
  }

 private:
  std::vector<std::string> names_;
  std::vector<ParameterProposal> parameters_;
  std::uint64_t grid_size_ = 1;
};

}  // namespace nsbi::sims
