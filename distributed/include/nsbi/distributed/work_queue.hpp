#pragma once
// Embarrassingly parallel work (the toy blocks of calibrate, coverage and test: independent items, each
// computed by one rank, no communication between items), handed out dynamically and journaled so that an
// interrupted campaign resumes without redoing finished items.
//
// Work items are 0 .. n_items − 1; the result of an item is `item_size` doubles and depends only on the
// item index (never on which rank computed it), so the merged results are the same bits for any number of
// ranks and any interruption history.
//
// Distribution: a shared counter on rank 0 (an MPI window, MPI_Fetch_and_op): a rank takes the next item
// when it is ready, so fast and slow ranks balance themselves, and no rank is spent as a dispatcher.
//
// Journal (resume): every rank appends each finished item to its own file
// <directory>/<run-id>-rank<r>.journal (<run-id>-slice<k>of<K>-rank<r>.journal in a sliced run), opened by
// this run (run-id: a random tag chosen by rank 0, so files from earlier runs with another rank count are
// never appended to). A file starts with a header (magic
// "NSBIJRN1", the identity string), then holds records {u64 item, u64 item_size, f64[item_size], u64
// checksum}; records are flushed to the OS after every item and synced to disk at least every few
// seconds. At start, every journal in the directory is read: records of complete, checksummed items count
// as done; a torn last record (the process died while writing) is ignored. A journal with another identity
// is a ConfigError (the caller removes the directory first when --force).
//
// Slices (SLURM job arrays, docs/slurm.md): K independent runs, each with its own communicator, may share
// the items: slice k of K computes only the items i with i % K == k and merges nothing. A sliced run reads
// only the journals of its own slice and of unsliced runs (not its siblings', which are being written while
// it reads); an unsliced run reads them all, so it finds every item the slices finished.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"

namespace nsbi::distributed {

/// Slice `index` of `count`: the items i with i % count == index.
struct WorkSlice {
  std::uint64_t index = 0;
  std::uint64_t count = 1;

  bool whole() const { return count == 1; }
  bool contains(std::uint64_t item) const { return item % count == index; }
  /// How many of the items 0 .. n_items − 1 are in the slice.
  std::uint64_t size(std::uint64_t n_items) const {
    return index < n_items ? (n_items - index - 1) / count + 1 : 0;
  }
};

struct WorkQueueOptions {
  std::string directory;  // holds the journals; created when missing
  std::string identity;   // what the results are of (e.g. a hash of config + seed); must match to resume
  std::uint64_t n_items = 0;
  std::size_t item_size = 0;  // doubles per item result, ≥ 1
  WorkSlice slice;            // which items this run computes (all by default)
  /// Polled before each item is taken: when it returns true on a rank, that rank takes no more items and the
  /// run ends interrupted.
  std::function<bool()> stop_requested;
  /// Called on rank 0 only, after each of its items and whenever it takes an item, with the number of items
  /// finished so far by all ranks as far as rank 0 knows (earlier runs included) and that number at start.
  std::function<void(std::uint64_t done, std::uint64_t done_at_start)> progress;
};

struct WorkQueueResult {
  std::uint64_t items_done_at_start = 0;  // items of the slice found in the journals
  std::uint64_t items_computed = 0;       // items computed by this run, all ranks
  /// When the slice is whole: the results of every item, [n_items × item_size] in item
  /// order, on every rank. Empty for a sliced run.
  std::vector<double> results;
};

/// Collective over comm. Runs `work(item, out)` (out: item_size doubles to fill) for every item not in the
/// journals, each item on exactly one rank, and returns the merged results. An exception from `work` on
/// any rank becomes the same CollectiveError on every rank (after the other ranks finish their current
/// item); items finished before it stay journaled. Non-finite values in `out` are allowed (the caller
/// decides what they mean). A run that stops early (options.stop_requested on some rank) throws a
/// CollectiveError with ExitCode::interrupted on every rank once every rank has finished its current item;
/// the finished items stay journaled and the next run resumes from them.
WorkQueueResult run_work_queue(const Communicator& comm, const WorkQueueOptions& options,
                               const std::function<void(std::uint64_t item, double* out)>& work);

/// What the journals of `directory` hold, for progress reports (`nsbi status`): serial and read-only, no
/// identity check; a torn or corrupt record ends the reading of its file, files that are not journals
/// are skipped. Times are seconds since the epoch (0 when unknown).
struct WorkJournalSummary {
  std::uint64_t items = 0;  // distinct items finished, over every journal
  std::size_t files = 0;
  double first_created = 0;  // the oldest journal's creation (birth) time, where the file system keeps it
  double last_modified = 0;  // the newest record's time
};
WorkJournalSummary summarize_work_journals(const std::string& directory);

/// Removes the journals of `directory` (and the directory if it is then empty): collective, rank 0 acts.
/// Called after the merged results are safely written, and by --force.
void remove_work_journals(const Communicator& comm, const std::string& directory);

}  // namespace nsbi::distributed
