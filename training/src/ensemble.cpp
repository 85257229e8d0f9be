#include "nsbi/training/ensemble.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <tuple>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/distributed/checkpoint.hpp"
#include "nsbi/training/data.hpp"
#include "nsbi/training/diagnostics.hpp"
#include "nsbi/training/network.hpp"

namespace nsbi::training {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The training range of each parameter: the box of a uniform, log_uniform or normal proposal (a normal's
// truncation box) when the dataset records one (a sample never reaches the bounds of its box, yet the
// network has learned up to them), otherwise the range of the θ values in the data.
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
    if (!proposal.IsMap() || !proposal["kind"] || !proposal["min"] || !proposal["max"]) continue;
    const std::string kind = proposal["kind"].as<std::string>();
    if (kind != "uniform" && kind != "log_uniform" && kind != "normal") continue;
    const double min = proposal["min"].as<double>();
    const double max = proposal["max"].as<double>();
    if (min <= low[p] && high[p] <= max) {
      low[p] = min;
      high[p] = max;
    }
  }
  return {low, high};
}

// The reference as model.h5 records it: "marginal", or the flow YAML of θ0 by parameter name.
std::string reference_yaml(const TrainingData& data) {
  if (data.reference == nullptr) return "marginal";
  YAML::Node theta;
  for (std::size_t p = 0; p < data.n_parameters(); ++p)
    theta[data.dataset->parameter_names()[p]] = config::number_node(data.theta0[p]);
  YAML::Node node;
  node["theta"] = theta;
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// What this run's members took, on this rank: its group's steps, its own time in them and in their
// allreduces.
struct MembersRun {
  std::uint64_t steps = 0;
  double step_seconds = 0.0;
  double allreduce_seconds = 0.0;
  std::string gemm_implementations;  // of the last member this rank trained (all members' are the same)
};

// The members of the job's slice, dealt to groups of ranks of `group_size`; each group trains its share
// one after the other. An error inside one group (a signal's Interrupted included) is that group's alone: it
// is collected and agreed on over the world.
MembersRun train_members(const Communicator& world, const Communicator& group, int group_size,
                         const TrainingData& data, const Settings& settings, const EnsembleJob& job,
                         const std::vector<std::size_t>& to_train) {
  const int color = world.rank() / group_size;
  const int n_groups = world.size() / group_size;
  const std::string slice_text = " (slice " + std::to_string(job.members.index) + "/" +
                                 std::to_string(job.members.count) + " of " +
                                 std::to_string(settings.ensemble) + ")";
  log::info("train: ", to_train.size(), " member(s)", job.members.whole() ? "" : slice_text, " on ", n_groups,
            " group(s) of ", group_size, " rank(s)");
  MembersRun run;
  std::optional<std::pair<ExitCode, std::string>> failure;
  for (std::size_t j = static_cast<std::size_t>(color); j < to_train.size() && !failure;
       j += static_cast<std::size_t>(n_groups)) {
    const std::size_t k = to_train[j];
    try {
      const profiling::Region region("nsbi/train/member");
      const MemberRun member = train_member(group, data, settings, k, job.checkpoint_path(k), job.identity,
                                            world.is_root(), job.progress);
      run.steps += member.steps;
      run.step_seconds += member.step_seconds;
      run.allreduce_seconds += member.allreduce_seconds;
      if (!member.gemm_implementations.empty()) run.gemm_implementations = member.gemm_implementations;
    } catch (const Error& e) {
      failure.emplace(e.code(), e.what());
    }
  }
  world.agree([&] {
    if (failure) throw Error(failure->first, failure->second);
  });
  return run;
}

// The model of the finished members' checkpoints, without config, seed, provenance and summary.
ModelRecord assemble_model(const Communicator& world, const TrainingData& data, const Settings& settings,
                           const EnsembleJob& job) {
  ModelRecord record;
  const distributed::DatasetReader& dataset = *job.dataset;
  record.simulator = dataset.simulator();
  record.observable_names = dataset.observable_names();
  record.observable_shape = dataset.observable_shape();
  record.parameter_names = dataset.parameter_names();
  std::tie(record.parameter_min, record.parameter_max) = training_range(dataset, data);
  record.reference = reference_yaml(data);
  record.proposal = dataset.prior();
  record.loss = settings.loss_name;
  record.loss_alpha = settings.alpha;
  record.precision = kernels::to_string(settings.precision);
  record.architecture = head_architecture(settings.network, data.n_observables() + data.n_parameters());
  const kernels::Standardization standardization(data.statistics);
  for (std::size_t c = 0; c < standardization.n_columns(); ++c) {
    record.standardization_mean.push_back(standardization.mean(c));
    record.standardization_scale.push_back(standardization.scale(c));
  }
  world.agree([&] {
    for (std::size_t k = 0; k < settings.ensemble; ++k) {
      const auto c = distributed::read_checkpoint(job.checkpoint_path(k));
      if (!c || !c->finished || c->identity != job.identity)
        throw InternalError("train: member " + std::to_string(k) + " has no finished checkpoint");
      record.members.push_back(c->parameters);
      record.history.push_back({c->history_step, c->history_epoch, c->history_train_loss,
                                c->history_validation_loss, c->history_learning_rate});
    }
  });
  return record;
}

// The diagnostics, computed by group 0 (whose root is rank 0, the writer); none for sally, whose logit is
// not log r̂.
TrainingDiagnostics diagnose(const Communicator& world, const Communicator& group, bool group_zero,
                             const TrainingData& data, const Settings& settings, const EnsembleJob& job,
                             const ModelRecord& record) {
  TrainingDiagnostics diagnostics;
  if (settings.loss == Loss::sally) {
    log::info(
        "train: no ratio diagnostics: a sally model's logit is not log r̂, only its θ-gradient at θ0 is "
        "learned (the score)");
    return diagnostics;
  }
  const profiling::Region region("nsbi/train/diagnostics");
  const bool exact =
      job.simulator != nullptr && job.simulator->info().has_exact_likelihood && job.reference != nullptr;
  log::info("train: diagnostics (calibration, E_θ0[r̂] on the θ grid", exact ? ", learned vs exact log r" : "",
            ")");
  world.agree([&] {  // group 0's errors, a signal's exit 4 among them, reach every rank
    if (!group_zero) return;
    group.agree([&] { diagnostics = training_diagnostics(group, data, settings, record, job.simulator); });
  });
  return diagnostics;
}

// Scans and checks the job's data.
TrainingData scan(const Communicator& world, const Settings& settings, const EnsembleJob& job) {
  const profiling::Region region("nsbi/train/scan");
  log::info("train: scanning '", job.dataset->path(), "'",
            job.reference ? " and '" + job.reference->path() + "'" : std::string(), " (",
            job.dataset->n_rows(),
            job.reference ? " + " + std::to_string(job.reference->n_rows()) : std::string(),
            " rows) for non-finite values and input statistics");
  TrainingData data = scan_training_data(world, *job.dataset, job.reference, settings.memory_budget_bytes);
  check_training_gold(world, data, settings);
  return data;
}

}  // namespace

int ranks_per_group(int ranks, std::size_t members, std::uint64_t shards) {
  for (auto groups = static_cast<int>(std::min<std::size_t>(members, static_cast<std::size_t>(ranks)));
       groups >= 1; --groups) {
    if (ranks % groups == 0 && shards % static_cast<std::uint64_t>(ranks / groups) == 0)
      return ranks / groups;
  }
  return 0;
}

EnsembleResult train_ensemble(const Communicator& world, const Settings& settings, const EnsembleJob& job) {
  const auto start = std::chrono::steady_clock::now();
  const TrainingData data = scan(world, settings, job);
  std::vector<std::size_t> to_train;
  for (std::size_t k = job.members.index; k < settings.ensemble; k += job.members.count)
    to_train.push_back(k);
  const int group_size =
      ranks_per_group(world.size(), std::max<std::size_t>(1, to_train.size()), settings.n_shards);
  NSBI_ASSERT(group_size > 0, "nsbi::training: train.n_shards does not split over the ranks");
  const int color = world.rank() / group_size;
  const Communicator group = world.split(color);
  if (job.before_training) world.agree(job.before_training, /*root_only=*/true);
  const MembersRun run = train_members(world, group, group_size, data, settings, job, to_train);
  EnsembleResult result;
  if (!job.members.whole()) {
    log::info("train: members slice ", job.members.index, "/", job.members.count,
              " finished (checkpoints in '", job.checkpoint_directory,
              "'); the unsliced `nsbi train` writes the model");
    return result;
  }
  result.seconds = seconds_since(start);
  result.steps = world.sum(group.is_root() ? static_cast<std::int64_t>(run.steps) : 0);
  // The steps' time: the slowest rank's; the allreduce's share: the ranks' mean (a rank that waits in the
  // allreduce for a slower one counts the wait there).
  result.step_seconds = world.max(run.step_seconds);
  double allreduce_share = run.step_seconds > 0.0 ? run.allreduce_seconds / run.step_seconds : 0.0;
  world.sum_in_place(&allreduce_share, 1);
  result.allreduce_share = allreduce_share / world.size();

  result.gemm_implementations = run.gemm_implementations;
  result.record = assemble_model(world, data, settings, job);
  TrainingDiagnostics diagnostics = diagnose(world, group, color == 0, data, settings, job, result.record);
  result.record.diagnostics = std::move(diagnostics.arrays);
  result.diagnostics = std::move(diagnostics.summary);
  result.complete = true;
  return result;
}

}  // namespace nsbi::training
