#pragma once
// Splits N rows into fixed blocks (the unit of work, of collective writes and of resume) and deals the
// pending blocks to ranks round by round, so that every rank takes part in every collective write.
// What a row contains never depends on which rank computes it: only the block bookkeeping lives here.

#include <cstdint>
#include <optional>
#include <vector>

namespace nsbi::distributed {

struct RowRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size() const { return end - begin; }
};

class BlockSchedule {
 public:
  BlockSchedule(std::uint64_t n_rows, std::uint64_t block_rows);

  std::uint64_t n_rows() const { return n_rows_; }
  std::uint64_t block_rows() const { return block_rows_; }
  std::uint64_t n_blocks() const { return n_blocks_; }
  RowRange rows(std::uint64_t block) const;

  /// The rounds needed to finish `pending` (block ids) on `n_ranks` ranks: ceil(pending / n_ranks).
  static std::uint64_t rounds(std::size_t n_pending, int n_ranks);
  /// The block `rank` handles in `round`, or nothing when that rank idles in the last round.
  static std::optional<std::uint64_t> block_for(const std::vector<std::uint64_t>& pending,
                                                std::uint64_t round, int rank, int n_ranks);

 private:
  std::uint64_t n_rows_;
  std::uint64_t block_rows_;
  std::uint64_t n_blocks_;
};

}  // namespace nsbi::distributed
