#pragma once
// A campaign on a SLURM cluster (docs/slurm.md): `nsbi submit` turns the stages of `pipeline` into batch
// scripts chained with afterok dependencies (calibrate, coverage and ensemble training as job arrays over
// slices of their work, each followed by a merge job), and `nsbi status` says where a campaign stands.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/jobs/campaign.hpp"

namespace nsbi::jobs {

/// The `slurm` section of a campaign file (resources, launcher, arrays, preemption); called by
/// campaign_schema().
void declare_slurm(config::Schema& schema);

/// One batch script of a submission.
struct SlurmJob {
  std::string stage;  // the pipeline stage it runs
  std::string role;   // "stage" (the whole stage), "array" (slices of it), "merge" (after the array)
  std::string file;   // <campaign.dir>/slurm/<nn>-<stage>[-array|-merge].sbatch
  std::uint64_t array_size = 0;    // tasks of a job array; 0 for a plain job
  std::vector<std::size_t> after;  // indices (into SubmitPlan::jobs) of the jobs it waits for (afterok)
  std::string script;              // the script's text
};

struct SubmitPlan {
  std::string directory;       // <campaign.dir>/slurm, absolute
  std::string config_file;     // <directory>/config.yaml: the resolved config every job runs
  std::string config_text;     // its contents (campaign.dir made absolute)
  std::vector<SlurmJob> jobs;  // in submission order
};

/// The scripts for every stage of a validated campaign's pipeline (nothing is written).
SubmitPlan plan_submission(const Campaign& campaign);

/// Writes the plan's config and scripts into its directory and, unless `dry_run`, submits them in order
/// with `sbatch --parsable` (each with --dependency=afterok on its predecessors) and records the job ids
/// in <directory>/jobs.json. What it does (and with --dry-run the scripts) is printed to `out`.
/// ConfigError for a failed sbatch (its message quoted), InputError for an unwritable directory.
void submit_campaign(const Campaign& campaign, bool dry_run, std::ostream& out);

/// Runs `command` (argv, no shell: the first word is looked up on PATH) without the variables an MPI runtime
/// sets in its processes, and returns its stdout; its exit status (127: it could not run) in `status`.
/// InputError when no process can be started.
std::string run_command(const std::vector<std::string>& command, int& status, bool discard_stderr = false);

/// `nsbi status TARGET`: TARGET is a campaign directory written by `nsbi submit` (its slurm/config.yaml
/// is read) or a campaign file (with `overrides` applied). Prints, per stage of the pipeline, its state
/// (complete, running, interrupted, pending, failed), work done, rate and ETA where they can be told, and
/// the SLURM jobs of jobs.json with their states (squeue/sacct when present): a table, or JSON.
void print_status(const std::string& target, const std::vector<std::string>& overrides, bool as_json,
                  std::ostream& out);

}  // namespace nsbi::jobs
