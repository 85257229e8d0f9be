#pragma once
// Proposals pi(theta) for amortized training sets (docs/config.md, `simulate.proposal`): per parameter a
// uniform box, a truncated normal, a log-uniform box, a fixed point, a grid, or a choice among hypotheses.
// Row i of a dataset draws theta from the stream (seed, Purpose::proposal, i); grid parameters cycle through
// their product grid with the row index, so a grid dataset has equally many rows at every point.

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/core/normal.hpp"
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
  enum class Kind : int { uniform, fixed, grid, choice, normal, log_uniform };
  static constexpr int max_choices = 16;
  /// A normal's box may lie at most this many standard deviations from its mean (its mass stays a normal
  /// double, so that inversion keeps its precision).
  static constexpr double max_normal_distance = 30;

  Kind kind = Kind::uniform;
  double min = 0;    // uniform, grid, log_uniform: the interval (grid: both ends included); normal: the box
  double max = 0;    //   it is truncated to
  double mean = 0;   // normal
  double sd = 0;     // normal, > 0
  double value = 0;  // fixed
  int points = 0;    // grid
  int n_values = 0;  // choice: drawn with equal probability
  double values[max_choices] = {};
};

/// A normal(mean, sd) truncated to [min, max], in standard units z = (θ − mean) / sd and mirrored (z → −z)
/// when the box's centre lies above the mean, so that its lower end is in the lower tail, where Φ keeps its
/// relative precision.
struct TruncatedNormal {
  double sign;  // 1, or −1 when mirrored
  double low;   // the (mirrored) box in standard units: low ≤ high, low + high ≤ 0
  double high;
  double cdf_low;  // Φ(low), Φ(high)
  double cdf_high;

  KOKKOS_INLINE_FUNCTION explicit TruncatedNormal(const ParameterProposal& q) {
    const double a = (q.min - q.mean) / q.sd;
    const double b = (q.max - q.mean) / q.sd;
    sign = a + b > 0 ? -1.0 : 1.0;
    low = a + b > 0 ? -b : a;
    high = a + b > 0 ? -a : b;
    cdf_low = normal::cdf(low);
    cdf_high = normal::cdf(high);
  }

  /// The draw of the uniform u in (0, 1), by inversion: z = Φ⁻¹(Φ(low) + u (Φ(high) − Φ(low))), clamped to
  /// [low, high] (p rounding to 1 gives high), then θ = mean + sign · sd · z, clamped to [min, max].
  KOKKOS_INLINE_FUNCTION double draw(const ParameterProposal& q, double u) const {
    const double p = cdf_low + u * (cdf_high - cdf_low);
    double z = p < 1.0 ? normal::quantile(p) : high;
    z = z < low ? low : (z > high ? high : z);
    const double theta = q.mean + sign * q.sd * z;
    return theta < q.min ? q.min : (theta > q.max ? q.max : theta);
  }
};

class Proposal {
 public:
  /// Parameters a proposal can draw (the kernel holds them in fixed arrays); a simulator with more is a
  /// ConfigError.
  static constexpr int max_parameters = 32;

  /// One work item per chunk of rows (sims::rows_per_chunk). The uniform, choice, normal and log_uniform
  /// parameters take the uniforms of the row's stream in parameter order, two per Philox block: each one
  /// uniform u, mapped by the inverse of its CDF (normal: truncated_normal below).
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

  /// Declares the keys of a proposal section for this simulator: <section>.<parameter>.kind (one of `kinds`;
  /// with `kind_default`, uniform or choice for a discrete parameter, else optional), .min, .max, .mean,
  /// .sd, .value, .values, and .points when `kinds` has grid (optional; which ones a kind needs is checked by
  /// parameter_from_config).
  static void declare(config::Schema& schema, const std::string& section, const SimulatorInfo& simulator,
                      const std::vector<std::string>& kinds = all_kinds(), bool kind_default = true);
  /// uniform, fixed, grid, choice, normal, log_uniform.
  static std::vector<std::string> all_kinds();

  /// Reads the proposal section (e.g. "simulate.proposal") of a validated config; parameters it does not
  /// mention get the default: uniform over the simulator's domain, or every hypothesis of a discrete one.
  /// Errors (unknown parameter or key, bounds outside the simulator's domain, ...) name file, line and key.
  static Proposal from_config(const config::Config& config, const std::string& section,
                              const SimulatorInfo& simulator);
  static Proposal default_for(const SimulatorInfo& simulator);
  /// The entry <base> (e.g. "simulate.proposal.m", holding `kind`) for `parameter` of `simulator`, checked:
  /// the keys its kind needs and no others, bounds inside the domain, sd > 0, ... (ConfigError naming the
  /// key).
  static ParameterProposal parameter_from_config(const config::Config& config, const std::string& base,
                                                 const Parameter& parameter, const SimulatorInfo& simulator);
  /// A proposal as to_yaml wrote it (a dataset's `prior` attribute), checked like a config section; `file`
  /// names its origin in errors.
  static Proposal from_yaml(const std::string& yaml_text, const std::string& file,
                            const SimulatorInfo& simulator);
  /// Every row at the point theta (one value per parameter, each in the simulator's domain): the reference
  /// θ0 of a classifier. Reads <section>.<parameter> of a validated config, every parameter required.
  static Proposal fixed_point_from_config(const config::Config& config, const std::string& section,
                                          const SimulatorInfo& simulator);

  /// The proposal written out in full, one entry per parameter: stored in the resolved config.
  YAML::Node to_yaml() const;

  const std::vector<ParameterProposal>& parameters() const { return parameters_; }
  const std::vector<std::string>& names() const { return names_; }
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
