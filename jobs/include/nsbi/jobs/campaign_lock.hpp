#pragma once
// The lock of a stage on a campaign directory (docs/config.md, "One run per stage"): two runs of the same
// stage and work slice on one directory would resume each other's partial files and journals, so the second
// is refused at once, naming the first.
//
// The lock is a lease file, <campaign.dir>/work/locks/<stage>[.slice-k-of-K|.members-k-of-K].lock, that
// works on cluster file systems where flock/fcntl locks are unreliable (NFS, Lustre, GPFS): it is created
// whole (written to a temporary file, then link()ed to its name, which fails when the name exists), holds
// who runs (process id, host, SLURM job) and when the holder last renewed it, and is renewed by rewriting
// it (temporary file, rename()) from a thread of the holder every lease/6 seconds. A lease not renewed for
// its lease time, held by a process of this host that no longer exists, or by an earlier run of this
// SLURM job (requeued) is taken over with a warning. A takeover first creates the claim file
// <lock>.takeover-<token of the stale lease> with O_EXCL, so of two runs taking over at once exactly one
// wins. A holder whose renewal finds the lease taken over ends with an error without saving its progress
// (which would write beside the run that took over): at once when it runs alone, else at its stage's next
// check for stop requests.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/jobs/campaign.hpp"

namespace nsbi::jobs {

/// Seconds a lease stays valid without renewal: 60, or NSBI_LOCK_LEASE_SECONDS (a setting for tests).
double lock_lease_seconds();

/// Who holds a lease (or asks for one): the contents of a lock file.
struct LeaseHolder {
  std::string what;   // the command it runs: "calibrate --slice 1/4"
  std::string token;  // random, one per acquisition: tells the holder's lease from a successor's
  std::int64_t pid = 0;
  std::string host;           // gethostname()
  std::string boot_id;        // the kernel's boot id: a lease from before a reboot of this host is dead
  std::string pid_namespace;  // pids are compared only within one pid namespace (containers)
  std::string slurm_job_id;   // SLURM_JOB_ID, empty outside SLURM (array tasks have their own)
  std::string slurm_array;    // SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID, empty outside job arrays
  std::int64_t slurm_restart_count = 0;  // SLURM_RESTART_COUNT: incremented by each requeue
  double started = 0;                    // Unix seconds (the holder's clock)
  double renewed = 0;                    // Unix seconds of the last renewal (the holder's clock)
  double lease_seconds = 0;              // the holder's lease time

  /// This process, with `what` empty and no times.
  static LeaseHolder this_process();
  /// "pid 1234 on host node17 (SLURM job 5678, array task 5670_3), started 2026-12-04 16:50:03 UTC, lease
  /// renewed 3 s ago".
  std::string describe(double now) const;
};

/// Whether a lease read from its file still holds against `self`, who asks for it at time `now`.
struct LeaseVerdict {
  bool live = true;
  std::string why_not;  // when not live: why it may be taken over
};
LeaseVerdict judge_lease(const LeaseHolder& lease, const LeaseHolder& self, double now);

/// The lease in `path`, or nothing when there is no such file. ConfigError when it cannot be read.
std::optional<LeaseHolder> read_lease(const std::string& path);

/// A lease held by this process, renewed by a thread until release or destruction.
class LeaseLock {
 public:
  struct Options {
    double lease_seconds = 60;
    LeaseHolder self = LeaseHolder::this_process();
    /// Called once, from the renewal thread, when the lease is found taken over (or cannot be renewed for
    /// a lease time): the CLI ends the job (request_abort).
    std::function<void(const std::string& message)> on_lost;
  };

  /// Takes the lease of `path` (its directory must exist), taking over a dead one with a warning: a
  /// ConfigError naming the holder when another run holds it, an InputError when the file cannot be written.
  LeaseLock(std::string path, const std::string& what, Options options);
  LeaseLock(const LeaseLock&) = delete;
  LeaseLock& operator=(const LeaseLock&) = delete;
  /// Stops renewing and removes the file if it is still this holder's; never throws.
  ~LeaseLock();

  /// Stops renewing and removes the file: a ConfigError when the lease was lost meanwhile (naming `failure`,
  /// the error that ended the holder's work, if any).
  void release(const std::string& failure = "");
  bool lost() const { return lost_.load(); }
  const std::string& path() const { return path_; }
  const LeaseHolder& holder() const { return self_; }

 private:
  void renew_until_stopped();
  void lose(const std::string& message);
  void stop_renewing();
  bool remove_if_ours();

  std::string path_;
  LeaseHolder self_;
  std::function<void(const std::string&)> on_lost_;
  std::atomic<bool> lost_{false};
  std::string lost_message_;  // written before lost_ is set
  bool released_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread renewer_;
};

/// The lock file of `stage` (with its slice: --slice for calibrate/coverage, --members for train).
std::string stage_lock_path(const std::string& campaign_dir, const std::string& stage,
                            const distributed::WorkSlice& slice);

/// The live leases of `stage` in the campaign directory (every slice), for `nsbi status`.
std::vector<LeaseHolder> live_stage_leases(const std::string& campaign_dir, const std::string& stage);

/// Collective: runs `work` (the stage) holding the lock of `stage` and `slice`, taken on rank 0 and agreed
/// on every rank, and released at the end, also when `work` fails or is interrupted. A plain run is refused
/// while a slice of the stage runs, and a slice while the plain run runs (it merges the slices' work).
void run_locked(const Communicator& world, const Campaign& campaign, const std::string& stage,
                const distributed::WorkSlice& slice, const std::function<void()>& work);

}  // namespace nsbi::jobs
