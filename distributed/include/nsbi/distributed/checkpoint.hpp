#pragma once
// Training checkpoints (docs/formats.md, "Training checkpoint"): everything one ensemble member's training
// needs to go on exactly where it stopped — parameters, the optimizer's state, both streams' positions, the
// early-stopping state and the history so far. Written by one rank (the member's group root) to
// `<path>.partial`, flushed and renamed over `<path>`, so a checkpoint file is always a whole one, even when
// the job is killed while writing.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nsbi::distributed {

struct TrainingCheckpoint {
  /// What decides the training's result (config, dataset identities): a checkpoint is resumed only if it
  /// matches.
  std::string identity;
  bool finished = false;  // the member is trained: its final parameters are `parameters`

  std::vector<float> parameters;
  std::vector<float> first_moment;  // AdamW's m and v, and its step count
  std::vector<float> second_moment;
  std::uint64_t optimizer_step = 0;

  std::uint64_t epoch = 0;  // the position of the next batch of the training stream
  std::uint64_t step = 0;
  std::uint64_t reference_epoch = 0;  // and of the reference stream (class 0), when there is one
  std::uint64_t reference_step = 0;
  double epoch_loss_sum = 0;  // the running sum of this epoch's batch losses so far

  // Early stopping: the best validation loss, its parameters, and the epochs since it improved.
  double best_validation_loss = 0;
  std::vector<float> best_parameters;
  std::uint64_t epochs_without_improvement = 0;

  // One entry per finished epoch.
  std::vector<std::int64_t> history_step;
  std::vector<std::int64_t> history_epoch;
  std::vector<double> history_train_loss;
  std::vector<double> history_validation_loss;
  std::vector<double> history_learning_rate;
};

/// Serial (one rank): writes `checkpoint` to path + ".partial", then renames it to `path`. InputError naming
/// the file if it cannot be written.
void write_checkpoint(const std::string& path, const TrainingCheckpoint& checkpoint);

/// Serial: the checkpoint at `path`, or nothing if there is no file there. InputError naming the file for a
/// file that is not a whole nsbi checkpoint.
std::optional<TrainingCheckpoint> read_checkpoint(const std::string& path);

}  // namespace nsbi::distributed
