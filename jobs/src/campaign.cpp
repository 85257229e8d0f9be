#include "nsbi/jobs/campaign.hpp"

#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
config::Schema campaign_schema(config::Config& config) {
  using config::Key;
  using config::Type;
  config::Schema schema;
  schema.add(Key("campaign.name", Type::string, "name of the campaign, recorded in every output")
                 .with_default("nsbi"));
  // Seeds stay below 2^53 so that they are exact in the JSON summaries too.
  schema.add(Key("campaign.seed", Type::integer, "seed of every random stream (same seed, same bits)")
                 .with_default("1")
                 .minimum(0)
                 .maximum(9007199254740992.0));
  schema.add(Key("campaign.dir", Type::string, "directory for the outputs; --output overrides it")
                 .with_default("nsbi-output"));

  schema.add(Key("simulator.name", Type::string, "built-in simulator (docs/simulators.md)")
                 .one_of(sims::simulator_names()));

  schema.add(Key("simulate.n_samples", Type::integer, "rows (theta, x) to simulate")
                 .with_default("100000")
                 .minimum(1));
  schema.add(Key("simulate.block_size", Type::integer,
                 "rows per block: the unit of work, of writing and of resuming")
                 .with_default("65536")
                 .minimum(1)
                 .maximum(1 << 24));
  schema.add(
      Key("simulate.output", Type::string, "dataset file, inside campaign.dir").with_default("dataset.h5"));

  schema.add(Key("pipeline", Type::string_list, "stages `nsbi run` executes, in order")
                 .with_default("[simulate]")
                 .one_of({"simulate"}));

  // The simulator decides the proposal's keys: check its name first (with a suggestion when misspelt).
  config.validate_key(schema, "simulator.name");
  const auto sim = sims::make_simulator(config.get<std::string>("simulator.name"));
  sims::Proposal::declare(schema, "simulate.proposal", sim->info());
  return schema;
}

Campaign::Campaign(config::Config validated, Provenance run)
    : config(std::move(validated)),
      name(config.get<std::string>("campaign.name")),
      seed(static_cast<std::uint64_t>(config.get<std::int64_t>("campaign.seed"))),
      dir(config.get<std::string>("campaign.dir")),
      provenance(std::move(run)) {}

Campaign Campaign::load(const Invocation& invocation, int mpi_ranks) {
  config::Config config = config::Config::load(invocation.config_file, invocation.overrides);
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance(invocation.argv, mpi_ranks));
}

std::string Campaign::output_path(const std::string& file) const {
  if (!file.empty() && file.front() == '/') return file;
  return dir + "/" + file;
}

}  // namespace nsbi::jobs
