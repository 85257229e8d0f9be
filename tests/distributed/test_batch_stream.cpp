// ShardedBatchStream on 1, 2 and 4 ranks: the global batch of every step equals the one-rank stream's, rows
// are used once per epoch, training and validation partition the file, epochs reshuffle, seek() resumes
// exactly, and the windows stay within the memory budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "dataset_files.hpp"
#include "nsbi/distributed/batch_stream.hpp"

namespace nsbi::distributed {
namespace {

// 10007 rows in chunks of 64: 156 full chunks and one of 23 rows. B / S = 20 rows per shard and step, which
// does not divide a window (3 chunks = 192 rows), so pieces straddle windows.
constexpr std::uint64_t n_rows = 10007;
constexpr std::uint64_t chunk = 64;
constexpr std::uint64_t n_parameters = 2;
constexpr std::uint64_t n_observables = 3;
constexpr std::uint64_t row_bytes = (n_parameters + n_observables) * 8 + 8;
constexpr std::uint64_t n_shards = 4;
constexpr std::uint64_t batch = 80;
constexpr std::uint64_t piece = batch / n_shards;
// What the budget holds besides the windows: HDF5's caches and two batches.
std::uint64_t fixed_bytes(const DatasetReader& reader) {
  return reader.hdf5_memory_bytes() + 2 * batch * row_bytes;
}

// A budget with room for three chunks per shard, and less than a fourth.
StreamOptions options(const DatasetReader& reader, double validation_fraction = 0.2) {
  StreamOptions o;
  o.seed = 20240601;
  o.split_seed = 20240601;
  o.batch_size = batch;
  o.n_shards = n_shards;
  o.memory_budget_bytes = fixed_bytes(reader) + 3 * n_shards * chunk * row_bytes + 1000;
  o.validation_fraction = validation_fraction;
  return o;
}

const std::string& dataset_path(const Communicator& world) {
  static const std::string path = [&] {
    const std::string p = test::scratch_directory(world, "stream") + "/dataset.h5";
    test::write_nsbi_dataset(world, p, n_rows, chunk, n_parameters, n_observables);
    return p;
  }();
  return path;
}

// Every row handed out carries the values the file holds for it.
void expect_rows_match_values(const Batch& b) {
  ASSERT_EQ(b.rows.size(), b.n_rows);
  ASSERT_EQ(b.theta.size(), b.n_rows * n_parameters);
  ASSERT_EQ(b.x.size(), b.n_rows * n_observables);
  for (std::uint64_t i = 0; i < b.n_rows; ++i) {
    for (std::uint64_t c = 0; c < n_parameters; ++c)
      ASSERT_EQ(b.theta[i * n_parameters + c], test::theta_value(b.rows[i], c)) << "row " << b.rows[i];
    for (std::uint64_t c = 0; c < n_observables; ++c)
      ASSERT_EQ(b.x[i * n_observables + c], test::x_value(b.rows[i], c)) << "row " << b.rows[i];
  }
}

// The global batch on every rank: shard s's piece is at offset (s / P) * piece of rank s % P's local batch.
std::vector<std::uint64_t> global_rows(const Communicator& world, const Batch& local,
                                       std::uint64_t batch_size = batch) {
  const auto n_ranks = static_cast<std::uint64_t>(world.size());
  const std::uint64_t piece_rows = batch_size / n_shards;
  const std::vector<std::uint64_t> gathered = world.all_gather(local.rows.data(), local.rows.size());
  std::vector<std::uint64_t> global;
  for (std::uint64_t s = 0; s < n_shards; ++s) {
    const auto from = gathered.begin() + static_cast<std::ptrdiff_t>((s % n_ranks) * (batch_size / n_ranks) +
                                                                     (s / n_ranks) * piece_rows);
    global.insert(global.end(), from, from + static_cast<std::ptrdiff_t>(piece_rows));
  }
  return global;
}

// How often each row was visited by the validation passes of all ranks.
std::vector<std::int64_t> validation_visits(const Communicator& world, const ShardedBatchStream& stream) {
  std::vector<std::int64_t> visits(n_rows, 0);
  stream.for_each_validation_batch([&](const Batch& b) {
    EXPECT_LE(b.n_rows, stream.local_batch_rows());
    EXPECT_GT(b.n_rows, 0u);
    expect_rows_match_values(b);
    for (std::uint64_t row : b.rows) ++visits[row];
  });
  world.sum_in_place(visits.data(), visits.size());
  return visits;
}

TEST(ShardedBatchStream, GlobalBatchesEqualTheOneRankStream) {
  const Communicator world;
  const Communicator self(MPI_COMM_SELF);
  const DatasetReader reader(dataset_path(world));
  ShardedBatchStream stream(world, reader, options(reader));
  ShardedBatchStream serial(self, reader, options(reader));
  ASSERT_EQ(stream.steps_per_epoch(), serial.steps_per_epoch());
  EXPECT_EQ(stream.local_batch_rows(), batch / static_cast<std::uint64_t>(world.size()));
  Batch local;
  Batch reference;
  // Two and a half epochs, through the epoch boundaries.
  const std::uint64_t steps = stream.steps_per_epoch();
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    for (std::uint64_t step = 0; step < (epoch == 2 ? steps / 2 : steps); ++step) {
      ASSERT_TRUE(stream.next(local));
      ASSERT_TRUE(serial.next(reference));
      expect_rows_match_values(local);
      ASSERT_EQ(global_rows(world, local), reference.rows) << "epoch " << epoch << " step " << step;
    }
    if (epoch < 2) {
      EXPECT_FALSE(stream.next(local));
      EXPECT_FALSE(serial.next(reference));
    }
  }
  // The validation rows are the same set whatever the rank count.
  const auto visits = validation_visits(world, stream);
  std::vector<std::int64_t> serial_visits(n_rows, 0);
  serial.for_each_validation_batch([&](const Batch& b) {
    for (std::uint64_t row : b.rows) ++serial_visits[row];
  });
  EXPECT_EQ(visits, serial_visits);
}

TEST(ShardedBatchStream, EveryTrainingRowOncePerEpochBesidesTheLeftovers) {
  const Communicator world;
  const DatasetReader reader(dataset_path(world));
  ShardedBatchStream stream(world, reader, options(reader));
  const auto visits = validation_visits(world, stream);
  Batch local;
  std::vector<int> seen(n_rows, 0);
  std::uint64_t steps = 0;
  while (stream.next(local)) {
    for (std::uint64_t row : global_rows(world, local)) ++seen[row];
    ++steps;
  }
  EXPECT_EQ(steps, stream.steps_per_epoch());
  EXPECT_EQ(stream.epoch(), 1u);
  EXPECT_EQ(stream.step(), 0u);
  std::uint64_t distinct = 0;
  for (std::uint64_t row = 0; row < n_rows; ++row) {
    ASSERT_LE(seen[row], 1) << "row " << row << " twice in one epoch";
    ASSERT_FALSE(seen[row] == 1 && visits[row] != 0) << "validation row " << row << " used for training";
    distinct += static_cast<std::uint64_t>(seen[row]);
  }
  EXPECT_EQ(distinct, steps * batch);
  // Shards get runs of training chunks differing by at most one chunk, and the partial chunk shifts that
  // by less than another: a shard holds less than 2 chunks more than the smallest, which leaves < 1 piece.
  const std::uint64_t leftovers = stream.training_rows() - steps * batch;
  EXPECT_LT(leftovers, n_shards * (piece + 2 * chunk));
}

TEST(ShardedBatchStream, BalancedFileUsesEveryRowEachEpoch) {
  // 2048 rows = 4 shards x 8 chunks x 64 rows, no validation: no leftovers, so each epoch is a permutation.
  const Communicator world;
  const std::string path = test::scratch_directory(world, "stream") + "/balanced.h5";
  test::write_nsbi_dataset(world, path, 2048, chunk, n_parameters, n_observables);
  const DatasetReader reader(path);
  StreamOptions o = options(reader, 0.0);
  o.batch_size = 64;
  ShardedBatchStream stream(world, reader, o);
  EXPECT_EQ(stream.steps_per_epoch(), 2048u / 64u);
  EXPECT_EQ(stream.validation_rows(), 0u);
  Batch local;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<std::uint64_t> order;
    while (stream.next(local)) {
      const auto rows = global_rows(world, local, o.batch_size);
      order.insert(order.end(), rows.begin(), rows.end());
    }
    std::sort(order.begin(), order.end());
    std::vector<std::uint64_t> all(2048);
    for (std::uint64_t i = 0; i < all.size(); ++i) all[i] = i;
    EXPECT_EQ(order, all) << "epoch " << epoch;
  }
}

TEST(ShardedBatchStream, ValidationAndTrainingPartitionTheFile) {
  const Communicator world;
  const DatasetReader reader(dataset_path(world));
  const ShardedBatchStream stream(world, reader, options(reader));
  const auto visits = validation_visits(world, stream);
  std::uint64_t validation = 0;
  for (std::uint64_t row = 0; row < n_rows; ++row) {
    ASSERT_LE(visits[row], 1) << "validation row " << row << " visited twice";
    validation += static_cast<std::uint64_t>(visits[row]);
  }
  EXPECT_EQ(validation, stream.validation_rows());
  EXPECT_EQ(stream.training_rows() + stream.validation_rows(), n_rows);
  // Whole chunks are held out, each with probability 0.2.
  std::uint64_t held_out = 0;
  for (std::uint64_t c = 0; c * chunk < n_rows; ++c) {
    for (std::uint64_t row = c * chunk; row < std::min(n_rows, (c + 1) * chunk); ++row)
      ASSERT_EQ(visits[row], visits[c * chunk]) << "chunk " << c << " split between validation and training";
    held_out += static_cast<std::uint64_t>(visits[c * chunk]);
  }
  // Binomial(157, 0.2): mean 31.4, sd 5.0; the 3-sigma band is [16, 46].
  EXPECT_GE(held_out, 16u);
  EXPECT_LE(held_out, 46u);
}

TEST(ShardedBatchStream, EpochsShuffleDifferently) {
  const Communicator world;
  const Communicator self(MPI_COMM_SELF);
  const DatasetReader reader(dataset_path(world));
  ShardedBatchStream stream(self, reader, options(reader));
  Batch b;
  std::vector<std::vector<std::uint64_t>> epochs(2);
  for (auto& rows : epochs) {
    while (stream.next(b)) rows.insert(rows.end(), b.rows.begin(), b.rows.end());
  }
  EXPECT_NE(epochs[0], epochs[1]);
  // Within a window rows are shuffled, not handed out chunk by chunk: among the first batch's 19 consecutive
  // pairs of shard 0, neighbours in the file would be the exception (a chance of about 1 in 192 each).
  int neighbours = 0;
  for (std::uint64_t i = 1; i < piece; ++i) neighbours += epochs[0][i] == epochs[0][i - 1] + 1;
  EXPECT_LE(neighbours, 2);
  // Another seed, another order.
  StreamOptions other = options(reader);
  other.seed += 1;
  ShardedBatchStream reseeded(self, reader, other);
  ASSERT_TRUE(reseeded.next(b));
  EXPECT_FALSE(std::equal(b.rows.begin(), b.rows.end(), epochs[0].begin()));
}

TEST(ShardedBatchStream, SeekReproducesAContinuedStream) {
  const Communicator world;
  const DatasetReader reader(dataset_path(world));
  ShardedBatchStream continued(world, reader, options(reader));
  const std::uint64_t steps = continued.steps_per_epoch();
  // Record this rank's batches for 1.5 epochs, the end-of-epoch marker included (an empty entry).
  std::vector<std::vector<std::uint64_t>> record;
  Batch b;
  for (std::uint64_t i = 0; i < steps + 1 + steps / 2; ++i)
    record.push_back(continued.next(b) ? b.rows : std::vector<std::uint64_t>{});
  ASSERT_TRUE(record[steps].empty());
  // Resume at steps in the middle of a window, at an epoch's last step and at an epoch's end.
  for (const std::uint64_t resume : {std::uint64_t{7}, steps - 1, steps}) {
    ShardedBatchStream resumed(world, reader, options(reader));
    resumed.seek(0, resume);
    EXPECT_EQ(resumed.epoch(), 0u);
    EXPECT_EQ(resumed.step(), resume);
    for (std::uint64_t i = resume; i < record.size(); ++i) {
      const bool more = resumed.next(b);
      ASSERT_EQ(more, !record[i].empty()) << "resumed at " << resume << ", call " << i;
      if (more) {
        ASSERT_EQ(b.rows, record[i]) << "resumed at " << resume << ", call " << i;
      }
    }
  }
  // Into the second epoch, and backwards on a stream that has run ahead.
  continued.seek(1, 3);
  ASSERT_TRUE(continued.next(b));
  EXPECT_EQ(b.rows, record[steps + 1 + 3]);
  continued.seek(0, 0);
  ASSERT_TRUE(continued.next(b));
  EXPECT_EQ(b.rows, record[0]);
}

TEST(ShardedBatchStream, MemoryStaysWithinTheBudget) {
  const Communicator world;
  const auto n_ranks = static_cast<std::uint64_t>(world.size());
  const DatasetReader reader(dataset_path(world));
  const ShardedBatchStream stream(world, reader, options(reader));
  EXPECT_EQ(stream.chunk_rows(), chunk);  // the file's own chunking
  // The largest window that fits: 3 chunks (the budget leaves room for 3 and a bit, not 4).
  EXPECT_EQ(stream.window_chunks(), 3u);
  const std::uint64_t windows = n_shards * 3 * chunk * row_bytes;
  EXPECT_LE(windows + fixed_bytes(reader), options(reader).memory_budget_bytes);
  // What the ranks allocated is exactly the windows of one rank alone, shared out.
  EXPECT_EQ(stream.window_bytes(), windows / n_ranks);
  EXPECT_EQ(world.sum(static_cast<std::int64_t>(stream.window_bytes())), static_cast<std::int64_t>(windows));
  // The batch handed out holds this rank's share of the batch, no more.
  ShardedBatchStream running(world, reader, options(reader));
  Batch b;
  ASSERT_TRUE(running.next(b));
  EXPECT_EQ(b.theta.capacity(), batch / n_ranks * n_parameters);
  EXPECT_EQ(b.rows.capacity(), batch / n_ranks);

  // A budget one byte short of one chunk per shard, two batches and HDF5's caches is refused.
  StreamOptions tight = options(reader);
  tight.memory_budget_bytes = n_shards * chunk * row_bytes + fixed_bytes(reader);
  EXPECT_EQ(ShardedBatchStream(world, reader, tight).window_chunks(), 1u);
  tight.memory_budget_bytes -= 1;
  try {
    ShardedBatchStream refused(world, reader, tight);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot hold one chunk per shard"), std::string::npos) << e.what();
  }
  // A budget larger than the data holds each shard whole, no more: 157 chunks in 4 shards, 40 at most.
  StreamOptions roomy = options(reader, 0.0);
  roomy.memory_budget_bytes = std::uint64_t{1} << 30;
  const ShardedBatchStream whole(world, reader, roomy);
  EXPECT_EQ(whole.window_chunks(), 40u);
  EXPECT_EQ(whole.window_bytes(), n_shards / n_ranks * 40 * chunk * row_bytes);
}

TEST(ShardedBatchStream, GoldTravelsWithItsRows) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "stream") + "/gold.h5";
  test::write_nsbi_dataset(world, path, 3001, chunk, n_parameters, n_observables, /*gold=*/true,
                           /*gold_theta=*/true);
  const DatasetReader reader(path);
  StreamOptions o = options(reader);
  o.gold = true;
  o.memory_budget_bytes += 3 * n_shards * chunk * (1 + 2 * n_parameters) * 8;
  ShardedBatchStream stream(world, reader, o);
  const std::size_t width = 1 + 2 * n_parameters;
  const auto expect_gold = [&](const Batch& b) {
    ASSERT_EQ(b.gold.size(), b.n_rows * width);
    expect_rows_match_values(b);
    for (std::uint64_t i = 0; i < b.n_rows; ++i)
      for (std::size_t c = 0; c < width; ++c)
        ASSERT_EQ(b.gold[i * width + c], test::gold_value(b.rows[i], c)) << "row " << b.rows[i];
  };
  Batch b;
  std::uint64_t steps = 0;
  while (stream.next(b)) {
    expect_gold(b);
    ++steps;
  }
  EXPECT_EQ(steps, stream.steps_per_epoch());
  stream.for_each_validation_batch(expect_gold);

  // Without asking for gold, none is read; asking a file without gold is an input error naming it.
  const DatasetReader plain(dataset_path(world));
  StreamOptions plain_options = options(plain);
  ShardedBatchStream without(world, reader, options(reader));
  ASSERT_TRUE(without.next(b));
  EXPECT_TRUE(b.gold.empty());
  plain_options.gold = true;
  try {
    ShardedBatchStream refused(world, plain, plain_options);
    ADD_FAILURE() << "a stream asking for gold from a file without it";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(plain.path()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("simulate.gold"), std::string::npos) << e.what();
  }
}

TEST(ShardedBatchStream, RefusesSettingsThatCannotWork) {
  const Communicator world;
  const DatasetReader reader(dataset_path(world));
  const auto refused = [&](const StreamOptions& o, const std::string& part) {
    try {
      ShardedBatchStream stream(world, reader, o);
      ADD_FAILURE() << "expected a ConfigError mentioning " << part;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  StreamOptions o = options(reader);
  o.batch_size = 82;
  refused(o, "must be a positive multiple of n_shards = 4");
  o = options(reader);
  o.validation_fraction = 1.0;
  refused(o, "must be in [0, 1)");
  o = options(reader);
  o.batch_size = 4 * 2000;  // more than a shard's ~2000 training rows per step
  o.memory_budget_bytes = std::uint64_t{1} << 30;
  refused(o, "fewer than the 2000 it gives per step");
  if (world.size() > 1) {
    o = options(reader);
    o.n_shards = static_cast<std::uint64_t>(world.size()) + 1;
    o.batch_size = o.n_shards * 10;
    refused(o, "is not a multiple of the " + std::to_string(world.size()) + " MPI ranks");
  }
}

}  // namespace
}  // namespace nsbi::distributed
