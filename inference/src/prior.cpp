#include "nsbi/inference/prior.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"

namespace nsbi::inference {
namespace {

using Kind = sims::ParameterProposal::Kind;

constexpr double log_sqrt_two_pi = 0.91893853320467274178;

// What log π subtracts on the support of one parameter (a normal's log of σ √(2π) and of its box's mass).
double log_normaliser(const sims::ParameterProposal& q) {
  switch (q.kind) {
    case Kind::uniform:
      return std::log(q.max - q.min);
    case Kind::log_uniform:
      return std::log(std::log(q.max) - std::log(q.min));
    case Kind::normal: {
      const sims::TruncatedNormal normal(q);
      return std::log(q.sd) + log_sqrt_two_pi + std::log(normal.cdf_high - normal.cdf_low);
    }
    case Kind::fixed:
      return 0;
    case Kind::choice:
      return std::log(static_cast<double>(q.n_values));
    case Kind::grid:
      break;
  }
  NSBI_ASSERT(false, "a prior has no grid parameter");
  return 0;
}

}  // namespace

Prior::Prior(sims::Proposal distribution) : distribution_(std::move(distribution)) {
  for (const auto& q : distribution_.parameters()) log_normaliser_.push_back(log_normaliser(q));
}

Prior::Prior(const sims::Proposal& proposal, const sims::SimulatorInfo& simulator)
    : Prior([&] {
        std::vector<sims::ParameterProposal> parameters = proposal.parameters();
        for (auto& q : parameters)
          if (q.kind == Kind::grid) q.kind = Kind::uniform;  // same min and max
        return sims::Proposal(simulator, std::move(parameters));
      }()) {}

void Prior::declare(config::Schema& schema, const std::string& section,
                    const sims::SimulatorInfo& simulator) {
  sims::Proposal::declare(schema, section, simulator, {"uniform", "normal", "log_uniform", "fixed", "choice"},
                          /*kind_default=*/false);
}

Prior Prior::from_config(const config::Config& config, const std::string& section,
                         const sims::SimulatorInfo& simulator, const Prior& defaults) {
  std::vector<sims::ParameterProposal> parameters = defaults.distribution_.parameters();
  for (std::size_t p = 0; p < simulator.parameters.size(); ++p) {
    const std::string base = section + "." + simulator.parameters[p].name;
    if (config.has(base))
      parameters[p] = sims::Proposal::parameter_from_config(config, base, simulator.parameters[p], simulator);
  }
  return Prior(sims::Proposal(simulator, std::move(parameters)));
}

double Prior::log_density(const double* theta) const {
  double sum = 0;
  for (std::size_t p = 0; p < n_parameters(); ++p) {
    const sims::ParameterProposal& q = distribution_.parameters()[p];
    const double v = theta[p];
    if (q.kind == Kind::choice) {
      const auto matches = std::count(q.values, q.values + q.n_values, v);
      if (matches == 0) return -HUGE_VAL;
      sum += std::log(static_cast<double>(matches)) - log_normaliser_[p];
      continue;
    }
    if (!(v >= support_min(p) && v <= support_max(p))) return -HUGE_VAL;
    if (q.kind == Kind::normal) {
      const double z = (v - q.mean) / q.sd;
      sum -= 0.5 * z * z;
    } else if (q.kind == Kind::log_uniform) {
      sum -= std::log(v);
    }
    sum -= log_normaliser_[p];
  }
  return sum;
}

double Prior::log_density(const std::vector<double>& theta) const {
  NSBI_ASSERT(theta.size() == n_parameters(), "a prior over " + std::to_string(n_parameters()) +
                                                  " parameters evaluated at " + std::to_string(theta.size()));
  return log_density(theta.data());
}

double Prior::support_min(std::size_t p) const {
  const sims::ParameterProposal& q = distribution_.parameters()[p];
  if (q.kind == Kind::fixed) return q.value;
  if (q.kind == Kind::choice) return *std::min_element(q.values, q.values + q.n_values);
  return q.min;
}

double Prior::support_max(std::size_t p) const {
  const sims::ParameterProposal& q = distribution_.parameters()[p];
  if (q.kind == Kind::fixed) return q.value;
  if (q.kind == Kind::choice) return *std::max_element(q.values, q.values + q.n_values);
  return q.max;
}

std::vector<double> Prior::log_density_on(const Grid& grid) const {
  NSBI_ASSERT(grid.n_parameters() == n_parameters(), "a grid over " + std::to_string(grid.n_parameters()) +
                                                         " parameters, a prior over " +
                                                         std::to_string(n_parameters()));
  std::vector<double> out(grid.size());
  std::vector<double> theta(n_parameters());
  for (std::size_t k = 0; k < out.size(); ++k) {
    grid.point(k, theta.data());
    for (std::size_t p = 0; p < n_parameters(); ++p) {
      const Kind kind = distribution_.parameters()[p].kind;
      if (kind == Kind::fixed || kind == Kind::choice) continue;
      const double slack = 1e-12 * (support_max(p) - support_min(p));
      if (theta[p] < support_min(p) && theta[p] >= support_min(p) - slack) theta[p] = support_min(p);
      if (theta[p] > support_max(p) && theta[p] <= support_max(p) + slack) theta[p] = support_max(p);
    }
    out[k] = log_density(theta.data());
  }
  return out;
}

void Prior::sample(const Matrix& theta, std::uint64_t first_index, std::uint64_t seed) const {
  distribution_.sample(theta, first_index, seed);
}

std::string Prior::yaml() const {
  YAML::Emitter out;
  out << distribution_.to_yaml();
  return out.c_str();
}

}  // namespace nsbi::inference
