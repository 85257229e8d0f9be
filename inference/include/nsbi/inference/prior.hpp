#pragma once
// The prior of Bayesian inference (docs/statistics.md, "Priors"; docs/config.md, `prior`): independent
// distributions per parameter, of the kinds a proposal has (sims/proposal.hpp) less `grid`: uniform,
// normal (truncated to a box), log_uniform, fixed and choice. Its log density weights the grid posterior of
// `nsbi infer`; by default it is the training proposal the model records.

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/inference/grid.hpp"
#include "nsbi/kernels/views.hpp"
#include "nsbi/sims/proposal.hpp"

namespace nsbi::config {
class Config;
class Schema;
}  // namespace nsbi::config

namespace nsbi::inference {

class Prior {
 public:
  /// The proposal's distributions as a prior; a grid parameter becomes uniform over the grid's range.
  explicit Prior(const sims::Proposal& proposal, const sims::SimulatorInfo& simulator);

  /// Declares <section>.<parameter>.kind (uniform, normal, log_uniform, fixed, choice; no default) and the
  /// keys of sims::Proposal::declare.
  static void declare(config::Schema& schema, const std::string& section,
                      const sims::SimulatorInfo& simulator);
  /// The prior of a validated config's <section>: each parameter it names as a proposal entry is (checked
  /// alike, ConfigError naming the key), the others as in `defaults`.
  static Prior from_config(const config::Config& config, const std::string& section,
                           const sims::SimulatorInfo& simulator, const Prior& defaults);

  std::size_t n_parameters() const { return distribution_.parameters().size(); }
  const std::vector<std::string>& names() const { return distribution_.names(); }

  /// log π(θ) for θ [n_parameters()], the sum over the parameters; −inf outside the support. A fixed or
  /// choice parameter counts its probability (0 at the value of fixed; log(1/n) per value of choice).
  double log_density(const double* theta) const;
  double log_density(const std::vector<double>& theta) const;

  /// The support of parameter p: [min, max] of uniform, normal and log_uniform, the value of fixed, the
  /// smallest and largest value of choice.
  double support_min(std::size_t p) const;
  double support_max(std::size_t p) const;

  /// log π at every point of `grid` (axes in parameter order). A point outside a parameter's support box by
  /// at most 1e-12 of the box's width (the rounding of an axis made from min, max and points) is taken at
  /// the box's end.
  std::vector<double> log_density_on(const Grid& grid) const;

  /// theta(i, :) ~ π for rows first_index + i: as sims::Proposal::sample, from the streams (seed,
  /// rng::Purpose::proposal, first_index + i), one uniform per drawn parameter.
  void sample(const Matrix& theta, std::uint64_t first_index, std::uint64_t seed) const;

  /// One entry per parameter, as a proposal writes them (`m: {kind: normal, mean: 700, sd: 50, min: 400,
  /// max: 1000}`): what results.h5 records.
  std::string yaml() const;

 private:
  explicit Prior(sims::Proposal distribution);

  sims::Proposal distribution_;
  std::vector<double> log_normaliser_;  // per parameter: what log π subtracts on the support
};

}  // namespace nsbi::inference
