#include <sys/resource.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <tuple>

#include "nsbi/core/json.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/distributed/checkpoint.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/training.hpp"
#include "nsbi/kernels/model_file.hpp"
#include "nsbi/sims/registry.hpp"

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

// The training range of each parameter: the support of a uniform proposal when the dataset records one (a
// sample never reaches the bounds of its box, yet the network has learned up to them), otherwise the range
// of the θ values in the data.
std::pair<std::vector<double>, std::vector<double>> training_range(const distributed::DatasetReader& dataset,
                                                                   const TrainingData& data) {
  std::vector<double> low = data.theta_min;
  std::vector<double> high = data.theta_max;
  YAML::Node prior;
  try {
    prior = YAML::Load(dataset.prior());
  } catch (const YAML::Exception&) {
    return {low, high};  // a foreign writer's free text: the data's range it is
  }
  for (std::size_t p = 0; p < low.size(); ++p) {
    const YAML::Node proposal = prior.IsMap() ? prior[dataset.parameter_names()[p]] : YAML::Node();
    if (!proposal.IsMap() || !proposal["kind"] || proposal["kind"].as<std::string>() != "uniform" ||
        !proposal["min"] || !proposal["max"])
      continue;
    const double min = proposal["min"].as<double>();
    const double max = proposal["max"].as<double>();
    if (min <= low[p] && high[p] <= max) {
      low[p] = min;
      high[p] = max;
    }
  }
  return {low, high};
}

bool file_exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

void remove_if_present(const std::string& path) {
  if (file_exists(path) && std::remove(path.c_str()) != 0)
    throw InputError("train: cannot remove '" + path + "'");
}

// Ranks per ensemble group: the most groups (up to one per member) that split the ranks evenly into groups
// whose size divides the shard count.
int ranks_per_group(const config::Config& config, int ranks, std::size_t members, std::uint64_t shards) {
  for (auto groups = static_cast<int>(std::min<std::size_t>(members, static_cast<std::size_t>(ranks)));
       groups >= 1; --groups) {
    if (ranks % groups == 0 && shards % static_cast<std::uint64_t>(ranks / groups) == 0)
      return ranks / groups;
  }
  config.fail("train.n_shards",
              std::to_string(shards) + " shards cannot be split evenly over the " + std::to_string(ranks) +
                  " MPI ranks training one model; use a multiple of " + std::to_string(ranks));
}

std::string checkpoint_path(const Campaign& campaign, std::size_t member) {
  return campaign.output_path("checkpoints/train-member-" + std::to_string(member) + ".h5");
}

std::string reference_yaml(const TrainingData& data) {
  if (data.reference == nullptr) return "marginal";
  YAML::Node theta;
  for (std::size_t p = 0; p < data.n_parameters(); ++p)
    theta[data.dataset->parameter_names()[p]] = config::number_node(data.theta0[p]);
  YAML::Node node;
  node["theta"] = theta;
  return emit(node);
}

}  // namespace

void run_train(const Communicator& world, const Campaign& campaign, bool force,
               const distributed::WorkSlice& member_slice) {
  const config::Config& config = campaign.config;
  std::optional<TrainSettings> settings;
  world.agree([&] { settings.emplace(config); });
  const std::string model_path = campaign.output_path(config.get<std::string>("train.output"));
  const std::string dataset_path = campaign.output_path(config.get<std::string>("train.dataset"));
  const std::string reference_path =
      settings->marginal ? "" : campaign.output_path(config.get<std::string>("train.reference_dataset"));

  // The datasets, validated on opening (schema, completeness) by every rank.
  std::optional<distributed::DatasetReader> dataset;
  std::optional<distributed::DatasetReader> reference;
  world.agree([&] {
    dataset.emplace(dataset_path);
    if (settings->marginal) return;
    if (!file_exists(reference_path) && !file_exists(reference_path + ".partial"))
      throw InputError("train: there is no reference dataset '" + reference_path +
                       "' (train.reference_dataset); train.reference: theta needs events at θ0: set "
                       "simulate.reference.theta and run `nsbi simulate`, or use train.reference: marginal");
    reference.emplace(reference_path);
  });
  const std::string identity = train_identity(config, dataset_identity(*dataset),
                                              reference ? dataset_identity(*reference) : "marginal");

  // An existing model: kept if this config made it, replaced only with --force.
  bool done = false;
  world.agree(
      [&] {
        if (!file_exists(model_path) || force) return;
        const kernels::ModelRecord existing = kernels::read_model(model_path);
        config::Config made_by = config::Config::parse(existing.config, model_path);
        done = made_by.has("train") &&
               train_identity(made_by, dataset_identity(*dataset),
                              reference ? dataset_identity(*reference) : "marginal") == identity;
        if (!done)
          throw ConfigError(
              "train: '" + model_path +
              "' exists and was trained from another config or dataset; use --force to replace it");
        // The model is the stage's output; a lost train.json is written again from the copy it carries.
        const std::string summary_path = campaign.output_path("train.json");
        if (!file_exists(summary_path) && !existing.summary.empty()) {
          json::write_file_atomically(summary_path, existing.summary);
          log::info("train: '", summary_path, "' was missing: written again from '", model_path, "'");
        }
      },
      /*root_only=*/true);
  if (world.any(done)) {
    log::info("train: '", model_path,
              "' is complete and was trained from this config: nothing to do "
              "(--force redoes it)");
    return;
  }

  const auto simulator_name = config.get<std::string>("simulator.name");
  const auto simulator = make_simulator(config);
  const sims::SimulatorInfo& info = simulator->info();
  // The campaign's simulator vouches for the dataset only if it wrote it; then the names must agree.
  const bool same_simulator = dataset->simulator() == simulator_name;
  world.agree([&] {
    if (!same_simulator) return;
    std::vector<std::string> names;
    for (const auto& p : info.parameters) names.push_back(p.name);
    if (dataset->parameter_names() != names || dataset->observable_names() != info.observables)
      throw InputError("train: '" + dataset_path + "' says it comes from " + simulator_name +
                       " but its parameter or observable names differ from that simulator's "
                       "(docs/simulators.md); was it written by another version of it?");
  });
  if (!same_simulator)
    log::info("train: '", dataset_path, "' was written by '", dataset->simulator(),
              "', not simulator.name = ", simulator_name,
              ": training on its own names; no comparison with an exact likelihood");

  const auto grid_points =
      static_cast<std::uint64_t>(config.get<std::int64_t>("train.diagnostics.grid_points"));
  world.agree([&] {
    double total = 1.0;
    for (std::size_t p = 0; p < dataset->n_parameters(); ++p)
      total *= same_simulator && info.parameters[p].is_discrete()
                   ? static_cast<double>(info.parameters[p].hypotheses.size())
                   : static_cast<double>(grid_points);
    if (total > static_cast<double>(max_grid_points))
      config.fail("train.diagnostics.grid_points",
                  std::to_string(grid_points) + " points per parameter make " + std::to_string(total) +
                      " grid points for " + std::to_string(dataset->n_parameters()) +
                      " parameters; at most " + std::to_string(max_grid_points));
    // Each fresh event of the diagnostics has its own 64-bit index (grid point × n_events + event).
    const auto n_events = static_cast<double>(config.get<std::int64_t>("train.diagnostics.n_events"));
    if (total * n_events >= 0x1p64)
      config.fail("train.diagnostics.n_events",
                  "events per grid point × " + std::to_string(static_cast<std::uint64_t>(total)) +
                      " grid points overflow the 64-bit index of the diagnostics' events");
  });

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double rss_before_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  const auto start = std::chrono::steady_clock::now();
  log::info("train: scanning '", dataset_path, "'",
            reference ? " and '" + reference_path + "'" : std::string(), " (", dataset->n_rows(),
            reference ? " + " + std::to_string(reference->n_rows()) : std::string(),
            " rows) for non-finite values and input statistics");
  const TrainingData data =
      scan_training_data(world, *dataset, reference ? &*reference : nullptr, settings->memory_budget_bytes);
  check_training_gold(world, data, *settings);

  // The members this run trains (all, or those of its --members slice) are dealt to groups of ranks; each
  // group trains its share one after the other.
  std::vector<std::size_t> to_train;
  for (std::size_t k = member_slice.index; k < settings->ensemble; k += member_slice.count)
    to_train.push_back(k);
  int group_size = 0;
  world.agree([&] {
    group_size =
        ranks_per_group(config, world.size(), std::max<std::size_t>(1, to_train.size()), settings->n_shards);
  });
  const int color = world.rank() / group_size;
  const int n_groups = world.size() / group_size;
  const Communicator group = world.split(color);
  world.agree(
      [&] {
        prepare_directory(config, "campaign.dir", campaign.output_path("checkpoints"));
        prepare_directory(config, "train.output", parent_directory(model_path));
        // A slice discards only its own members' checkpoints: the others belong to its sibling tasks.
        if (force)
          for (const std::size_t k : to_train) remove_if_present(checkpoint_path(campaign, k));
      },
      /*root_only=*/true);
  const std::string slice_text = " (slice " + std::to_string(member_slice.index) + "/" +
                                 std::to_string(member_slice.count) + " of " +
                                 std::to_string(settings->ensemble) + ")";
  log::info("train: ", to_train.size(), " member(s)", member_slice.whole() ? "" : slice_text, " on ",
            n_groups, " group(s) of ", group_size, " rank(s)");

  // An error inside one group is that group's alone: collect it and agree on it over the world afterwards.
  bool interrupted = false;
  std::uint64_t steps = 0;         // taken by this run, in this group
  double step_seconds = 0.0;       // this rank's time in those steps
  double allreduce_seconds = 0.0;  // of which in the gradient allreduces
  std::optional<std::pair<ExitCode, std::string>> failure;
  for (std::size_t j = static_cast<std::size_t>(color); j < to_train.size() && !interrupted && !failure;
       j += static_cast<std::size_t>(n_groups)) {
    const std::size_t k = to_train[j];
    try {
      const MemberRun run =
          train_member(group, data, *settings, k, checkpoint_path(campaign, k), identity, world.is_root());
      interrupted = run.interrupted;
      steps += run.steps;
      step_seconds += run.step_seconds;
      allreduce_seconds += run.allreduce_seconds;
    } catch (const Error& e) {
      failure.emplace(e.code(), e.what());
    }
  }
  world.agree([&] {
    if (failure) throw Error(failure->first, failure->second);
  });
  if (world.any(interrupted))
    throw CollectiveError(ExitCode::interrupted, "train: stopped by a signal; the checkpoints in '" +
                                                     campaign.output_path("checkpoints") +
                                                     "' are saved: run the same command to resume");
  if (!member_slice.whole()) {
    log::info("train: members slice ", member_slice.index, "/", member_slice.count,
              " finished (checkpoints in '", campaign.output_path("checkpoints"),
              "'); the unsliced `nsbi train` writes the model");
    return;
  }
  const double training_seconds = seconds_since(start);
  const std::int64_t steps_this_run = world.sum(group.is_root() ? static_cast<std::int64_t>(steps) : 0);
  // The steps' time: the slowest rank's; the allreduce's share: the ranks' mean (a rank that waits in the
  // allreduce for a slower one counts the wait there).
  const double slowest_step_seconds = world.max(step_seconds);
  double allreduce_share = step_seconds > 0.0 ? allreduce_seconds / step_seconds : 0.0;
  world.sum_in_place(&allreduce_share, 1);
  allreduce_share /= world.size();

  // The model: every member from its finished checkpoint.
  kernels::ModelRecord record;
  record.simulator = dataset->simulator();
  record.observable_names = dataset->observable_names();
  record.parameter_names = dataset->parameter_names();
  std::tie(record.parameter_min, record.parameter_max) = training_range(*dataset, data);
  record.reference = reference_yaml(data);
  record.loss = settings->loss_name;
  record.loss_alpha = settings->alpha;
  record.architecture = {data.n_observables() + data.n_parameters(), settings->hidden, settings->activation};
  const kernels::Standardization standardization(data.statistics);
  for (std::size_t c = 0; c < standardization.n_columns(); ++c) {
    record.standardization_mean.push_back(standardization.mean(c));
    record.standardization_scale.push_back(standardization.scale(c));
  }
  world.agree([&] {
    for (std::size_t k = 0; k < settings->ensemble; ++k) {
      const auto c = distributed::read_checkpoint(checkpoint_path(campaign, k));
      if (!c || !c->finished || c->identity != identity)
        throw InternalError("train: member " + std::to_string(k) + " has no finished checkpoint");
      record.members.push_back(c->parameters);
      record.history.push_back({c->history_step, c->history_epoch, c->history_train_loss,
                                c->history_validation_loss, c->history_learning_rate});
    }
  });
  record.config = config.resolved_yaml();
  record.seed = campaign.seed;
  record.provenance = campaign.provenance;
  record.provenance.created_utc = world.broadcast(campaign.provenance.created_utc);

  // Diagnostics on group 0 (whose root is rank 0, the writer).
  TrainingDiagnostics diagnostics;
  if (settings->loss == Loss::sally) {
    log::info(
        "train: no ratio diagnostics: a sally model's logit is not log r̂, only its θ-gradient at θ0 is "
        "learned (the score)");
  } else {
    log::info("train: diagnostics (calibration, E_θ0[r̂] on the θ grid",
              same_simulator && info.has_exact_likelihood && reference ? ", learned vs exact log r" : "",
              ")");
    world.agree([&] {  // group 0's errors, a signal's exit 4 among them, reach every rank
      if (color != 0) return;
      group.agree([&] {
        diagnostics = training_diagnostics(
            group, data, *settings, record, same_simulator ? simulator.get() : nullptr, grid_points,
            static_cast<std::uint64_t>(config.get<std::int64_t>("train.diagnostics.n_events")));
      });
    });
  }
  record.diagnostics = diagnostics.arrays;
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mib = world.max(static_cast<double>(usage.ru_maxrss) / 1024.0);
  const double rss_before = world.max(rss_before_mib);
  world.agree(
      [&] {
        json::Object members;
        for (std::size_t k = 0; k < record.n_members(); ++k) {
          const auto& h = record.history[k];
          json::Object member;
          member.set("epochs", static_cast<std::int64_t>(h.epoch.size()))
              .set("steps", h.step.empty() ? std::int64_t{0} : h.step.back())
              .set("final_train_loss", h.train_loss.empty() ? std::nan("") : h.train_loss.back())
              .set("final_validation_loss",
                   h.validation_loss.empty() ? std::nan("") : h.validation_loss.back());
          members.set(std::to_string(k), member);
        }
        json::Object summary;
        summary.set("stage", "train")
            .set("complete", true)
            .set("output", model_path)
            .set("dataset", dataset_path)
            .set("reference", record.reference)
            .set("loss", record.loss)
            .set("loss_alpha", record.loss_alpha)
            .set("seed", static_cast<std::int64_t>(campaign.seed))
            .set("ensemble", static_cast<std::int64_t>(settings->ensemble))
            .set("members", members)
            .set("mpi_ranks", static_cast<std::int64_t>(world.size()))
            .set("training_seconds", training_seconds)
            .set("samples_per_second",  // this run's, the datasets' scan included
                 static_cast<double>(steps_this_run) * static_cast<double>(settings->batch_size) /
                     training_seconds)
            .set("step_seconds", slowest_step_seconds)
            .set("step_samples_per_second",  // the optimizer steps alone
                 slowest_step_seconds > 0.0
                     ? static_cast<double>(steps_this_run) * static_cast<double>(settings->batch_size) /
                           slowest_step_seconds
                     : 0.0)
            .set("allreduce_share", allreduce_share)
            .set("diagnostics", diagnostics.summary)
            .set("memory_budget_mib", static_cast<double>(settings->memory_budget_bytes >> 20))
            .set("rss_before_data_mib_per_rank", rss_before)
            .set("peak_rss_mib_per_rank", peak_rss_mib)
            .set("nsbi_version", record.provenance.nsbi_version)
            .set("created", record.provenance.created_utc);
        record.summary = summary.dump() + "\n";  // rank 0's record is the one written
      },
      /*root_only=*/true);
  // Rank 0 writes; its failure (disk full) is every rank's, reported once.
  try {
    world.agree([&] { kernels::write_model(model_path, world.get(), record); });
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
        for (std::size_t k = 0; k < settings->ensemble; ++k) remove_if_present(checkpoint_path(campaign, k));
        rmdir(campaign.output_path("checkpoints").c_str());  // unless it holds other files: then it stays
      },
      /*root_only=*/true);
  log::info("train: wrote '", model_path, "'");
}

}  // namespace nsbi::jobs
