#include "nsbi/sims/proposal.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/kernel_simulator.hpp"

namespace nsbi::sims {
namespace {

using Kind = ParameterProposal::Kind;

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::uniform:
      return "uniform";
    case Kind::fixed:
      return "fixed";
    case Kind::grid:
      return "grid";
    case Kind::choice:
      return "choice";
    case Kind::normal:
      return "normal";
    case Kind::log_uniform:
      return "log_uniform";
  }
  return "?";
}

std::string domain_text(const Parameter& p) {
  std::ostringstream out;
  if (p.is_discrete()) {
    out << "{";
    for (std::size_t i = 0; i < p.hypotheses.size(); ++i) out << (i ? ", " : "") << p.hypotheses[i];
    out << "}";
  } else {
    out << "[" << p.min << ", " << p.max << "]";
  }
  return out.str();
}

bool in_domain(const Parameter& p, double v) {
  if (p.is_discrete()) return std::find(p.hypotheses.begin(), p.hypotheses.end(), v) != p.hypotheses.end();
  return v >= p.min && v <= p.max;
}

// Values of a grid parameter: `points` values from min to max, both included.
KOKKOS_INLINE_FUNCTION double grid_value(const ParameterProposal& p, std::uint64_t k) {
  return p.points == 1 ? p.min : p.min + (p.max - p.min) * static_cast<double>(k) / (p.points - 1);
}

// In a function: an object constructed in a SIMD loop's body would be kept in memory, one copy per lane.
KOKKOS_FORCEINLINE_FUNCTION rng::UniformPair proposal_uniforms(std::uint64_t seed, std::uint64_t row,
                                                               int block) {
  return rng::StreamBlocks(seed, rng::Purpose::proposal, row).uniforms(static_cast<std::uint32_t>(block));
}

}  // namespace

KOKKOS_FUNCTION void Proposal::Kernel::operator()(std::size_t chunk) const {
  constexpr std::size_t chunk_rows = rows_per_chunk<ExecutionSpace>;
  const std::size_t begin = chunk * chunk_rows;
  const std::size_t count = begin + chunk_rows < theta.extent(0) ? chunk_rows : theta.extent(0) - begin;
  // All the rows' uniforms first, two per Philox block, for full chunks (rows past the end are not stored).
  double u[max_parameters][chunk_rows];
  for (int block = 0; 2 * block < n_uniforms; ++block) {
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < chunk_rows; ++j) {
      const rng::UniformPair pair = proposal_uniforms(seed, first_index + begin + j, block);
      u[2 * block][j] = pair.first;
      u[2 * block + 1][j] = pair.second;
    }
  }
  for (int p = 0; p < n_parameters; ++p) {
    const ParameterProposal& q = parameters[p];
    const double* up = u[uniform_slot[p] < 0 ? 0 : uniform_slot[p]];
    switch (q.kind) {
      case Kind::uniform:
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < count; ++j) theta(begin + j, p) = q.min + (q.max - q.min) * up[j];
        break;
      case Kind::fixed:
        for (std::size_t j = 0; j < count; ++j) theta(begin + j, p) = q.value;
        break;
      case Kind::choice:
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < count; ++j) {
          const int k = static_cast<int>(up[j] * q.n_values);
          theta(begin + j, p) = q.values[k < q.n_values ? k : q.n_values - 1];
        }
        break;
      case Kind::grid:
        for (std::size_t j = 0; j < count; ++j) {
          const std::uint64_t row = first_index + begin + j;
          theta(begin + j, p) =
              grid_value(q, row % grid_size / grid_stride[p] % static_cast<std::uint64_t>(q.points));
        }
        break;
      case Kind::normal: {
        // No SIMD: the inversion calls the C library's erf and erfc (core/normal.hpp).
        const TruncatedNormal normal(q);
        for (std::size_t j = 0; j < count; ++j) theta(begin + j, p) = normal.draw(q, up[j]);
        break;
      }
      case Kind::log_uniform: {
        // exp(log min + (log max − log min) u), clamped to the box against rounding.
        const double log_min = kernel_math::log(q.min);
        const double log_range = kernel_math::log(q.max) - log_min;
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < count; ++j) {
          const double v = kernel_math::exp(log_min + log_range * up[j]);
          theta(begin + j, p) = v < q.min ? q.min : (v > q.max ? q.max : v);
        }
        break;
      }
    }
  }
}

Proposal::Proposal(const SimulatorInfo& simulator, std::vector<ParameterProposal> parameters)
    : parameters_(std::move(parameters)) {
  NSBI_ASSERT(parameters_.size() == simulator.n_parameters(), "one proposal per parameter");
  NSBI_ASSERT(parameters_.size() <= static_cast<std::size_t>(max_parameters), "too many parameters");
  for (const auto& p : simulator.parameters) names_.push_back(p.name);
  for (const auto& q : parameters_) {
    if (q.kind != Kind::grid) continue;
    NSBI_ASSERT(q.points >= 1, "grid needs points");
    grid_size_ *= static_cast<std::uint64_t>(q.points);
  }
}

Proposal Proposal::default_for(const SimulatorInfo& simulator) {
  if (simulator.parameters.size() > static_cast<std::size_t>(max_parameters))
    throw ConfigError("simulator '" + simulator.name + "' has " +
                      std::to_string(simulator.parameters.size()) +
                      " parameters; nsbi's proposals draw at most " + std::to_string(max_parameters));
  std::vector<ParameterProposal> out;
  for (const auto& p : simulator.parameters) {
    ParameterProposal q;
    if (p.is_discrete()) {
      q.kind = Kind::choice;
      q.n_values = static_cast<int>(p.hypotheses.size());
      std::copy(p.hypotheses.begin(), p.hypotheses.end(), q.values);
    } else {
      q.kind = Kind::uniform;
      q.min = p.min;
      q.max = p.max;
    }
    out.push_back(q);
  }
  return Proposal(simulator, std::move(out));
}

Proposal Proposal::fixed_point_from_config(const config::Config& config, const std::string& section,
                                           const SimulatorInfo& simulator) {
  std::vector<ParameterProposal> out;
  for (const auto& p : simulator.parameters) {
    const std::string key = section + "." + p.name;
    if (!config.has(key))
      config.fail(section,
                  "needs a value for every parameter of " + simulator.name + "; '" + p.name + "' is missing");
    ParameterProposal q;
    q.kind = Kind::fixed;
    q.value = config.get<double>(key);
    if (!in_domain(p, q.value))
      config.fail(key, "value " + config::number_node(q.value).as<std::string>() + " is outside the domain " +
                           domain_text(p) + " of '" + p.name + "'");
    out.push_back(q);
  }
  return Proposal(simulator, std::move(out));
}

std::vector<std::string> Proposal::all_kinds() {
  return {"uniform", "fixed", "grid", "choice", "normal", "log_uniform"};
}

void Proposal::declare(config::Schema& schema, const std::string& section, const SimulatorInfo& simulator,
                       const std::vector<std::string>& kinds, bool kind_default) {
  using config::Key;
  using config::Type;
  for (const auto& p : simulator.parameters) {
    const std::string base = section + "." + p.name + ".";
    const std::string domain = " (" + simulator.name + " domain " + domain_text(p) + ")";
    Key kind(base + "kind", Type::string, "distribution of " + p.name);
    if (kind_default)
      kind.with_default(p.is_discrete() ? "choice" : "uniform");
    else
      kind.as_optional();
    schema.add(kind.one_of(kinds));
    schema.add(
        Key(base + "min", Type::number, "lower end (normal: of its truncation)" + domain).as_optional());
    schema.add(
        Key(base + "max", Type::number, "upper end (normal: of its truncation)" + domain).as_optional());
    schema.add(Key(base + "mean", Type::number, "the mean of normal").as_optional());
    schema.add(Key(base + "sd", Type::number, "the standard deviation of normal, > 0").as_optional());
    schema.add(Key(base + "value", Type::number, "the value for fixed" + domain).as_optional());
    schema.add(Key(base + "values", Type::number_list, "the hypotheses for choice" + domain).as_optional());
    if (std::find(kinds.begin(), kinds.end(), "grid") != kinds.end())
      schema.add(Key(base + "points", Type::integer, "grid points, ends included").minimum(2).as_optional());
  }
}

ParameterProposal Proposal::parameter_from_config(const config::Config& config, const std::string& base,
                                                  const Parameter& p, const SimulatorInfo& simulator) {
  ParameterProposal q;
  if (!config.has(base + ".kind")) config.fail(base, "needs 'kind'");
  const std::string kind = config.get<std::string>(base + ".kind");
  const auto needs = [&](const char* key) {
    if (!config.has(base + "." + key)) config.fail(base, "kind '" + kind + "' needs '" + key + "'");
  };
  const auto refuse_others = [&](std::vector<std::string> allowed) {
    allowed.push_back("kind");
    for (const auto& key : config.children(base))
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        config.fail(base + "." + key, "has no meaning for kind '" + kind + "'");
  };
  const auto check_in_domain = [&](const std::string& key, double v) {
    if (!in_domain(p, v)) {
      std::ostringstream what;
      what << v << " is outside the domain of " << simulator.name << "'s parameter " << p.name << ", "
           << domain_text(p);
      config.fail(key, what.str());
    }
  };
  if (kind == "uniform" || kind == "grid" || kind == "normal" || kind == "log_uniform") {
    q.kind = kind == "uniform"  ? Kind::uniform
             : kind == "grid"   ? Kind::grid
             : kind == "normal" ? Kind::normal
                                : Kind::log_uniform;
    if (p.is_discrete())
      config.fail(base + ".kind", p.name + " is a discrete hypothesis: use fixed or choice");
    q.min = config.has(base + ".min") ? config.get<double>(base + ".min") : p.min;
    q.max = config.has(base + ".max") ? config.get<double>(base + ".max") : p.max;
    check_in_domain(base + ".min", q.min);
    check_in_domain(base + ".max", q.max);
    if (!(q.min < q.max)) config.fail(base + ".max", "must be greater than min");
    if (q.kind == Kind::grid) {
      needs("points");
      q.points = static_cast<int>(config.get<std::int64_t>(base + ".points"));
      refuse_others({"min", "max", "points"});
    } else if (q.kind == Kind::normal) {
      needs("mean");
      needs("sd");
      q.mean = config.get<double>(base + ".mean");
      q.sd = config.get<double>(base + ".sd");
      if (!(q.sd > 0)) config.fail(base + ".sd", "must be > 0");
      // The box's nearest end, in standard deviations from the mean.
      const double distance = std::max({(q.min - q.mean) / q.sd, (q.mean - q.max) / q.sd, 0.0});
      if (!(distance <= ParameterProposal::max_normal_distance)) {
        std::ostringstream what;
        what << "the box [" << q.min << ", " << q.max << "] lies " << distance
             << " standard deviations from the mean: at most " << ParameterProposal::max_normal_distance;
        config.fail(base + ".mean", what.str());
      }
      refuse_others({"min", "max", "mean", "sd"});
    } else {
      if (q.kind == Kind::log_uniform && !(q.min > 0))
        config.fail(base + (config.has(base + ".min") ? ".min" : ""),
                    config.has(base + ".min")
                        ? "must be > 0 for kind 'log_uniform'"
                        : "kind 'log_uniform' needs 'min' > 0 (the domain's lower end, " +
                              config::number_node(p.min).as<std::string>() + ", is not)");
      refuse_others({"min", "max"});
    }
  } else if (kind == "fixed") {
    q.kind = Kind::fixed;
    needs("value");
    q.value = config.get<double>(base + ".value");
    check_in_domain(base + ".value", q.value);
    refuse_others({"value"});
  } else {
    q.kind = Kind::choice;
    std::vector<double> values =
        config.has(base + ".values") ? config.get<std::vector<double>>(base + ".values") : p.hypotheses;
    if (values.empty()) config.fail(base, "kind 'choice' needs 'values'");
    if (values.size() > static_cast<std::size_t>(ParameterProposal::max_choices))
      config.fail(base + ".values", "at most " + std::to_string(ParameterProposal::max_choices) + " values");
    for (double v : values) check_in_domain(base + ".values", v);
    q.n_values = static_cast<int>(values.size());
    std::copy(values.begin(), values.end(), q.values);
    refuse_others({"values"});
  }
  return q;
}

Proposal Proposal::from_config(const config::Config& config, const std::string& section,
                               const SimulatorInfo& simulator) {
  std::vector<ParameterProposal> out = default_for(simulator).parameters_;
  for (std::size_t i = 0; i < simulator.parameters.size(); ++i) {
    const std::string base = section + "." + simulator.parameters[i].name;
    if (config.has(base)) out[i] = parameter_from_config(config, base, simulator.parameters[i], simulator);
  }
  return Proposal(simulator, std::move(out));
}

Proposal Proposal::from_yaml(const std::string& yaml_text, const std::string& file,
                             const SimulatorInfo& simulator) {
  YAML::Node root;
  try {
    root["proposal"] = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ": the proposal is not YAML: " + e.what());
  }
  YAML::Emitter text;
  text << root;
  config::Config config = config::Config::parse(text.c_str(), file);
  config::Schema schema;
  declare(schema, "proposal", simulator);
  config.validate(schema);
  return from_config(config, "proposal", simulator);
}

YAML::Node Proposal::to_yaml() const {
  YAML::Node node(YAML::NodeType::Map);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const ParameterProposal& q = parameters_[i];
    YAML::Node entry(YAML::NodeType::Map);
    entry["kind"] = kind_name(q.kind);
    switch (q.kind) {
      case Kind::grid:
        entry["points"] = q.points;
        [[fallthrough]];
      case Kind::uniform:
      case Kind::log_uniform:
        entry["min"] = config::number_node(q.min);
        entry["max"] = config::number_node(q.max);
        break;
      case Kind::normal:
        entry["mean"] = config::number_node(q.mean);
        entry["sd"] = config::number_node(q.sd);
        entry["min"] = config::number_node(q.min);
        entry["max"] = config::number_node(q.max);
        break;
      case Kind::fixed:
        entry["value"] = config::number_node(q.value);
        break;
      case Kind::choice:
        for (int k = 0; k < q.n_values; ++k) entry["values"].push_back(config::number_node(q.values[k]));
        entry["values"].SetStyle(YAML::EmitterStyle::Flow);
        break;
    }
    entry.SetStyle(YAML::EmitterStyle::Flow);
    node[names_[i]] = entry;
  }
  return node;
}

void Proposal::sample(const ExecutionSpace& space, const Matrix& theta, std::uint64_t first_index,
                      std::uint64_t seed) const {
  NSBI_ASSERT(theta.extent(1) == parameters_.size(), "theta has the wrong number of columns");
  Kernel kernel{{}, {}, {}, static_cast<int>(parameters_.size()), 0, grid_size_, theta, first_index, seed};
  // Grid parameters: the last varies fastest (row % grid_size is a mixed-radix number, last digit first).
  std::uint64_t stride = 1;
  for (int p = static_cast<int>(parameters_.size()) - 1; p >= 0; --p) {
    kernel.parameters[p] = parameters_[p];
    kernel.grid_stride[p] = stride;
    if (parameters_[p].kind == Kind::grid) stride *= static_cast<std::uint64_t>(parameters_[p].points);
  }
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    const Kind kind = parameters_[p].kind;
    const bool draws = kind != Kind::fixed && kind != Kind::grid;
    kernel.uniform_slot[p] = draws ? kernel.n_uniforms++ : -1;
  }
  Kokkos::parallel_for(
      "nsbi::sims::Proposal::sample",
      Kokkos::RangePolicy<ExecutionSpace>(space, 0, n_chunks<ExecutionSpace>(theta.extent(0))), kernel);
}

}  // namespace nsbi::sims
