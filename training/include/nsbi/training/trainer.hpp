#pragma once
// One ensemble member's data-parallel training on a group of ranks (docs/formats.md, "Checkpoints"):
// AdamW steps on balanced batches of both classes, one gradient allreduce per step, validation and early
// stopping per epoch, checkpointed and resumable with the same bits.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nsbi/core/communicator.hpp"
#include "nsbi/training/data.hpp"
#include "nsbi/training/settings.hpp"

namespace nsbi::training {

/// A progress display the caller shows while a member trains (the stage's progress bar).
class ProgressDisplay {
 public:
  virtual ~ProgressDisplay() = default;
  /// `samples_done` of the total, those of earlier (resumed) runs included.
  virtual void update(std::uint64_t samples_done) = 0;
  /// The member's training is finished.
  virtual void finish() = 0;
};

/// Makes the display of one member's training: its label ("train", "train member 3"), the samples it
/// trains in all, and those an earlier, interrupted run already trained.
using ProgressFactory = std::function<std::unique_ptr<ProgressDisplay>(
    const std::string& label, std::uint64_t total_samples, std::uint64_t samples_done)>;

struct MemberRun {
  std::uint64_t steps = 0;       // optimizer steps this call took (not those of earlier, resumed runs)
  double step_seconds = 0;       // wall time of those steps (reading the batch to the optimizer update)
  double allreduce_seconds = 0;  // of which in the gradient allreduce (waiting for the slowest rank included)
  std::string gemm_implementations;  // the oneDNN implementations of those steps' GEMMs ("" without steps)
};

/// Collective over `group`: trains ensemble member `member` (or resumes it from `checkpoint_path` when the
/// checkpoint's identity matches `identity`), checkpointing every settings.checkpoint_every steps, every
/// epoch, and when a stop signal arrives (then throws Interrupted, the checkpoint written). On success the
/// checkpoint holds the member's final parameters and history, marked finished. `speaks`: this rank logs and
/// shows progress (through `progress`, when given).
MemberRun train_member(const Communicator& group, const TrainingData& data, const Settings& settings,
                       std::size_t member, const std::string& checkpoint_path, const std::string& identity,
                       bool speaks, const ProgressFactory& progress = {});

}  // namespace nsbi::training
