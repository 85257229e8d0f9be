#pragma once
// A campaign: one YAML file (docs/config.md) read, checked against the schema of every stage,
// with the command line's --set/--output applied. Built identically on every rank.

#include <memory>
#include <string>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

/// What the command line asked for.
struct Invocation {
  std::string command;
  std::string config_file;
  std::vector<std::string> overrides;  // "key.path=value", in order (--output DIR is campaign.dir=DIR)
  bool force = false;
  bool allow_extrapolation = false;  // θ grids beyond the model's training range
  bool verbose = false;
  std::vector<std::string> argv;
};

/// The schema of a campaign file. Which keys exist under `simulator` and `simulate.proposal` depends on the
/// simulator, so `config` is the raw file: its simulator.name is checked first.
config::Schema campaign_schema(config::Config& config);

/// Checks `config` against campaign_schema() and what the schema cannot express (the stages of `pipeline`
/// each once, in the order of pipeline_stages()) and fills in the defaults: ConfigError on any problem.
void validate_campaign(config::Config& config);

/// The simulator of a validated config, with its options (simulator.<option>).
std::unique_ptr<sims::Simulator> make_simulator(const config::Config& config);

/// The stages a pipeline may list, in the order data flows through them.
const std::vector<std::string>& pipeline_stages();

struct Campaign {
  /// From a config already validated against campaign_schema().
  Campaign(config::Config validated, Provenance run);

  config::Config config;
  std::string name;
  std::uint64_t seed = 0;
  std::string dir;  // where outputs go
  Provenance provenance;

  /// Loads, overrides and validates the config file, and checks that the stages invocation.command runs
  /// fit in the memory of a rank (memory_bounds.hpp): ConfigError on any problem. Collective over
  /// MPI_COMM_WORLD when mpi_ranks > 1 (every rank calls it).
  static Campaign load(const Invocation& invocation, int mpi_ranks);
  /// A path inside the campaign directory (absolute paths are kept as they are).
  std::string output_path(const std::string& file) const;
};

}  // namespace nsbi::jobs
