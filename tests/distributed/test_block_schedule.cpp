#include <gtest/gtest.h>

#include <set>

#include "nsbi/distributed/block_schedule.hpp"

namespace nsbi::distributed {
namespace {

TEST(BlockSchedule, BlocksCoverEveryRowOnce) {
  const BlockSchedule schedule(1003, 100);
  ASSERT_EQ(schedule.n_blocks(), 11u);
  std::uint64_t next = 0;
  for (std::uint64_t b = 0; b < schedule.n_blocks(); ++b) {
    EXPECT_EQ(schedule.rows(b).begin, next);
    next = schedule.rows(b).end;
  }
  EXPECT_EQ(next, 1003u);
  EXPECT_EQ(schedule.rows(10).size(), 3u);
}

TEST(BlockSchedule, RoundsDealEveryPendingBlockExactlyOnce) {
  const std::vector<std::uint64_t> pending = {0, 2, 3, 7, 8, 9, 10};
  for (int ranks : {1, 2, 3, 4, 8}) {
    std::multiset<std::uint64_t> dealt;
    const std::uint64_t rounds = BlockSchedule::rounds(pending.size(), ranks);
    EXPECT_EQ(rounds, (pending.size() + ranks - 1) / ranks);
    for (std::uint64_t round = 0; round < rounds; ++round)
      for (int rank = 0; rank < ranks; ++rank)
        if (auto block = BlockSchedule::block_for(pending, round, rank, ranks)) dealt.insert(*block);
    EXPECT_EQ(dealt, std::multiset<std::uint64_t>(pending.begin(), pending.end())) << ranks << " ranks";
  }
}

}  // namespace
}  // namespace nsbi::distributed
