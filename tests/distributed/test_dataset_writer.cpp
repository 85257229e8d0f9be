// DatasetWriter's checkpoints on 1, 2 and 4 ranks: a block counts as done only once a checkpoint has
// recorded it, so a run that dies between checkpoints redoes exactly the blocks written since the last one.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataset_files.hpp"
#include "profiling_regions.hpp"

namespace nsbi::distributed {
namespace {

constexpr std::uint64_t n_rows = 120;
constexpr std::uint64_t block_rows = 5;  // 24 blocks

DatasetDescription description(const Communicator& comm) {
  DatasetDescription d;
  d.simulator = "counting";
  d.parameter_names = {"t"};
  d.observable_names = {"x"};
  d.identity = "checkpoint test";
  d.provenance = collect_provenance({"test"}, comm.size());
  d.n_rows = n_rows;
  d.block_rows = block_rows;
  return d;
}

// Writes `rounds` rounds of the writer's pending blocks (from round `first` on) and returns the blocks
// written, on every rank.
std::vector<std::uint64_t> write_rounds(const Communicator& comm, DatasetWriter& writer, std::uint64_t first,
                                        std::uint64_t rounds) {
  const std::vector<double> values(block_rows, 1.0);
  std::vector<std::uint64_t> written;
  for (std::uint64_t round = first; round < first + rounds; ++round) {
    const auto block = BlockSchedule::block_for(writer.pending_blocks(), round, comm.rank(), comm.size());
    writer.write_round(block, values.data(), values.data());
    for (int rank = 0; rank < comm.size(); ++rank) {
      const auto any = BlockSchedule::block_for(writer.pending_blocks(), round, rank, comm.size());
      if (any) written.push_back(*any);
    }
  }
  return written;
}

// The blocks a resuming writer finds missing.
std::vector<std::uint64_t> pending_after_resume(const Communicator& comm, const std::string& path) {
  DatasetWriter writer(comm, path, description(comm), /*force=*/false, 1e9);
  EXPECT_EQ(writer.state(), DatasetWriter::State::resumed);
  return writer.pending_blocks();
}

std::vector<std::uint64_t> all_but(const std::vector<std::uint64_t>& done) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t b = 0; b < n_rows / block_rows; ++b)
    if (std::find(done.begin(), done.end(), b) == done.end()) out.push_back(b);
  return out;
}

TEST(DatasetWriter, RecordsBlocksOnlyAtCheckpoints) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "writer") + "/checkpoints.h5";
  std::vector<std::uint64_t> recorded;
  {
    DatasetWriter writer(world, path, description(world), /*force=*/true, 1e9);  // no timed checkpoint
    const auto first = write_rounds(world, writer, 0, 2);
    writer.checkpoint();
    recorded = first;
    write_rounds(world, writer, 2, 1);  // written, never recorded: the run "dies" here
  }
  EXPECT_EQ(pending_after_resume(world, path), all_but(recorded));
}

TEST(DatasetWriter, ZeroSecondsRecordsEveryRound) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "writer") + "/every_round.h5";
  std::vector<std::uint64_t> written;
  {
    DatasetWriter writer(world, path, description(world), /*force=*/true, 0.0);
    written = write_rounds(world, writer, 0, 3);
  }
  EXPECT_EQ(pending_after_resume(world, path), all_but(written));
}

TEST(DatasetWriter, FinishRecordsTheLastBlocks) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "writer") + "/finished.h5";
  DatasetWriter writer(world, path, description(world), /*force=*/true, 1e9);
  const std::uint64_t rounds = BlockSchedule::rounds(writer.pending_blocks().size(), world.size());
  write_rounds(world, writer, 0, rounds);
  writer.finish();  // asserts that every block is recorded
  DatasetWriter again(world, path, description(world), /*force=*/false, 1e9);
  EXPECT_EQ(again.state(), DatasetWriter::State::complete);
}

// The simulate stage's phases as a Kokkos tool sees them: each round's write, then its checkpoint.
TEST(DatasetWriter, WritesAndCheckpointsAreProfilingRegions) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "writer") + "/regions.h5";
  DatasetWriter writer(world, path, description(world), /*force=*/true, 0.0);
  const test::RecordedRegions regions;
  write_rounds(world, writer, 0, 1);
  EXPECT_EQ(regions.events(),
            (std::vector<std::string>{"+nsbi/simulate/write_rows", "-", "+nsbi/simulate/checkpoint", "-"}));
}

}  // namespace
}  // namespace nsbi::distributed
