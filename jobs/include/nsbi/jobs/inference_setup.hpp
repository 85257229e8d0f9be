#pragma once
// What the inference stages (infer, test, calibrate, coverage) share: the model and the estimators named
// in the config, θ grids and points from the config (checked against the model's training range), the
// observed data, and results.h5, which holds one group per stage (docs/formats.md, "Results").

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/kernels/model_file.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

struct InferenceContext {
  std::unique_ptr<sims::Simulator> simulator;
  std::optional<kernels::ModelRecord> model;  // loaded when a `learned` estimator is asked for
  std::string model_path;
  std::vector<std::string> estimator_names;  // as the config lists them
  bool allow_extrapolation = false;

  const sims::SimulatorInfo& info() const { return simulator->info(); }
  std::vector<std::string> parameter_names() const;
  /// One new estimator per name (each owns its buffers: one per thread of work). `exact_reference` is the
  /// reference point of the exact estimator (ConfigError naming `key` when the simulator has no exact ratio
  /// for the points it will meet, checked by `check_exact` below).
  std::vector<std::unique_ptr<inference::RatioEstimator>> make_estimators(
      const std::vector<double>& exact_reference) const;
  /// ConfigError naming `key` unless the exact estimator (if listed) can evaluate every point against the
  /// reference.
  void check_exact(const std::string& key, const std::vector<std::vector<double>>& points,
                   const std::vector<double>& reference) const;
};

/// Collective: reads the simulator, the model `model_key` names (when `estimators_key` lists `learned`) and
/// checks that the model is for this simulator (InputError, exit 3, naming the file otherwise).
InferenceContext load_inference(const Communicator& world, const Campaign& campaign,
                                const std::string& estimators_key, const std::string& model_key,
                                bool allow_extrapolation);

/// The grid of <section>.grid (defaults: the model's training range, or the simulator's domain when there is
/// no model). ConfigError naming the key for a grid outside the simulator's domain, or outside the model's
/// training range unless extrapolation is allowed.
inference::Grid grid_from_config(const Campaign& campaign, const InferenceContext& context,
                                 const std::string& section);

/// θ of <section>.<parameter>: every parameter required (ConfigError naming the missing key), checked like
/// a grid point.
std::vector<double> point_from_config(const Campaign& campaign, const InferenceContext& context,
                                      const std::string& section);

/// The observed events [N, D] in the simulator's observable order from the file `key` names, the dataset
/// `<key>_dataset` names (when set) in it (inference::read_observed). InputError (exit 3) naming the file.
Matrix read_observed(const Campaign& campaign, const sims::SimulatorInfo& info, const std::string& key);

/// Collective; rank 0 works: replaces the group `stage` of <campaign.dir>/results.h5 by what `fill` writes
/// (through a copy written to results.h5.partial and renamed, so results.h5 is always complete), with the
/// stage's identity (stage_identity), config, seed and provenance as attributes. The other groups are kept.
void write_results(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const std::function<void(h5::Group&)>& fill);
/// What decides a stage's results: the seed, the simulator, the model file's identity (its canonical path,
/// creation time and seed) when a learned estimator is used, the listed config sections and, when given, the
/// observed events (their count and a digest of their values), emitted as YAML. Journals, the summary and
/// the stage's group of results.h5 carry it; a stage is resumed or skipped only when it matches.
std::string stage_identity(const Campaign& campaign, const InferenceContext& context,
                           const std::vector<std::string>& sections, const Matrix* observed = nullptr);

/// Collective: writes <campaign.dir>/<stage>.json with the fields every summary has (stage, complete, a
/// digest of `identity`, seed, simulator, ranks, version, created) before `body`'s.
void write_summary(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const json::Object& body);

/// Collective: whether the stage is complete for this identity: <campaign.dir>/<stage>.json says it completed
/// with it AND results.h5 holds the group /<stage> recording it. It is then skipped. A missing summary,
/// results.h5 or group is not complete (the stage runs). Without `force`, a summary or a group made from
/// another identity is a ConfigError (exit 2) naming the file, the group, what differs and --force, and an
/// unreadable results.h5 an InputError (exit 3): nothing is replaced. With `force`: false, nothing checked.
bool stage_complete(const Communicator& world, const Campaign& campaign, const std::string& stage,
                    const std::string& identity, bool force);

/// Collective: runs the work items of a toy stage over the ranks (distributed/work_queue.hpp), journaled in
/// <campaign.dir>/work/<stage>/ (removed first with `force`), with progress on rank 0. Returns the merged
/// results [n_items × item_size]; throws CollectiveError (exit 4) when a signal stopped it, and ConfigError
/// when the journals there are from another identity. A sliced run (`nsbi calibrate --slice k/K`, one task
/// of a job array) computes only its slice's items and returns nothing: they stay in the journals for the
/// unsliced run that merges them (`force` then removes nothing: the journals are shared with other slices).
std::vector<double> run_toy_items(const Communicator& world, const Campaign& campaign,
                                  const std::string& stage, const std::string& identity,
                                  std::uint64_t n_items, std::size_t item_size, std::uint64_t toys_per_item,
                                  bool force,
                                  const std::function<void(std::uint64_t item, double* out)>& work,
                                  const distributed::WorkSlice& slice = {});
/// Removes the journals of a finished stage (its results are written).
void remove_toy_journals(const Communicator& world, const Campaign& campaign, const std::string& stage);

}  // namespace nsbi::jobs
