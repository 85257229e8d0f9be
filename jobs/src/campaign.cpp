#include "nsbi/jobs/campaign.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "nsbi/jobs/campaign_outputs.hpp"
#include "nsbi/jobs/inference_schema.hpp"
#include "nsbi/jobs/memory_bounds.hpp"
#include "nsbi/jobs/slurm.hpp"
#include "nsbi/jobs/train_schema.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

// What the schema cannot say about `pipeline`: each stage reads what the stages before it wrote, so they run
// in that order, each once (any other order would fail midway, after the work of the stages before).
void check_pipeline(const config::Config& config) {
  const auto pipeline = config.get<std::vector<std::string>>("pipeline");
  const std::vector<std::string>& stages = pipeline_stages();
  if (pipeline.empty()) config.fail("pipeline", "list at least one stage");
  const auto position = [&](const std::string& stage) {
    return std::find(stages.begin(), stages.end(), stage);
  };
  for (std::size_t i = 1; i < pipeline.size(); ++i) {
    if (position(pipeline[i]) > position(pipeline[i - 1])) continue;
    const std::string path = "pipeline[" + std::to_string(i) + "]";
    if (pipeline[i] == pipeline[i - 1]) config.fail(path, "stage '" + pipeline[i] + "' is listed twice");
    std::string order;
    for (const std::string& stage : stages) order += (order.empty() ? "" : ", ") + stage;
    config.fail(path, "stage '" + pipeline[i] + "' is listed after '" + pipeline[i - 1] +
                          "', but the stages run in the order " + order + ", each at most once");
  }
}

// How simulate stores /x (docs/formats.md, "Dataset").
void declare_compression(config::Schema& schema) {
  using config::Key;
  using config::Type;
  schema.add(
      Key("simulate.compression", Type::string,
          "how /x of every file simulate writes is stored: none, or deflate (zlib; worth it for images "
          "of counts, not for tabular x)")
          .with_default("none")
          .one_of({"none", "deflate"}));
  schema.add(Key("simulate.compression_level", Type::integer,
                 "deflate level, 1 (fastest) to 9 (smallest); only with simulate.compression: deflate")
                 .with_default("4")
                 .minimum(1)
                 .maximum(9));
}

// simulate.block_size, whose default campaign_schema sets once the simulator is known (default_block_rows).
void declare_block_size(config::Schema& schema) {
  schema.add(
      config::Key("simulate.block_size", config::Type::integer,
                  "rows per block: the unit of work, of writing and of resuming (default: 65536, or as "
                  "many rows as hold 16 MiB of x, for large rows such as images)")
          .with_default("65536")
          .minimum(1)
          .maximum(1 << 24));
}

// simulate.block_size's default: 65536 rows, or fewer when rows are large (images), so that one block's x
// holds at most 16 MiB in double (512 images of 64 × 64) and a rank keeps a few blocks in bounded memory.
std::uint64_t default_block_rows(const sims::SimulatorInfo& info) {
  constexpr std::uint64_t rows = 65536;
  constexpr std::uint64_t x_bytes = std::uint64_t{16} << 20;
  return std::max<std::uint64_t>(1, std::min<std::uint64_t>(rows, x_bytes / (8 * info.n_observables())));
}

}  // namespace

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
  declare_block_size(schema);
  schema.add(Key("simulate.checkpoint_seconds", Type::number,
                 "the most seconds between checkpoints, which record the blocks written so far (a killed run "
                 "redoes the blocks written since the last one; a signal or an error checkpoints first)")
                 .with_default("10")
                 .minimum(0));
  schema.add(
      Key("simulate.output", Type::string, "dataset file, inside campaign.dir").with_default("dataset.h5"));
  declare_compression(schema);

  schema.add(Key("simulate.gold", Type::boolean,
                 "also write the simulator's gold: the joint log ratio against simulate.reference.theta and "
                 "the joint score (simulators with gold; what train.loss rolr, alice, cascal, rascal, alices "
                 "and sally need)")
                 .with_default("false"));
  schema.add(Key("simulate.reference.n_samples", Type::integer,
                 "rows of the reference dataset (default: simulate.n_samples)")
                 .minimum(1)
                 .as_optional());
  schema.add(Key("simulate.reference.output", Type::string, "reference dataset file, inside campaign.dir")
                 .with_default("reference.h5"));

  schema.add(Key("pipeline", Type::string_list, "stages `nsbi run` executes, in order")
                 .with_default("[simulate]")
                 .one_of(pipeline_stages()));

  // The simulator decides the proposal's keys: check its name first (with a suggestion when misspelt).
  config.validate_key(schema, "simulator.name");
  const std::string simulator = config.get<std::string>("simulator.name");
  for (const sims::SimulatorOption& option : sims::simulator_options(simulator)) {
    const Type type = option.string_list       ? Type::string_list
                      : option.choices.empty() ? Type::number
                                               : Type::string;
    Key key("simulator." + option.key, type, option.doc + " (" + simulator + ")");
    if (!option.default_value.empty()) key.with_default(option.default_value);
    if (!option.choices.empty()) key.one_of(option.choices);
    if (type == Type::number && std::isfinite(option.minimum)) key.minimum(option.minimum);
    if (type == Type::number && std::isfinite(option.maximum)) key.maximum(option.maximum);
    schema.add(key);
    config.validate_key(schema, key.path);
  }
  const auto sim = make_simulator(config);
  schema.set_default("simulate.block_size", std::to_string(default_block_rows(sim->info())));
  sims::Proposal::declare(schema, "simulate.proposal", sim->info());
  for (const auto& p : sim->info().parameters)
    schema.add(Key("simulate.reference.theta." + p.name, Type::number,
                   "reference point θ0 (give every parameter, or none: then no reference dataset is made)")
                   .as_optional());

  // train reads what simulate wrote unless told otherwise: its defaults are simulate's outputs.
  config.validate_key(schema, "simulate.output");
  config.validate_key(schema, "simulate.reference.output");
  declare_train(schema, config.get<std::string>("simulate.output"),
                config.get<std::string>("simulate.reference.output"));
  declare_inference(schema, config, sim->info());
  declare_slurm(schema);
  return schema;
}

void validate_campaign(config::Config& config) {
  config.validate(campaign_schema(config));
  check_pipeline(config);
}

std::unique_ptr<sims::Simulator> make_simulator(const config::Config& config) {
  const std::string name = config.get<std::string>("simulator.name");
  sims::SimulatorOptions options;
  for (const sims::SimulatorOption& option : sims::simulator_options(name)) {
    const YAML::Node value = config.get<YAML::Node>("simulator." + option.key);
    if (!option.string_list) {
      options[option.key] = value.Scalar();
      continue;
    }
    YAML::Emitter flow;
    flow << YAML::Flow << value;
    options[option.key] = flow.c_str();
  }
  return sims::make_simulator(name, options);
}

const std::vector<std::string>& pipeline_stages() {
  static const std::vector<std::string> stages = {"simulate", "train",     "infer",
                                                  "test",     "calibrate", "coverage"};
  return stages;
}

Campaign::Campaign(config::Config validated, Provenance run)
    : config(std::move(validated)),
      name(config.get<std::string>("campaign.name")),
      seed(static_cast<std::uint64_t>(config.get<std::int64_t>("campaign.seed"))),
      dir(config.get<std::string>("campaign.dir")),
      provenance(std::move(run)) {}

Campaign Campaign::load(const Invocation& invocation, int mpi_ranks) {
  const int node_ranks =
      mpi_ranks > 1 ? ranks_on_this_node(MPI_COMM_WORLD) : 1;  // collective: before anything can fail
  config::Config config = config::Config::load(invocation.config_file, invocation.overrides);
  validate_campaign(config);
  check_campaign_paths(config);
  check_memory_bounds(config, invocation.command, mpi_ranks, node_ranks);
  return Campaign(std::move(config), collect_provenance(invocation.argv, mpi_ranks));
}

std::string Campaign::output_path(const std::string& file) const {
  if (!file.empty() && file.front() == '/') return file;
  return dir + "/" + file;
}

}  // namespace nsbi::jobs
