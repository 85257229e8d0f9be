#pragma once
// Streams shuffled training batches from a dataset larger than memory, data-parallel over ranks, with a
// global batch that is the same rows in the same order for any number of ranks (docs/formats.md, "How nsbi
// reads a dataset", gives the design and its guarantees).
//
// The rows are cut into chunks of C rows. A deterministic (split seed, chunk) draw sends each chunk to
// validation or training. The training chunks are dealt in contiguous runs to S virtual shards; rank r
// streams shards s = r (mod P). Every epoch each shard permutes its chunks, fills a window of W chunks,
// shuffles the rows of the window and hands out B/S rows per step; the global batch of a step is shard 0's
// piece, then shard 1's, and so on. Everything random is Philox (core/rng.hpp) of (seed, epoch, shard,
// window), never of the rank.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/distributed/dataset_reader.hpp"

namespace nsbi::distributed {

struct StreamOptions {
  std::uint64_t seed = 0;          // the shuffles
  std::uint64_t split_seed = 0;    // which chunks are held out (ensemble members share it, not the shuffles)
  std::uint64_t batch_size = 256;  // global rows per step B; a multiple of n_shards
  std::uint64_t n_shards = 16;     // S; the number of ranks must divide it
  /// C; 0 takes the file's HDF5 chunk where recorded (DatasetReader::recorded_chunk_rows), else
  /// default_chunk_rows.
  std::uint64_t chunk_rows = 0;
  /// What one rank alone would hold: S windows, a training and a validation batch, and HDF5's caches
  /// (DatasetReader::hdf5_memory_bytes); P ranks hold 1/P of the windows and batches each. Fixes W, and so
  /// the shuffle, independently of the number of ranks.
  std::uint64_t memory_budget_bytes = std::uint64_t{256} << 20;
  double validation_fraction = 0.0;  // in [0, 1): the expected fraction of chunks held out
  bool gold = false;                 // also stream the file's gold (DatasetReader::read_gold)

  static constexpr std::uint64_t default_chunk_rows = 4096;
};

/// Rows of one rank: row-major theta [n_rows, P] and x [n_rows, D], the gold [n_rows, G] when streamed
/// (G = DatasetReader::gold_columns(), else 0) and each row's index in the file.
struct Batch {
  std::uint64_t n_rows = 0;
  std::vector<double> theta;
  std::vector<double> x;
  std::vector<double> gold;
  std::vector<std::uint64_t> rows;
};

class ShardedBatchStream {
 public:
  /// Plans the split, the shards and the window; allocates this rank's windows (nothing is read yet).
  /// `reader` must outlive the stream. Not collective: every rank reaches the same plan or error alone.
  /// ConfigError if a setting cannot work: P does not divide S, S does not divide B, the budget cannot hold
  /// one chunk per shard plus two batches and HDF5's caches, a fraction outside [0, 1), a positive fraction
  /// that selects no chunk, or too few training rows for one step per shard.
  ShardedBatchStream(const Communicator& comm, const DatasetReader& reader, const StreamOptions& options);

  /// Steps in every epoch: the pieces the smallest shard can fill. Shards' remaining rows of the epoch
  /// (fewer than B/S plus the chunk-count imbalance) are dropped; other rows are dropped in other epochs.
  std::uint64_t steps_per_epoch() const { return steps_per_epoch_; }
  /// This rank's rows per step: B/P.
  std::uint64_t local_batch_rows() const { return local_batch_rows_; }
  std::uint64_t chunk_rows() const { return chunk_rows_; }
  /// W: chunks per shard window.
  std::uint64_t window_chunks() const { return window_chunks_; }
  /// Rows of the file in training chunks, and in validation chunks (all ranks together).
  std::uint64_t training_rows() const { return training_rows_; }
  std::uint64_t validation_rows() const { return validation_rows_; }
  /// Bytes of the windows this rank allocated: its S/P shards' W*C rows of theta, x and row index.
  std::uint64_t window_bytes() const;

  /// The position of the next batch: next() returns step `step()` of epoch `epoch()`.
  std::uint64_t epoch() const { return epoch_; }
  std::uint64_t step() const { return step_; }

  /// Fills `local` with this rank's part of the next global batch (its shards' pieces in increasing shard
  /// order) and returns true; at the end of an epoch returns false instead and moves to the next epoch's
  /// step 0. Independent: ranks may read at different moments.
  bool next(Batch& local);
  /// Makes the stream continue at (epoch, step), step <= steps_per_epoch(), exactly as an uninterrupted one.
  void seek(std::uint64_t epoch, std::uint64_t step);

  /// Visits this rank's validation rows once, in file order, in batches of at most local_batch_rows(): the
  /// chunks of validation shards s = rank (mod P), in increasing s. The rows visited on all ranks together
  /// are the validation rows, whatever the number of ranks. Does not disturb the training position.
  void for_each_validation_batch(const std::function<void(const Batch&)>& visit) const;

 private:
  struct Shard {
    std::vector<std::uint64_t> chunks;  // this shard's training chunks, increasing
    // Streaming state for the current epoch.
    std::vector<std::uint64_t> order;          // chunks in this epoch's order
    std::vector<std::uint64_t> window_starts;  // position of each window's first row, and the total
    std::uint64_t loaded_window = 0;
    bool window_loaded = false;
    std::uint64_t position = 0;  // rows of this epoch's sequence handed out so far
    std::vector<double> theta;   // the loaded window, W*C rows
    std::vector<double> x;
    std::vector<double> gold;
    std::vector<std::uint64_t> rows;
  };

  // The constructor's steps, in the order it takes them. Sends each chunk to validation (validation_chunks_
  // and the row counts) or training; returns the training chunks, increasing.
  std::vector<std::uint64_t> split_chunks(const std::string& context);
  // Deals the training chunks to the shards, keeps this rank's, sets steps_per_epoch_; returns the most
  // chunks any shard has.
  std::uint64_t plan_shards(const std::vector<std::uint64_t>& training_chunks, const std::string& context);
  // Fixes W from the memory budget and allocates this rank's windows.
  void allocate_windows(std::uint64_t most_chunks, const std::string& context);
  std::uint64_t chunk_size(std::uint64_t chunk) const;
  std::uint64_t shuffle_index(std::uint64_t shard, std::uint64_t window_plus_one) const;
  void start_epoch(Shard& shard, std::uint64_t shard_index) const;
  void load_window(Shard& shard, std::uint64_t shard_index, std::uint64_t window) const;
  void take_piece(Shard& shard, std::uint64_t shard_index, Batch& local, std::uint64_t offset) const;

  const DatasetReader& reader_;
  StreamOptions options_;
  int rank_ = 0;
  int n_ranks_ = 1;
  std::uint64_t chunk_rows_ = 0;
  std::size_t gold_columns_ = 0;
  std::uint64_t n_chunks_ = 0;
  std::uint64_t piece_rows_ = 0;  // B/S
  std::uint64_t local_batch_rows_ = 0;
  std::uint64_t window_chunks_ = 0;
  std::uint64_t steps_per_epoch_ = 0;
  std::uint64_t training_rows_ = 0;
  std::uint64_t validation_rows_ = 0;
  std::vector<std::uint64_t> validation_chunks_;  // increasing
  std::vector<Shard> shards_;                     // this rank's shards: s = rank_ + i * n_ranks_
  std::uint64_t epoch_ = 0;
  std::uint64_t step_ = 0;
};

}  // namespace nsbi::distributed
