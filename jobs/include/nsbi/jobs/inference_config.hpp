#pragma once
// The config of the inference stages (infer, test, calibrate, coverage) as the library's inputs: the model
// and the estimators named in the config, θ grids and points from the config (checked against the model's
// training range), and the observed data.

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
#include "nsbi/inference/mcmc.hpp"
#include "nsbi/inference/prior.hpp"
#include "nsbi/inference/trained_model.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

struct InferenceContext {
  std::unique_ptr<sims::Simulator> simulator;
  std::optional<inference::TrainedModel> model;  // loaded when a `learned` estimator is asked for
  std::string model_path;
  std::vector<std::string> estimator_names;                // as the config lists them
  kernels::Precision precision = kernels::Precision::f32;  // the learned estimator's GEMMs: infer.precision
                                                           // in infer, f32 in the toy stages
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

/// Collective: reads the simulator, the estimators <stage>.estimators lists and, when they include `learned`,
/// the model infer.model names, checking that it is for this simulator (InputError, exit 3, naming the file
/// otherwise).
InferenceContext load_inference(const Communicator& world, const Campaign& campaign, const std::string& stage,
                                bool allow_extrapolation);

/// The grid of <section>.grid (defaults: the model's training range, or the simulator's domain when there is
/// no model). ConfigError naming the key for a grid outside the simulator's domain, or outside the model's
/// training range unless extrapolation is allowed.
inference::Grid grid_from_config(const Campaign& campaign, const InferenceContext& context,
                                 const std::string& section);

/// The prior of the `prior` section; parameters it does not name follow the model's training proposal (or,
/// without a model or in one that predates recording it, are flat over the simulator's domain). InputError
/// naming the model file for a proposal it records that cannot be read.
inference::Prior prior_from_config(const Campaign& campaign, const InferenceContext& context);

/// θ of <section>.<parameter>: every parameter required (ConfigError naming the missing key), checked like
/// a grid point.
std::vector<double> point_from_config(const Campaign& campaign, const InferenceContext& context,
                                      const std::string& section);

/// Whether infer.posterior is `mcmc` (absent: `grid`).
bool infer_uses_mcmc(const config::Config& config);
/// The chains' settings: each infer.mcmc key given, or inference::McmcSettings' default; the seed defaults
/// to campaign.seed.
inference::McmcSettings mcmc_settings(const config::Config& config);

/// One observed dataset a stage analyses: its name in the observed-data file ("" when the config names none:
/// the file's only dataset) and its events [N, D].
struct ObservedDataset {
  std::string name;
  Matrix x;
};

/// The path of the observed-data file `key` names (inside campaign.dir); InputError (exit 3) naming the file
/// and the key when it cannot be read.
std::string readable_observed(const Campaign& campaign, const std::string& key);

/// The observed events [N, D] in the simulator's observable order from the file `key` names, the dataset
/// `<key>_dataset` names (when set) in it (inference::read_observed). InputError (exit 3) naming the file.
Matrix read_observed(const Campaign& campaign, const sims::SimulatorInfo& info, const std::string& key);

}  // namespace nsbi::jobs
