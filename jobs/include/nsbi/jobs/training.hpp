#pragma once
// The classifier's training (specs/statistics.md, "Learning the likelihood ratio"; DESIGN.md "Execution
// model"): the training set of class 1 (θ_i, x_i) and class 0 (reference x paired with θ, or shuffled pairs),
// and one ensemble member's data-parallel training on a group of ranks, checkpointed and resumable.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/config.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/distributed/batch_stream.hpp"
#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/model_file.hpp"
#include "nsbi/kernels/standardize.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

/// train.loss (specs/statistics.md, "Learning the likelihood ratio" and "Gold losses").
enum class Loss { carl, rolr, alice, cascal, rascal, alices, sally };

/// The train section of a validated config.
struct TrainSettings {
  explicit TrainSettings(const config::Config& config);

  std::uint64_t seed = 0;
  bool marginal = false;  // reference: marginal (shuffled pairs) instead of a θ0 dataset
  Loss loss = Loss::carl;
  std::string loss_name;  // as in the config
  double alpha = 0;       // weight of the score term (cascal, rascal, alices)
  std::vector<std::size_t> hidden;
  kernels::Activation activation = kernels::Activation::relu;
  std::uint64_t batch_size = 0;  // samples per step, both classes
  std::uint64_t epochs = 0;
  std::uint64_t max_steps = 0;  // 0: none
  double learning_rate = 0;
  double weight_decay = 0;
  bool cosine = false;
  std::uint64_t warmup_steps = 0;
  std::uint64_t patience = 0;
  double validation_fraction = 0;
  std::uint64_t memory_budget_bytes = 0;
  std::uint64_t n_shards = 0;
  std::uint64_t chunk_rows = 0;
  std::uint64_t checkpoint_every = 0;
  int threads = 1;
  std::size_t ensemble = 1;
  bool bootstrap = false;

  /// Whether the loss regresses the joint log ratio (rolr, alice and their score-augmented forms): class 0
  /// rows are then paired with the θ their gold was evaluated at (/gold/theta of the reference dataset).
  bool uses_gold_ratio() const;
  /// Whether the loss has a score term: cascal, rascal, alices, and sally (the score term alone).
  bool uses_score() const;
  bool uses_gold() const { return loss != Loss::carl; }

  /// The seed of ensemble member k (its initial weights, shuffles, pairings and bootstrap weights).
  std::uint64_t member_seed(std::size_t member) const;
  /// The seed of the diagnostics' fresh events.
  std::uint64_t diagnostics_seed() const;
  /// The options of the stream of class-1 rows (reference = false) or of reference rows of a file of
  /// `n_rows`, for a member.
  distributed::StreamOptions stream_options(std::size_t member, bool reference, std::uint64_t n_rows) const;
  /// The learning rate of optimizer step `step` (0-based) out of `total_steps`.
  double learning_rate_at(std::uint64_t step, std::uint64_t total_steps) const;
};

/// The data of a training: the datasets, checked, and the input standardisation.
struct TrainingData {
  const distributed::DatasetReader* dataset = nullptr;
  const distributed::DatasetReader* reference = nullptr;  // null for reference: marginal
  std::vector<double> theta0;            // the reference point, read from the reference dataset
  kernels::ColumnStatistics statistics;  // of the dataset's x then θ (the network's input order): of
                                         // its first 2^20 rows, the same bits on any number of ranks
  std::vector<double> theta_min;         // the training range of each parameter
  std::vector<double> theta_max;

  std::size_t n_observables() const { return dataset->n_observables(); }
  std::size_t n_parameters() const { return dataset->n_parameters(); }
};

/// Collective over `comm`: checks the datasets for non-finite values (InputError naming the first bad row),
/// checks that the reference dataset's names match the dataset's and that its θ is one point (θ0), and
/// gathers the θ ranges, reading at most `memory_budget_bytes` at a time; then the column statistics.
TrainingData scan_training_data(const Communicator& comm, const distributed::DatasetReader& dataset,
                                const distributed::DatasetReader* reference,
                                std::uint64_t memory_budget_bytes);

/// Collective over `comm`, for a loss that uses gold: InputError naming the file unless the dataset and the
/// reference dataset have gold against the reference dataset's θ0, and the reference dataset has the θ its
/// joint log ratios were evaluated at when the loss regresses them.
void check_training_gold(const Communicator& comm, const TrainingData& data, const TrainSettings& settings);

/// Visits the held-out examples of class 1 (label 1: validation rows of the dataset) and of class 0 (label 0:
/// validation rows of the reference dataset, each paired with the θ of its gold when the streams carry gold
/// θ, else with the θ of the dataset row of the same index modulo its size; or for marginal, validation rows
/// of the dataset paired with the θ of the row half the dataset away). Rows [n, D] and [n, P], the gold
/// [n, G] of the x rows when the streams carry gold (else null), and the row of each x in its file; the
/// examples visited on all ranks together do not depend on the number of ranks.
using ExampleVisitor = std::function<void(std::uint64_t n, const double* x, const double* theta, float label,
                                          const double* gold, const std::uint64_t* x_rows)>;
void for_each_validation_example(const TrainingData& data,
                                 const distributed::ShardedBatchStream& dataset_stream,
                                 const distributed::ShardedBatchStream* reference_stream,
                                 const ExampleVisitor& visit);

struct MemberRun {
  bool interrupted = false;      // stopped by a signal (checkpoint written) rather than finished
  std::uint64_t steps = 0;       // optimizer steps this call took (not those of earlier, resumed runs)
  double step_seconds = 0;       // wall time of those steps (reading the batch to the optimizer update)
  double allreduce_seconds = 0;  // of which in the gradient allreduce (waiting for the slowest rank included)
};

/// Collective over `group`: trains ensemble member `member` (or resumes it from `checkpoint_path` when the
/// checkpoint's identity matches `identity`), checkpointing every settings.checkpoint_every steps, every
/// epoch, and when a stop signal arrives (then returns interrupted). On success the checkpoint holds the
/// member's final parameters and history, marked finished. `speaks`: this rank shows progress.
MemberRun train_member(const Communicator& group, const TrainingData& data, const TrainSettings& settings,
                       std::size_t member, const std::string& checkpoint_path, const std::string& identity,
                       bool speaks);

/// What is written with the model (model.h5 /diagnostics, train.json "diagnostics").
struct TrainingDiagnostics {
  std::map<std::string, kernels::DiagnosticArray> arrays;
  json::Object summary;
};

/// Collective over `group` (its root gets the results; the other ranks' are partial): the diagnostics of
/// specs/statistics.md for the trained (ensemble) model `record`:
///   calibration [bins, 4]: per bin of the predicted class-1 probability σ(log r̂) over the held-out
///     examples: bin centre, mean prediction, observed fraction of class 1, examples;
///   expected_ratio [grid, P + 3]: θ, mean r̂ over held-out class-0 x (θ0 events, or the marginal), its
///     standard error, the events used (about `n_events`, chosen by row, whatever the number of ranks);
///   exact_log_ratio [grid, P + 3] when `simulator` has an exact likelihood and the reference is θ0: θ,
///     RMS and mean of log r̂ − log r, over `n_events` fresh events x ~ p(x|θ) per grid point.
/// The θ grid: `grid_points` cell centres across each parameter's training range, or every hypothesis of a
/// discrete parameter when `simulator` is the dataset's.
TrainingDiagnostics training_diagnostics(const Communicator& group, const TrainingData& data,
                                         const TrainSettings& settings, const kernels::ModelRecord& record,
                                         const sims::Simulator* simulator, std::uint64_t grid_points,
                                         std::uint64_t n_events);

}  // namespace nsbi::jobs
