#pragma once
// Simulating a dataset file (docs/formats.md): θ from a proposal and x (and the gold, when asked for) from a
// simulator, block by block over the ranks into a DatasetWriter. Row i draws from the streams of row
// first_index + i whichever rank simulates it, so the file is the same bits for any number of ranks and any
// interruption history; a stop (signal) or a failing simulator checkpoints the blocks written so far, and the
// next run with the same identity resumes them.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/distributed/dataset_writer.hpp"

namespace nsbi::sims {
class Proposal;
class Simulator;
}  // namespace nsbi::sims

namespace nsbi::distributed {

/// One dataset file. Rows [0, n_rows) take θ from the proposal's streams (seed, first_index + row) and x from
/// the simulator's (simulator_seed, first_index + row): a reference dataset (first_index = the training
/// set's size) shares no random numbers with the training set, and observed data (its own simulator_seed)
/// none with either.
struct SimulateSettings {
  std::string path;                          // the file; written as <path>.partial until complete
  const sims::Proposal* proposal = nullptr;  // θ of the rows; outlives the simulation
  std::uint64_t n_rows = 0;
  std::uint64_t block_rows = 0;  // the unit of work, of writing and of resuming
  std::uint64_t first_index = 0;
  std::uint64_t seed = 0;            // the proposal's streams, and the file's seed attribute
  std::uint64_t simulator_seed = 0;  // the simulator's streams
  /// Gold: θ0 of the joint log ratios (empty: no gold). A reference dataset's rows are all at θ0, so their
  /// log ratio is evaluated at the θ that training pairs them with: drawn from `gold_pairing` (the training
  /// proposal) at the rows' own indices, which the training set's rows [0, n) never reach. Null: at the
  /// row's own θ.
  std::vector<double> gold_theta0 = {};
  const sims::Proposal* gold_pairing = nullptr;
  h5::Compression x_compression;  // how /x is stored (its shape and type are the simulator's)
  std::string config_yaml;        // the resolved campaign config, stored in the file
  std::string identity;   // what decides the rows' values: a file is resumed or kept only if it matches
  Provenance provenance;  // rank 0's created_utc and hostname are written by every rank
  bool force = false;     // replace a file of another identity (otherwise ConfigError)
  double checkpoint_seconds = 10;  // the most time between checkpoints
};

class DatasetSimulation {
 public:
  /// Collective: opens the file as DatasetWriter does: a complete file of the same identity is kept
  /// (state complete: nothing to run), a partial one resumed, anything else replaced only with `force`.
  DatasetSimulation(const Communicator& world, const sims::Simulator& simulator, SimulateSettings settings);

  DatasetWriter::State state() const { return writer_->state(); }
  /// Rows already in the file (an earlier run's, when resumed).
  std::uint64_t rows_done() const { return writer_->rows_done(); }

  /// Collective: simulates and writes every pending block, then completes and renames the file. `progress`
  /// is called on every rank after each round with the rows done by all ranks (earlier runs included).
  /// Returns the seconds spent in the collective writes and checkpoints (waits for other ranks included),
  /// the most over the ranks. A stop signal checkpoints and throws CollectiveError(interrupted); a simulator
  /// that fails or produces non-finite values checkpoints and throws on every rank.
  double run(const std::function<void(std::uint64_t rows_done)>& progress);

 private:
  const Communicator& world_;
  const sims::Simulator& simulator_;
  SimulateSettings settings_;
  std::optional<DatasetWriter> writer_;
};

}  // namespace nsbi::distributed
