#pragma once
// An ensemble's training, from the datasets to the model record (docs/formats.md, "Model"): the scan of the
// data, the members dealt to groups of ranks and trained to finished checkpoints, the model assembled from
// them, and its diagnostics. The caller (jobs' train stage) decides whether to run, and writes the outputs.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/sims/simulator.hpp"
#include "nsbi/training/model_file.hpp"
#include "nsbi/training/settings.hpp"
#include "nsbi/training/trainer.hpp"

namespace nsbi::training {

/// What an ensemble trains on and where its members' checkpoints go.
struct EnsembleJob {
  const distributed::DatasetReader* dataset = nullptr;
  const distributed::DatasetReader* reference = nullptr;  // null for reference: marginal
  /// The simulator that wrote the dataset, or null when another one did: it gives the grid of a discrete
  /// parameter and the exact likelihood of the diagnostics.
  const sims::Simulator* simulator = nullptr;
  std::string identity;  // what decides the model: a checkpoint is resumed only if it has the same
  std::string checkpoint_directory;
  std::function<std::string(std::size_t member)> checkpoint_path;
  distributed::WorkSlice members;  // the members this run trains (train --members k/K), all by default
  ProgressFactory progress;        // shown on the world's root
  /// Called on the world's root once the data is checked, before any member trains (its errors are every
  /// rank's): the caller prepares the output directories and discards the checkpoints of a redo.
  std::function<void()> before_training;
};

/// What train_ensemble made. The record's diagnostics, and `diagnostics`, are complete on the world's root
/// (the first group of ranks computes them).
struct EnsembleResult {
  bool complete = false;     // every member is trained and `record` is the model (false for a members slice)
  ModelRecord record;        // without config, seed, provenance and summary: the caller's to fill
  json::Object diagnostics;  // train.json "diagnostics"
  std::int64_t steps = 0;    // optimizer steps this run took, all groups together
  double seconds = 0;        // wall time from the scan of the data to the members' end
  double step_seconds = 0;   // the slowest rank's time in those steps
  double allreduce_share = 0;        // the ranks' mean share of their step time in the gradient allreduce
  std::string gemm_implementations;  // oneDNN's, of this rank's steps in this run ("" if it took none)
};

/// The ranks per group of ranks that trains one member: the most groups (up to one per member) that split
/// `ranks` evenly into groups whose size divides `shards`; 0 when none does.
int ranks_per_group(int ranks, std::size_t members, std::uint64_t shards);

/// Collective over `world`: trains the ensemble of `settings` on the job's data (resuming finished or
/// interrupted members from their checkpoints) and, when the job's slice is every member, assembles the
/// model from the finished checkpoints and computes its diagnostics. A stop signal is a CollectiveError
/// (interrupted) after the checkpoints are written; every rank returns or throws the same error.
EnsembleResult train_ensemble(const Communicator& world, const Settings& settings, const EnsembleJob& job);

}  // namespace nsbi::training
