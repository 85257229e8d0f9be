#pragma once
// The stages of a campaign. Each is collective over `world`, resumable, and writes
// <campaign.dir>/<stage>.json when it completes.

#include "nsbi/core/communicator.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/jobs/campaign.hpp"

namespace nsbi::jobs {

/// simulate: theta ~ proposal, x ~ simulator, into the dataset file (docs/formats.md).
void run_simulate(const Communicator& world, const Campaign& campaign, bool force);

/// train: the classifier (an ensemble of them) from the dataset and its reference into model.h5
/// (docs/formats.md), checkpointed and resumable; diagnostics and train.json with it. With a sliced
/// `members` (`nsbi train --members k/K`, one task of a job array) it trains only the ensemble members
/// m ≡ k (mod K) to their finished checkpoints and writes no model: the unsliced run that follows finds
/// every member finished and writes model.h5 (docs/slurm.md).
void run_train(const Communicator& world, const Campaign& campaign, bool force,
               const distributed::WorkSlice& members = {});

/// How the inference stages were asked to run (the command line's flags).
struct StageOptions {
  bool force = false;                // redo: discard results and journals of an earlier run
  bool allow_extrapolation = false;  // accept θ grids beyond the model's training range
  distributed::WorkSlice slice;      // calibrate/coverage --slice k/K: only these work items, no results
  distributed::WorkSlice members;    // train --members k/K: only these ensemble members, no model
};

/// infer: t(D|θ) of the observed data on a grid, best fit, Wilks intervals and regions, posterior.
void run_infer(const Communicator& world, const Campaign& campaign, const StageOptions& options);
/// test: simple hypotheses H0 vs H1 with pseudo-experiments under both (p-values with their uncertainty).
void run_test(const Communicator& world, const Campaign& campaign, const StageOptions& options);
/// calibrate: the Neyman construction (belts c_α(θ) from toys) and the confidence set of the observed data.
void run_calibrate(const Communicator& world, const Campaign& campaign, const StageOptions& options);
/// coverage: how often Wilks and Neyman intervals from toys at θ* contain θ* (Clopper–Pearson uncertainty).
void run_coverage(const Communicator& world, const Campaign& campaign, const StageOptions& options);

/// mkdir -p `dir` and a write check (on the calling rank): a ConfigError naming `key` when it fails.
void prepare_directory(const config::Config& config, const std::string& key, const std::string& dir);
/// The directory part of a path ("." when there is none).
std::string parent_directory(const std::string& path);

}  // namespace nsbi::jobs
