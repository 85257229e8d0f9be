#pragma once
// Embarrassingly parallel work (toy blocks of calibrate/coverage/test: DESIGN.md "Execution model"), handed
// out dynamically and journaled so that an interrupted campaign resumes without redoing finished items.
//
// Work items are 0 .. n_items − 1; the result of an item is `item_size` doubles and depends only on the
// item index (never on which rank computed it), so the merged results are the same bits for any number of
// ranks and any interruption history.
//
// Distribution: a shared counter on rank 0 (an MPI window, MPI_Fetch_and_op): a rank takes the next item
// when it is ready, so fast and slow ranks balance themselves, and no rank is spent as a dispatcher.
//
// Journal (resume): every rank appends each finished item to its own file
// <directory>/<run-id>-rank<r>.journal, opened by this run (run-id: a random tag chosen by rank 0, so files
// from earlier runs with another rank count are never appended to). A file starts with a header (magic
// "NSBIJRN1", the identity string), then holds records {u64 item, u64 item_size, f64[item_size], u64
// checksum}; records are flushed to the OS after every item and synced to disk at least every few
// seconds. At start, every journal in the directory is read: records of complete, checksummed items count
// as done; a torn last record (the process died while writing) is ignored. A journal with another identity
// is a ConfigError (the caller removes the directory first when --force).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/distributed/communicator.hpp"

namespace nsbi {

struct WorkQueueOptions {
  std::string directory;  // holds the journals; created when missing
  std::string identity;   // what the results are of (e.g. a hash of config + seed); must match to resume
  std::uint64_t n_items = 0;
  std::size_t item_size = 0;  // doubles per item result, ≥ 1
  /// Polled before each item is taken: when it returns true on a rank, that rank takes no more items.
  std::function<bool()> stop_requested;
  /// Called on rank 0 only, after each of its items and whenever it takes an item, with the number of items
  /// finished so far by all ranks as far as rank 0 knows (earlier runs included) and that number at start.
  std::function<void(std::uint64_t done, std::uint64_t done_at_start)> progress;
};

struct WorkQueueResult {
  bool interrupted = false;               // some rank stopped early: results incomplete, journals kept
  std::uint64_t items_done_at_start = 0;  // items found in the journals
  std::uint64_t items_computed = 0;       // items computed by this run, all ranks
  /// When not interrupted: the results of every item, [n_items × item_size] in item order, on every rank.
  std::vector<double> results;
};

/// Collective over comm. Runs `work(item, out)` (out: item_size doubles to fill) for every item not in the
/// journals, each item on exactly one rank, and returns the merged results. An exception from `work` on
/// any rank becomes the same CollectiveError on every rank (after the other ranks finish their current
/// item); items finished before it stay journaled. Non-finite values in `out` are allowed (the caller
/// decides what they mean).
WorkQueueResult run_work_queue(const Communicator& comm, const WorkQueueOptions& options,
                               const std::function<void(std::uint64_t item, double* out)>& work);

/// Removes the journals of `directory` (and the directory if it is then empty): collective, rank 0 acts.
/// Called after the merged results are safely written, and by --force.
void remove_work_journals(const Communicator& comm, const std::string& directory);

}  // namespace nsbi
