#pragma once
// Writes a dataset file (docs/formats.md) block by block with collective parallel HDF5, restartably:
// the file is built as `<path>.partial` with a per-block completion flag, and renamed to `<path>` only once
// every block is in. A killed run leaves a .partial file that the next run with the same identity resumes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/distributed/block_schedule.hpp"

namespace nsbi::distributed {

struct DatasetDescription {
  std::string simulator;
  std::vector<std::string> parameter_names;
  std::vector<std::string> observable_names;
  /// The shape of one row's x when it is an array (an image: {channels, height, width}), with one observable
  /// name; empty for tabular x, one column per name. /x is [N, shape...], chunked by whole images.
  std::vector<std::size_t> observable_shape;
  /// /x stored as float32: each double of the rows must be a float32 value (else InternalError).
  bool x_float32 = false;
  /// How /x is stored (theta and the gold are never compressed: their values are random bits).
  h5::Compression x_compression;
  std::string proposal_yaml;  // the distribution theta was drawn from ("prior" attribute)
  std::uint64_t seed = 0;
  std::string config_yaml;  // the fully resolved campaign config
  std::string identity;     // what decides the rows' values: a file is resumed or kept only if it matches
  Provenance provenance;    // rank 0's
  std::uint64_t n_rows = 0;
  std::uint64_t block_rows = 0;
  /// Gold (docs/formats.md): non-empty θ0 writes /gold/log_r (with this θ0) and /gold/score; with
  /// gold_theta, also /gold/theta, the θ each log r is evaluated at when it is not the row's θ.
  std::vector<double> gold_theta0;
  bool gold_theta = false;
};

/// One block's gold, row-major like theta: log r [rows], score [rows, P], and gold θ [rows, P] (only when the
/// description asks for it). All null for a dataset without gold.
struct GoldRows {
  const double* log_r = nullptr;
  const double* score = nullptr;
  const double* theta = nullptr;
};

class DatasetWriter {
 public:
  enum class State { created, resumed, complete };

  /// Collective. Looks at `path` and `path.partial`: a complete file with the same identity is kept
  /// (state complete); a partial one with the same identity is resumed; anything else is replaced only
  /// with `force` (otherwise ConfigError naming the file and what differs).
  /// checkpoint_seconds: the most time between checkpoints (each one flushes the file twice).
  DatasetWriter(const Communicator& comm, std::string path, DatasetDescription description, bool force,
                double checkpoint_seconds);

  State state() const { return state_; }
  const BlockSchedule& schedule() const { return schedule_; }
  /// Blocks not yet in the file, in increasing order.
  const std::vector<std::uint64_t>& pending_blocks() const { return pending_; }
  std::uint64_t rows_done() const;

  /// Collective: writes this rank's block of the round (or nothing). theta and x are row-major with the
  /// block's rows (x's rows flattened row-major where x is an array). The block counts as done once a
  /// checkpoint records it: this call makes one when `checkpoint_seconds` have passed since the last (on any
  /// rank).
  void write_round(std::optional<std::uint64_t> block, const double* theta, const double* x,
                   const GoldRows& gold = {});
  /// Collective: flushes the blocks written since the last checkpoint and then sets their flags, so that a
  /// flag is never on disk before its data. A run killed between checkpoints redoes those blocks.
  void checkpoint();
  /// Collective: checkpoints, checks every block is in, marks the file complete and renames it.
  void finish();

  const std::string& path() const { return path_; }

 private:
  void create();
  void write_structure(h5::Group root) const;
  void open_datasets();
  void resume();
  /// Fills x_float32_ with the block's x; throws InternalError for a value float32 does not hold.
  void convert_x(const RowRange& rows, const double* x);
  void agree_on_writes(const std::function<void()>& work, bool root_only = false) const;

  const Communicator& comm_;
  std::string path_;
  std::string partial_path_;
  DatasetDescription description_;
  BlockSchedule schedule_;
  State state_ = State::created;
  std::vector<std::uint64_t> pending_;
  double checkpoint_seconds_;
  std::chrono::steady_clock::time_point last_checkpoint_;
  // This rank's block of each round since the last checkpoint (nothing: a round without one). Every rank
  // has one entry per round, so the flag writes of a checkpoint are matched collective calls.
  std::vector<std::optional<std::uint64_t>> unrecorded_;
  std::optional<h5::File> file_;
  std::optional<h5::Dataset> theta_;
  std::optional<h5::Dataset> x_;
  std::optional<h5::Dataset> gold_log_r_;
  std::optional<h5::Dataset> gold_score_;
  std::optional<h5::Dataset> gold_theta_;
  std::optional<h5::Dataset> blocks_done_;
  std::vector<float> x_float32_;  // one block of x converted, for a float32 /x
};

/// Rows per chunk of /x: the block (as for every other array) for tabular uncompressed x; otherwise whole
/// rows, the most that divide the block and take at most 1 MiB (HDF5's default chunk cache holds one such
/// chunk, and a compressed chunk is decompressed whole on every read that touches it), at least one.
std::uint64_t x_chunk_rows(const DatasetDescription& description);

}  // namespace nsbi::distributed
