#include "nsbi/distributed/block_schedule.hpp"

#include <algorithm>

#include "nsbi/core/error.hpp"

namespace nsbi::distributed {

BlockSchedule::BlockSchedule(std::uint64_t n_rows, std::uint64_t block_rows)
    : n_rows_(n_rows), block_rows_(block_rows), n_blocks_(0) {
  NSBI_ASSERT(block_rows > 0, "block size must be positive");
  n_blocks_ = (n_rows + block_rows - 1) / block_rows;
}

RowRange BlockSchedule::rows(std::uint64_t block) const {
  NSBI_ASSERT(block < n_blocks_, "block index out of range");
  const std::uint64_t begin = block * block_rows_;
  return {begin, std::min(begin + block_rows_, n_rows_)};
}

std::uint64_t BlockSchedule::rounds(std::size_t n_pending, int n_ranks) {
  return (n_pending + static_cast<std::size_t>(n_ranks) - 1) / static_cast<std::size_t>(n_ranks);
}

std::optional<std::uint64_t> BlockSchedule::block_for(const std::vector<std::uint64_t>& pending,
                                                      std::uint64_t round, int rank, int n_ranks) {
  const std::uint64_t slot = round * static_cast<std::uint64_t>(n_ranks) + static_cast<std::uint64_t>(rank);
  if (slot >= pending.size()) return std::nullopt;
  return pending[slot];
}

}  // namespace nsbi::distributed
