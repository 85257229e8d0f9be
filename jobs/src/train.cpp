#include <sys/resource.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "nsbi/core/json.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/train_schema.hpp"
#include "nsbi/sims/registry.hpp"
#include "nsbi/training/ensemble.hpp"

namespace nsbi::jobs {
namespace {

constexpr std::size_t max_grid_points = 10000;

std::string emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// What decides the trained model: the seed, the train section (less what only says where outputs go or how
// fast to run) and the datasets. A checkpoint or a model is reused only if this matches.
std::string train_identity(const config::Config& config, const std::string& dataset,
                           const std::string& reference) {
  YAML::Node identity;
  identity["seed"] = config.get<std::int64_t>("campaign.seed");
  YAML::Node train = config.get<YAML::Node>("train");
  for (const char* key : {"output", "checkpoint_every", "threads", "diagnostics"}) train.remove(key);
  identity["train"] = train;
  identity["dataset"] = dataset;
  identity["reference"] = reference;
  return emit(identity);
}

// A dataset as the identity sees it: its rows, names and the config that wrote it, if nsbi did.
std::string dataset_identity(const distributed::DatasetReader& reader) {
  YAML::Node node;
  node["path"] = reader.path();
  node["rows"] = reader.n_rows();
  node["parameters"] = reader.parameter_names();
  node["observables"] = reader.observable_names();
  node["simulator"] = reader.simulator();
  node["prior"] = reader.prior();
  return emit(node);
}

bool file_exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

void remove_if_present(const std::string& path) {
  if (file_exists(path) && std::remove(path.c_str()) != 0)
    throw InputError("train: cannot remove '" + path + "'");
}

std::string checkpoint_path(const Campaign& campaign, std::size_t member) {
  return campaign.output_path("checkpoints/train-member-" + std::to_string(member) + ".h5");
}

// The training's progress through the one progress reporter.
class ProgressBar final : public training::ProgressDisplay {
 public:
  ProgressBar(const std::string& label, std::uint64_t total, std::uint64_t done)
      : progress_(label, total, "samples", /*speaks=*/true, done) {}
  void update(std::uint64_t samples_done) override { progress_.update(samples_done); }
  void finish() override { progress_.finish(); }

 private:
  Progress progress_;
};

// The datasets, validated on opening (schema, completeness) by every rank.
struct Datasets {
  std::string dataset_path;
  std::string reference_path;  // "" for reference: marginal
  std::optional<distributed::DatasetReader> dataset;
  std::optional<distributed::DatasetReader> reference;

  std::string identity(const config::Config& config) const {
    return train_identity(config, dataset_identity(*dataset),
                          reference ? dataset_identity(*reference) : "marginal");
  }
};

void open_datasets(const Communicator& world, const Campaign& campaign, bool marginal, Datasets& d) {
  const config::Config& config = campaign.config;
  d.dataset_path = campaign.output_path(config.get<std::string>("train.dataset"));
  d.reference_path = marginal ? "" : campaign.output_path(config.get<std::string>("train.reference_dataset"));
  world.agree([&] {
    d.dataset.emplace(d.dataset_path);
    if (marginal) return;
    if (!file_exists(d.reference_path) && !file_exists(d.reference_path + ".partial"))
      throw InputError("train: there is no reference dataset '" + d.reference_path +
                       "' (train.reference_dataset); train.reference: theta needs events at θ0: set "
                       "simulate.reference.theta and run `nsbi simulate`, or use train.reference: marginal");
    d.reference.emplace(d.reference_path);
  });
}

// Whether the model at model_path was trained from this config and data (then a lost train.json is written
// again from the copy it carries); an existing model of another config is a ConfigError unless `force`.
bool model_is_current(const Communicator& world, const Campaign& campaign, const std::string& model_path,
                      const Datasets& datasets, const std::string& identity, bool force) {
  bool done = false;
  world.agree(
      [&] {
        if (!file_exists(model_path) || force) return;
        const training::ModelRecord existing = training::read_model(model_path);
        config::Config made_by = config::Config::parse(existing.config, model_path);
        done = made_by.has("train") && datasets.identity(made_by) == identity;
        if (!done)
          throw ConfigError(
              "train: '" + model_path +
              "' exists and was trained from another config or dataset; use --force to replace it");
        const std::string summary_path = campaign.output_path("train.json");
        if (!file_exists(summary_path) && !existing.summary.empty()) {
          json::write_file_atomically(summary_path, existing.summary);
          log::info("train: '", summary_path, "' was missing: written again from '", model_path, "'");
        }
      },
      /*root_only=*/true);
  return world.any(done);
}

// The campaign's simulator vouches for the dataset only if it wrote it; then the names must agree. Returns
// whether it did.
bool check_simulator(const Communicator& world, const Campaign& campaign, const Datasets& d,
                     const sims::Simulator& simulator) {
  const auto simulator_name = campaign.config.get<std::string>("simulator.name");
  const sims::SimulatorInfo& info = simulator.info();
  const bool same_simulator = d.dataset->simulator() == simulator_name;
  world.agree([&] {
    if (!same_simulator) return;
    std::vector<std::string> names;
    for (const auto& p : info.parameters) names.push_back(p.name);
    if (d.dataset->parameter_names() != names || d.dataset->observable_names() != info.observables)
      throw InputError("train: '" + d.dataset_path + "' says it comes from " + simulator_name +
                       " but its parameter or observable names differ from that simulator's "
                       "(docs/simulators.md); was it written by another version of it?");
    d.dataset->check_observable_shape(info.observable_shape);
  });
  if (!same_simulator)
    log::info("train: '", d.dataset_path, "' was written by '", d.dataset->simulator(),
              "', not simulator.name = ", simulator_name,
              ": training on its own names; no comparison with an exact likelihood");
  return same_simulator;
}

// The diagnostics' θ grid and events must stay countable; the ranks must split over the shards.
void check_work(const Communicator& world, const config::Config& config, const training::Settings& settings,
                const distributed::DatasetReader& dataset, const sims::SimulatorInfo* info,
                const distributed::WorkSlice& members) {
  world.agree([&] {
    double total = 1.0;
    for (std::size_t p = 0; p < dataset.n_parameters(); ++p)
      total *= info != nullptr && info->parameters[p].is_discrete()
                   ? static_cast<double>(info->parameters[p].hypotheses.size())
                   : static_cast<double>(settings.diagnostics_grid_points);
    if (total > static_cast<double>(max_grid_points))
      config.fail("train.diagnostics.grid_points",
                  std::to_string(settings.diagnostics_grid_points) + " points per parameter make " +
                      std::to_string(total) + " grid points for " + std::to_string(dataset.n_parameters()) +
                      " parameters; at most " + std::to_string(max_grid_points));
    // Each fresh event of the diagnostics has its own 64-bit index (grid point × n_events + event).
    if (total * static_cast<double>(settings.diagnostics_events) >= 0x1p64)
      config.fail("train.diagnostics.n_events",
                  "events per grid point × " + std::to_string(static_cast<std::uint64_t>(total)) +
                      " grid points overflow the 64-bit index of the diagnostics' events");
    const auto to_train = std::max<std::uint64_t>(1, members.size(settings.ensemble));
    if (training::ranks_per_group(world.size(), to_train, settings.n_shards) == 0)
      config.fail("train.n_shards",
                  std::to_string(settings.n_shards) + " shards cannot be split evenly over the " +
                      std::to_string(world.size()) + " MPI ranks training one model; use a multiple of " +
                      std::to_string(world.size()));
  });
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// train.json: the run's summary, also kept in model.h5 (attribute summary).
std::string train_summary(const Communicator& world, const Campaign& campaign,
                          const training::Settings& settings, const training::EnsembleResult& result,
                          const std::string& model_path, const std::string& dataset_path, double rss_before,
                          double peak_rss) {
  const training::ModelRecord& record = result.record;
  json::Object members;
  for (std::size_t k = 0; k < record.n_members(); ++k) {
    const auto& h = record.history[k];
    json::Object member;
    member.set("epochs", static_cast<std::int64_t>(h.epoch.size()))
        .set("steps", h.step.empty() ? std::int64_t{0} : h.step.back())
        .set("final_train_loss", h.train_loss.empty() ? std::nan("") : h.train_loss.back())
        .set("final_validation_loss", h.validation_loss.empty() ? std::nan("") : h.validation_loss.back());
    members.set(std::to_string(k), member);
  }
  const double samples = static_cast<double>(result.steps) * static_cast<double>(settings.batch_size);
  json::Object summary;
  summary.set("stage", "train")
      .set("complete", true)
      .set("output", model_path)
      .set("dataset", dataset_path)
      .set("reference", record.reference)
      .set("loss", record.loss)
      .set("loss_alpha", record.loss_alpha)
      .set("precision", record.precision)
      .set("gemm_implementation", result.gemm_implementations)
      .set("seed", static_cast<std::int64_t>(campaign.seed))
      .set("ensemble", static_cast<std::int64_t>(settings.ensemble))
      .set("members", members)
      .set("mpi_ranks", static_cast<std::int64_t>(world.size()))
      .set("training_seconds", result.seconds)
      .set("samples_per_second", samples / result.seconds)  // this run's, the datasets' scan included
      .set("step_seconds", result.step_seconds)
      .set("step_samples_per_second",  // the optimizer steps alone
           result.step_seconds > 0.0 ? samples / result.step_seconds : 0.0)
      .set("allreduce_share", result.allreduce_share)
      .set("diagnostics", result.diagnostics)
      .set("memory_budget_mib", static_cast<double>(settings.memory_budget_bytes >> 20))
      .set("rss_before_data_mib_per_rank", rss_before)
      .set("peak_rss_mib_per_rank", peak_rss)
      .set("nsbi_version", record.provenance.nsbi_version)
      .set("created", record.provenance.created_utc);
  return summary.dump() + "\n";
}

// Rank 0 writes the model, then train.json, and removes the checkpoints; its failure (disk full) is every
// rank's, reported once.
void write_outputs(const Communicator& world, const Campaign& campaign, const training::Settings& settings,
                   const training::ModelRecord& record, const std::string& model_path) {
  try {
    const profiling::Region region("nsbi/train/write");
    world.agree([&] { training::write_model(model_path, world, record); });
  } catch (const CollectiveError& e) {
    if (e.code() != ExitCode::bad_input) throw;
    throw CollectiveError(e.code(),
                          std::string(e.what()) + "; the finished checkpoints in '" +
                              campaign.output_path("checkpoints") +
                              "' are kept: run the same command to write the model once that is fixed");
  }
  world.agree(
      [&] {
        json::write_file_atomically(campaign.output_path("train.json"), record.summary);
        for (std::size_t k = 0; k < settings.ensemble; ++k) remove_if_present(checkpoint_path(campaign, k));
        rmdir(campaign.output_path("checkpoints").c_str());  // unless it holds other files: then it stays
      },
      /*root_only=*/true);
  log::info("train: wrote '", model_path, "'");
}

}  // namespace

void run_train(const Communicator& world, const Campaign& campaign, bool force,
               const distributed::WorkSlice& member_slice) {
  const config::Config& config = campaign.config;
  std::optional<training::Settings> settings;
  world.agree([&] { settings.emplace(train_settings(config)); });
  const std::string model_path = campaign.output_path(config.get<std::string>("train.output"));
  Datasets datasets;
  open_datasets(world, campaign, settings->marginal, datasets);
  const std::string identity = datasets.identity(config);
  if (model_is_current(world, campaign, model_path, datasets, identity, force)) {
    log::info("train: '", model_path,
              "' is complete and was trained from this config: nothing to do (--force redoes it)");
    return;
  }
  const auto simulator = make_simulator(config);
  const bool same_simulator = check_simulator(world, campaign, datasets, *simulator);
  check_work(world, config, *settings, *datasets.dataset, same_simulator ? &simulator->info() : nullptr,
             member_slice);

  const double rss_before_mib = peak_rss_mib();
  training::EnsembleJob job;
  job.dataset = &*datasets.dataset;
  job.reference = datasets.reference ? &*datasets.reference : nullptr;
  job.simulator = same_simulator ? simulator.get() : nullptr;
  job.identity = identity;
  job.checkpoint_directory = campaign.output_path("checkpoints");
  job.checkpoint_path = [&](std::size_t k) { return checkpoint_path(campaign, k); };
  job.members = member_slice;
  job.progress = [](const std::string& label, std::uint64_t total, std::uint64_t done) {
    return std::make_unique<ProgressBar>(label, total, done);
  };
  job.before_training = [&] {
    prepare_directory(config, "campaign.dir", campaign.output_path("checkpoints"));
    prepare_directory(config, "train.output", parent_directory(model_path));
    // A slice discards only its own members' checkpoints: the others belong to its sibling tasks.
    if (force)
      for (std::size_t k = member_slice.index; k < settings->ensemble; k += member_slice.count)
        remove_if_present(checkpoint_path(campaign, k));
  };
  training::EnsembleResult result = training::train_ensemble(world, *settings, job);
  if (!result.complete) return;

  result.record.config = config.resolved_yaml();
  result.record.seed = campaign.seed;
  result.record.provenance = campaign.provenance;
  result.record.provenance.created_utc = world.broadcast(campaign.provenance.created_utc);
  const double peak_rss = world.max(peak_rss_mib());
  const double rss_before = world.max(rss_before_mib);
  world.agree(
      [&] {  // rank 0's record is the one written
        result.record.summary = train_summary(world, campaign, *settings, result, model_path,
                                              datasets.dataset_path, rss_before, peak_rss);
      },
      /*root_only=*/true);
  write_outputs(world, campaign, *settings, result.record, model_path);
}

}  // namespace nsbi::jobs
