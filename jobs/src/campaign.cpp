#include "nsbi/jobs/campaign.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "nsbi/jobs/campaign_outputs.hpp"
#include "nsbi/jobs/inference_schema.hpp"
#include "nsbi/jobs/memory_bounds.hpp"
#include "nsbi/jobs/slurm.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

void declare_train(config::Schema& schema, const std::string& dataset, const std::string& reference) {
  using config::Key;
  using config::Type;
  schema.add(
      Key("train.dataset", Type::string, "training dataset (class 1: θ, x ~ p(x|θ)), inside campaign.dir")
          .with_default(YAML::Node(dataset)));
  schema.add(
      Key("train.reference", Type::string,
          "class 0: `theta` = x of reference_dataset (all at θ0) paired with θ of the dataset, so the logit "
          "learns log p(x|θ)/p(x|θ0); `marginal` = x and θ of the dataset shuffled apart (log p(x|θ)/p(x))")
          .with_default("theta")
          .one_of({"theta", "marginal"}));
  schema.add(Key("train.reference_dataset", Type::string,
                 "for reference: theta, the dataset of x ~ p(x|θ0), inside campaign.dir")
                 .with_default(YAML::Node(reference)));
  schema.add(Key("train.output", Type::string, "model file, inside campaign.dir").with_default("model.h5"));
  schema.add(
      Key("train.loss", Type::string,
          "`carl`: cross-entropy on the class labels; with the simulator's gold (simulate.gold): "
          "`rolr`, `alice`, and with the score term `cascal`, `rascal`, `alices`; `sally`: the score at "
          "θ0 only (specs/statistics.md, \"Gold losses\"; docs/config.md)")
          .with_default("carl")
          .one_of(training_losses()));
  schema.add(Key("train.alpha", Type::number,
                 "weight α of the score term α |t(x,z|θ) − ∇θ log r̂(x|θ)|² of cascal, rascal and alices")
                 .with_default("1")
                 .minimum(0));
  schema.add(Key("train.hidden", Type::integer_list, "widths of the hidden layers")
                 .with_default("[64, 64, 64]")
                 .minimum(1));
  schema.add(Key("train.activation", Type::string, "hidden-layer activation")
                 .with_default("relu")
                 .one_of({"relu", "silu", "tanh", "softplus"}));
  schema.add(Key("train.batch_size", Type::integer,
                 "samples per optimizer step, both classes (half each), summed over all ranks")
                 .with_default("512")
                 .minimum(2));
  schema.add(
      Key("train.epochs", Type::integer, "passes over the training rows").with_default("20").minimum(1));
  schema.add(Key("train.max_steps", Type::integer, "stop after this many optimizer steps (0: no limit)")
                 .with_default("0")
                 .minimum(0));
  schema.add(
      Key("train.learning_rate", Type::number, "AdamW's peak learning rate").with_default("1e-3").minimum(0));
  schema.add(
      Key("train.weight_decay", Type::number, "AdamW's decoupled weight decay").with_default("0").minimum(0));
  schema.add(Key("train.lr_schedule", Type::string,
                 "learning rate over the steps: `constant`, or `cosine` decay to 0 at the last step")
                 .with_default("cosine")
                 .one_of({"constant", "cosine"}));
  schema.add(Key("train.warmup_steps", Type::integer, "steps of linear warm-up from 0 to learning_rate")
                 .with_default("0")
                 .minimum(0));
  schema.add(
      Key("train.early_stopping_patience", Type::integer,
          "stop after this many epochs without a lower validation loss and keep the best epoch's weights "
          "(0: train every epoch, keep the last)")
          .with_default("5")
          .minimum(0));
  schema.add(Key("train.validation_fraction", Type::number, "fraction of the rows held out for validation")
                 .with_default("0.1")
                 .minimum(0)
                 .maximum(0.5));
  schema.add(
      Key("train.memory_budget_mib", Type::integer,
          "memory for streaming the datasets, per rank group (docs/formats.md, \"How nsbi reads a dataset\")")
          .with_default("512")
          .minimum(8));
  schema.add(Key("train.n_shards", Type::integer,
                 "virtual shards of the data; the number of ranks training one model must divide it")
                 .with_default("16")
                 .minimum(1));
  schema.add(
      Key("train.chunk_rows", Type::integer,
          "rows per read, per shuffle unit and per validation-split unit (0: about 1/16 of a shard's rows, "
          "between 64 and 4096)")
          .with_default("0")
          .minimum(0));
  schema.add(
      Key("train.checkpoint_every", Type::integer, "optimizer steps between checkpoints (and every epoch)")
          .with_default("1000")
          .minimum(1));
  schema.add(Key("train.threads", Type::integer, "GEMM threads per rank (flat MPI: 1 per core)")
                 .with_default("1")
                 .minimum(1));
  schema.add(
      Key("train.ensemble", Type::integer, "networks trained with different seeds (log r̂ = log mean r̂_k)")
          .with_default("1")
          .minimum(1)
          .maximum(256));
  schema.add(Key("train.bootstrap", Type::boolean,
                 "each ensemble member sees every row a Poisson(1) number of times (bootstrap)")
                 .with_default("false"));
  schema.add(Key("train.diagnostics.grid_points", Type::integer,
                 "θ grid points per continuous parameter for E_θ0[r̂] and the exact-ratio comparison")
                 .with_default("5")
                 .minimum(1)
                 .maximum(64));
  schema.add(Key("train.diagnostics.n_events", Type::integer, "events per θ grid point (and for calibration)")
                 .with_default("10000")
                 .minimum(10));
}

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
  schema.add(Key("simulate.block_size", Type::integer,
                 "rows per block: the unit of work, of writing and of resuming")
                 .with_default("65536")
                 .minimum(1)
                 .maximum(1 << 24));
  schema.add(Key("simulate.checkpoint_seconds", Type::number,
                 "the most seconds between checkpoints, which record the blocks written so far (a killed run "
                 "redoes the blocks written since the last one; a signal or an error checkpoints first)")
                 .with_default("10")
                 .minimum(0));
  schema.add(
      Key("simulate.output", Type::string, "dataset file, inside campaign.dir").with_default("dataset.h5"));

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

const std::vector<std::string>& training_losses() {
  static const std::vector<std::string> losses = {"carl",   "rolr",   "alice", "cascal",
                                                  "rascal", "alices", "sally"};
  return losses;
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
