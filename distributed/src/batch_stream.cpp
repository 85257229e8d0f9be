#include "nsbi/distributed/batch_stream.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "nsbi/core/rng.hpp"

namespace nsbi::distributed {
namespace {

// Layout of the Philox stream index for Purpose::shuffle: epoch (24 bits) | shard (16) | window + 1 (24),
// where "window + 1" = 0 is the shard's chunk order of that epoch.
constexpr unsigned shard_shift = 24;
constexpr unsigned epoch_shift = 40;
constexpr std::uint64_t max_shards = std::uint64_t{1} << 16;
constexpr std::uint64_t max_windows = (std::uint64_t{1} << 24) - 1;
constexpr std::uint64_t max_epochs = std::uint64_t{1} << 24;

// [begin, end) of part `part` when `n` items are cut into `parts` contiguous runs of nearly equal length.
std::pair<std::uint64_t, std::uint64_t> run_of(std::uint64_t n, std::uint64_t parts, std::uint64_t part) {
  return {n / parts * part + std::min(part, n % parts),
          n / parts * (part + 1) + std::min(part + 1, n % parts)};
}

// ConfigError (prefixed by `context`) unless the shard count, batch size and validation fraction can work on
// `n_ranks` ranks.
void check_options(const StreamOptions& options, std::uint64_t n_ranks, const std::string& context) {
  const std::uint64_t n_shards = options.n_shards;
  const std::uint64_t batch = options.batch_size;
  if (n_shards == 0 || n_shards > max_shards)
    throw ConfigError(context + "n_shards = " + std::to_string(n_shards) + " must be in [1, " +
                      std::to_string(max_shards) + "]");
  if (n_shards % n_ranks != 0)
    throw ConfigError(context + "n_shards = " + std::to_string(n_shards) + " is not a multiple of the " +
                      std::to_string(n_ranks) +
                      " MPI ranks; the global batch is the same for every rank count that divides n_shards, "
                      "so run on such a count or choose n_shards (e.g. 16, 64) accordingly");
  if (batch == 0 || batch % n_shards != 0)
    throw ConfigError(context + "batch_size = " + std::to_string(batch) +
                      " must be a positive multiple of n_shards = " + std::to_string(n_shards));
  const double fraction = options.validation_fraction;
  if (!std::isfinite(fraction) || fraction < 0.0 || fraction >= 1.0)
    throw ConfigError(context + "validation_fraction = " + std::to_string(fraction) + " must be in [0, 1)");
}

std::string bytes_text(std::uint64_t bytes) {
  return std::to_string(bytes) + " bytes (" + std::to_string(bytes >> 20) + " MiB)";
}

}  // namespace

ShardedBatchStream::ShardedBatchStream(const Communicator& comm, const DatasetReader& reader,
                                       const StreamOptions& options)
    : reader_(reader), options_(options), rank_(comm.rank()), n_ranks_(comm.size()) {
  const std::string context = "nsbi::ShardedBatchStream for '" + reader_.path() + "': ";
  check_options(options_, static_cast<std::uint64_t>(n_ranks_), context);
  if (options_.gold && !reader_.has_gold())
    throw InputError(context +
                     "the training needs gold (/gold/log_r and /gold/score), which this file does "
                     "not have: simulate it with simulate.gold: true (docs/formats.md)");
  gold_columns_ = options_.gold ? reader_.gold_columns() : 0;

  const std::uint64_t n_rows = reader_.n_rows();
  chunk_rows_ = options_.chunk_rows != 0
                    ? options_.chunk_rows
                    : reader_.recorded_chunk_rows().value_or(StreamOptions::default_chunk_rows);
  chunk_rows_ = std::min(chunk_rows_, n_rows);
  n_chunks_ = (n_rows + chunk_rows_ - 1) / chunk_rows_;
  const std::vector<std::uint64_t> training_chunks = split_chunks(context);

  piece_rows_ = options_.batch_size / options_.n_shards;
  local_batch_rows_ = options_.batch_size / static_cast<std::uint64_t>(n_ranks_);
  allocate_windows(plan_shards(training_chunks, context), context);
  seek(0, 0);
}

std::vector<std::uint64_t> ShardedBatchStream::split_chunks(const std::string& context) {
  // The split depends on (split seed, chunk) only: the same chunks are held out whatever the rank count.
  const double fraction = options_.validation_fraction;
  std::vector<std::uint64_t> training_chunks;
  for (std::uint64_t chunk = 0; chunk < n_chunks_; ++chunk) {
    const bool held_out =
        fraction > 0.0 && rng::Stream(options_.split_seed, rng::Purpose::split, chunk).uniform() < fraction;
    (held_out ? validation_chunks_ : training_chunks).push_back(chunk);
    (held_out ? validation_rows_ : training_rows_) += chunk_size(chunk);
  }
  if (fraction > 0.0 && validation_chunks_.empty())
    throw ConfigError(context + "validation_fraction = " + std::to_string(fraction) +
                      " selects none of the " + std::to_string(n_chunks_) + " chunks of " +
                      std::to_string(chunk_rows_) + " rows; raise it or lower chunk_rows");
  return training_chunks;
}

std::uint64_t ShardedBatchStream::plan_shards(const std::vector<std::uint64_t>& training_chunks,
                                              const std::string& context) {
  const std::uint64_t n_shards = options_.n_shards;
  const auto n_ranks = static_cast<std::uint64_t>(n_ranks_);
  // Every rank plans every shard (a few integers per chunk), so all agree on the epoch length unasked.
  std::uint64_t smallest_shard = reader_.n_rows();
  std::uint64_t most_chunks = 0;
  for (std::uint64_t s = 0; s < n_shards; ++s) {
    const auto [first, last] = run_of(training_chunks.size(), n_shards, s);
    std::uint64_t rows = 0;
    for (std::uint64_t i = first; i < last; ++i) rows += chunk_size(training_chunks[i]);
    smallest_shard = std::min(smallest_shard, rows);
    most_chunks = std::max(most_chunks, last - first);
    if (s % n_ranks == static_cast<std::uint64_t>(rank_)) {
      Shard shard;
      shard.chunks.assign(training_chunks.begin() + static_cast<std::ptrdiff_t>(first),
                          training_chunks.begin() + static_cast<std::ptrdiff_t>(last));
      shards_.push_back(std::move(shard));
    }
  }
  steps_per_epoch_ = smallest_shard / piece_rows_;
  if (steps_per_epoch_ == 0)
    throw ConfigError(context + "its " + std::to_string(training_rows_) + " training rows in " +
                      std::to_string(n_shards) + " shards leave a shard with " +
                      std::to_string(smallest_shard) + " rows, fewer than the " +
                      std::to_string(piece_rows_) +
                      " it gives per step (batch_size / n_shards); lower batch_size, n_shards or chunk_rows");
  if (most_chunks > max_windows)
    throw ConfigError(context + std::to_string(most_chunks) + " chunks per shard exceed " +
                      std::to_string(max_windows) + "; raise chunk_rows or n_shards");
  return most_chunks;
}

void ShardedBatchStream::allocate_windows(std::uint64_t most_chunks, const std::string& context) {
  const std::uint64_t n_shards = options_.n_shards;
  const std::uint64_t batch = options_.batch_size;
  // W from the budget of one rank holding every shard, so the shuffle does not depend on the rank count.
  const std::uint64_t row_bytes =
      (reader_.n_parameters() + reader_.n_observables() + gold_columns_) * sizeof(double) +
      sizeof(std::uint64_t);
  const std::uint64_t fixed_bytes = reader_.hdf5_memory_bytes() + 2 * batch * row_bytes;
  const std::uint64_t window_chunk_bytes = n_shards * chunk_rows_ * row_bytes;
  const std::uint64_t budget = options_.memory_budget_bytes;
  if (budget < fixed_bytes + window_chunk_bytes)
    throw ConfigError(context + "memory_budget_bytes = " + bytes_text(budget) +
                      " cannot hold one chunk per shard (" + std::to_string(n_shards) + " x " +
                      std::to_string(chunk_rows_) + " rows of " + std::to_string(row_bytes) +
                      " bytes) plus a training and a validation batch (2 x " + std::to_string(batch) +
                      " rows) and HDF5's caches (" + bytes_text(reader_.hdf5_memory_bytes()) +
                      "): it needs at least " + bytes_text(fixed_bytes + window_chunk_bytes) +
                      "; raise the budget or lower chunk_rows, n_shards or batch_size");
  window_chunks_ = std::min((budget - fixed_bytes) / window_chunk_bytes, most_chunks);

  const std::uint64_t window_rows = window_chunks_ * chunk_rows_;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    Shard& shard = shards_[i];
    shard.theta.resize(window_rows * reader_.n_parameters());
    shard.x.resize(window_rows * reader_.n_observables());
    shard.gold.resize(window_rows * gold_columns_);
    shard.rows.resize(window_rows);
    shard.theta.shrink_to_fit();
    shard.x.shrink_to_fit();
    shard.gold.shrink_to_fit();
    shard.rows.shrink_to_fit();
  }
}

std::uint64_t ShardedBatchStream::chunk_size(std::uint64_t chunk) const {
  return std::min(chunk_rows_, reader_.n_rows() - chunk * chunk_rows_);
}

std::uint64_t ShardedBatchStream::window_bytes() const {
  std::uint64_t bytes = 0;
  for (const Shard& shard : shards_)
    bytes += (shard.theta.capacity() + shard.x.capacity() + shard.gold.capacity()) * sizeof(double) +
             shard.rows.capacity() * sizeof(std::uint64_t);
  return bytes;
}

std::uint64_t ShardedBatchStream::shuffle_index(std::uint64_t shard, std::uint64_t window_plus_one) const {
  return (epoch_ << epoch_shift) | (shard << shard_shift) | window_plus_one;
}

void ShardedBatchStream::start_epoch(Shard& shard, std::uint64_t shard_index) const {
  shard.order = shard.chunks;
  rng::Stream draws(options_.seed, rng::Purpose::shuffle, shuffle_index(shard_index, 0));
  rng::fisher_yates(draws, shard.order.size(),
                    [&](std::uint64_t i, std::uint64_t j) { std::swap(shard.order[i], shard.order[j]); });
  // window_starts[j] = rows before window j; the last entry is the shard's total.
  shard.window_starts.assign(1, 0);
  for (std::size_t i = 0; i < shard.order.size(); i += window_chunks_) {
    std::uint64_t rows = 0;
    for (std::size_t k = i; k < std::min<std::size_t>(i + window_chunks_, shard.order.size()); ++k)
      rows += chunk_size(shard.order[k]);
    shard.window_starts.push_back(shard.window_starts.back() + rows);
  }
  shard.window_loaded = false;
  shard.position = 0;
}

void ShardedBatchStream::load_window(Shard& shard, std::uint64_t shard_index, std::uint64_t window) const {
  const std::size_t n_theta = reader_.n_parameters();
  const std::size_t n_x = reader_.n_observables();
  const std::size_t n_gold = gold_columns_;
  const std::size_t first = window * window_chunks_;
  const std::size_t last = std::min<std::size_t>(first + window_chunks_, shard.order.size());
  std::uint64_t filled = 0;
  for (std::size_t k = first; k < last; ++k) {
    // One hyperslab of whole chunk rows per array: the unit the file is stored in.
    const std::uint64_t begin = shard.order[k] * chunk_rows_;
    const std::uint64_t count = chunk_size(shard.order[k]);
    reader_.read_rows(begin, count, shard.theta.data() + filled * n_theta, shard.x.data() + filled * n_x);
    if (n_gold > 0) reader_.read_gold(begin, count, shard.gold.data() + filled * n_gold);
    for (std::uint64_t i = 0; i < count; ++i) shard.rows[filled + i] = begin + i;
    filled += count;
  }
  rng::Stream draws(options_.seed, rng::Purpose::shuffle, shuffle_index(shard_index, window + 1));
  rng::fisher_yates(draws, filled, [&](std::uint64_t i, std::uint64_t j) {
    std::swap_ranges(shard.theta.begin() + i * n_theta, shard.theta.begin() + (i + 1) * n_theta,
                     shard.theta.begin() + j * n_theta);
    std::swap_ranges(shard.x.begin() + i * n_x, shard.x.begin() + (i + 1) * n_x, shard.x.begin() + j * n_x);
    std::swap_ranges(shard.gold.begin() + i * n_gold, shard.gold.begin() + (i + 1) * n_gold,
                     shard.gold.begin() + j * n_gold);
    std::swap(shard.rows[i], shard.rows[j]);
  });
  shard.loaded_window = window;
  shard.window_loaded = true;
}

void ShardedBatchStream::take_piece(Shard& shard, std::uint64_t shard_index, Batch& local,
                                    std::uint64_t offset) const {
  const std::size_t n_theta = reader_.n_parameters();
  const std::size_t n_x = reader_.n_observables();
  for (std::uint64_t copied = 0; copied < piece_rows_;) {
    if (!shard.window_loaded || shard.position >= shard.window_starts[shard.loaded_window + 1]) {
      // The window holding `position`: the last one starting at or before it.
      const auto after =
          std::upper_bound(shard.window_starts.begin(), shard.window_starts.end(), shard.position);
      load_window(shard, shard_index, static_cast<std::uint64_t>(after - shard.window_starts.begin()) - 1);
    }
    const std::uint64_t in_window = shard.position - shard.window_starts[shard.loaded_window];
    const std::uint64_t count =
        std::min(piece_rows_ - copied, shard.window_starts[shard.loaded_window + 1] - shard.position);
    const std::uint64_t to = offset + copied;
    std::memcpy(local.theta.data() + to * n_theta, shard.theta.data() + in_window * n_theta,
                count * n_theta * sizeof(double));
    std::memcpy(local.x.data() + to * n_x, shard.x.data() + in_window * n_x, count * n_x * sizeof(double));
    if (gold_columns_ > 0)  // an empty vector's data() may be null: no pointer arithmetic on it
      std::memcpy(local.gold.data() + to * gold_columns_, shard.gold.data() + in_window * gold_columns_,
                  count * gold_columns_ * sizeof(double));
    std::memcpy(local.rows.data() + to, shard.rows.data() + in_window, count * sizeof(std::uint64_t));
    copied += count;
    shard.position += count;
  }
}

bool ShardedBatchStream::next(Batch& local) {
  if (step_ == steps_per_epoch_) {
    seek(epoch_ + 1, 0);
    return false;
  }
  local.n_rows = local_batch_rows_;
  local.theta.resize(local_batch_rows_ * reader_.n_parameters());
  local.x.resize(local_batch_rows_ * reader_.n_observables());
  local.gold.resize(local_batch_rows_ * gold_columns_);
  local.rows.resize(local_batch_rows_);
  for (std::size_t i = 0; i < shards_.size(); ++i)
    take_piece(shards_[i], rank_ + i * n_ranks_, local, i * piece_rows_);
  ++step_;
  return true;
}

void ShardedBatchStream::seek(std::uint64_t epoch, std::uint64_t step) {
  NSBI_ASSERT(step <= steps_per_epoch_, "seek to step " + std::to_string(step) + " of an epoch of " +
                                            std::to_string(steps_per_epoch_) + " steps");
  NSBI_ASSERT(epoch < max_epochs, "epoch " + std::to_string(epoch) + " beyond the shuffle index range");
  epoch_ = epoch;
  step_ = step;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    start_epoch(shards_[i], rank_ + i * n_ranks_);
    shards_[i].position = step * piece_rows_;
  }
}

void ShardedBatchStream::for_each_validation_batch(const std::function<void(const Batch&)>& visit) const {
  const std::size_t n_theta = reader_.n_parameters();
  const std::size_t n_x = reader_.n_observables();
  Batch batch;
  batch.theta.resize(local_batch_rows_ * n_theta);
  batch.x.resize(local_batch_rows_ * n_x);
  batch.gold.resize(local_batch_rows_ * gold_columns_);
  batch.rows.resize(local_batch_rows_);
  for (std::uint64_t s = static_cast<std::uint64_t>(rank_); s < options_.n_shards; s += n_ranks_) {
    const auto [first, last] = run_of(validation_chunks_.size(), options_.n_shards, s);
    for (std::uint64_t i = first; i < last; ++i) {
      const std::uint64_t chunk_begin = validation_chunks_[i] * chunk_rows_;
      const std::uint64_t chunk_end = chunk_begin + chunk_size(validation_chunks_[i]);
      for (std::uint64_t begin = chunk_begin; begin < chunk_end;) {
        const std::uint64_t count = std::min(local_batch_rows_ - batch.n_rows, chunk_end - begin);
        reader_.read_rows(begin, count, batch.theta.data() + batch.n_rows * n_theta,
                          batch.x.data() + batch.n_rows * n_x);
        if (gold_columns_ > 0)
          reader_.read_gold(begin, count, batch.gold.data() + batch.n_rows * gold_columns_);
        for (std::uint64_t k = 0; k < count; ++k) batch.rows[batch.n_rows + k] = begin + k;
        batch.n_rows += count;
        begin += count;
        if (batch.n_rows == local_batch_rows_) {
          visit(batch);
          batch.n_rows = 0;
        }
      }
    }
  }
  if (batch.n_rows == 0) return;
  // The last batch is short: its buffers hold exactly its rows, like every other batch's.
  batch.theta.resize(batch.n_rows * n_theta);
  batch.x.resize(batch.n_rows * n_x);
  batch.gold.resize(batch.n_rows * gold_columns_);
  batch.rows.resize(batch.n_rows);
  visit(batch);
}

}  // namespace nsbi::distributed
