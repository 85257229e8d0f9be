// nsbi status (docs/slurm.md, "Status"): where a campaign stands, from its files alone (so it works without
// SLURM), plus the states SLURM reports for the jobs `nsbi submit` recorded.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/distributed/checkpoint.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/jobs/campaign_lock.hpp"
#include "nsbi/jobs/coverage_sbc.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/jobs/slurm.hpp"

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

// Partial outputs modified this recently count as a stage at work when SLURM does not say otherwise.
constexpr double running_window_seconds = 120;

double now_seconds() { return static_cast<double>(std::time(nullptr)); }

double modified_seconds(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return 0;
  return static_cast<double>(info.st_mtim.tv_sec) + 1e-9 * static_cast<double>(info.st_mtim.tv_nsec);
}

// The creation (birth) time where the file system keeps it, else 0.
double born_seconds(const std::string& path) {
  struct statx times {};
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_BTIME, &times) != 0 || !(times.stx_mask & STATX_BTIME)) return 0;
  return static_cast<double>(times.stx_btime.tv_sec) + 1e-9 * static_cast<double>(times.stx_btime.tv_nsec);
}

bool file_exists(const std::string& path) {
  std::error_code error;
  return fs::exists(path, error);
}

struct JobState {
  std::string job_id;
  std::string role;
  std::uint64_t array_size = 0;
  std::map<std::string, int> states;  // SLURM state -> tasks in it ("UNKNOWN" when SLURM has forgotten)
};

struct StageStatus {
  std::string stage;
  std::string state = "pending";  // complete, running, interrupted, pending, failed
  std::uint64_t done = 0, total = 0;
  std::string unit;
  std::string detail;
  double rate = 0;  // units per second, 0 when unknown
  double eta = -1;  // seconds, < 0 when unknown
  std::vector<JobState> jobs;
};

// The states of job `id` (all its array tasks): scontrol while SLURM remembers the job, else sacct (when
// accounting is on), else nothing.
std::map<std::string, int> slurm_states(const std::string& id) {
  std::map<std::string, int> states;
  int status = 0;
  const std::string shown =
      run_command({"scontrol", "-o", "show", "job", id}, status, /*discard_stderr=*/true);
  if (status == 0) {
    std::istringstream lines(shown);
    std::string line;
    while (std::getline(lines, line)) {
      const std::size_t at = line.find("JobState=");
      if (at == std::string::npos) continue;
      ++states[line.substr(at + 9, line.find(' ', at) - at - 9)];
    }
    if (!states.empty()) return states;
  }
  const std::string accounted =
      run_command({"sacct", "-n", "-X", "-P", "-o", "State", "-j", id}, status, /*discard_stderr=*/true);
  if (status == 0) {
    std::istringstream lines(accounted);
    std::string line;
    while (std::getline(lines, line))
      if (!line.empty()) ++states[line.substr(0, line.find(' '))];  // "CANCELLED by 0" -> CANCELLED
  }
  return states;
}

bool summary_complete(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("\"complete\": true") != std::string::npos;
}

std::uint64_t grid_size(const config::Config& config, const sims::SimulatorInfo& info,
                        const std::string& section) {
  std::uint64_t points = 1;
  for (const auto& p : info.parameters) {
    const std::string prefix = section + ".grid." + p.name;
    if (config.has(prefix + ".values"))
      points *= config.get<std::vector<double>>(prefix + ".values").size();
    else if (p.is_discrete())
      points *= p.hypotheses.size();
    else
      points *= static_cast<std::uint64_t>(config.get<std::int64_t>(prefix + ".points"));
  }
  return points;
}

std::uint64_t toy_items(const config::Config& config, const sims::SimulatorInfo& info,
                        const std::string& stage) {
  const auto n_toys = static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".n_toys"));
  const auto per_item =
      std::min(n_toys, static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".toys_per_item")));
  const std::uint64_t blocks = (n_toys + per_item - 1) / per_item;
  return stage == "test" ? 2 * blocks : grid_size(config, info, stage) * blocks;
}

// Whether coverage.methods names a toy method (wilks, neyman).
bool has_toy_methods(const config::Config& config) {
  const auto methods = config.get<std::vector<std::string>>("coverage.methods");
  return std::any_of(methods.begin(), methods.end(),
                     [](const std::string& m) { return m == "wilks" || m == "neyman"; });
}

// The output of a stage whose summary says it completed that is missing ("" when none is): then the stage is
// not complete (it runs again). Whether the outputs are from this config the stages themselves check.
std::string missing_output(const Campaign& campaign, const std::string& stage) {
  const config::Config& config = campaign.config;
  std::vector<std::string> files;
  if (stage == "simulate") {
    files.push_back(config.get<std::string>("simulate.output"));
    if (!config.children("simulate.reference.theta").empty())
      files.push_back(config.get<std::string>("simulate.reference.output"));
    if (!config.children("simulate.observed.theta").empty())
      files.push_back(config.get<std::string>("simulate.observed.output"));
  } else if (stage == "train") {
    files.push_back(config.get<std::string>("train.output"));
  } else {
    const std::string results = campaign.output_path("results.h5");
    try {
      if (file_exists(results) &&
          h5::File::open(results, MPI_COMM_SELF, h5::Access::read).root().exists(stage))
        return "";
    } catch (const Error&) {
      return results + " (unreadable)";
    }
    return results + ":/" + stage;
  }
  for (const auto& file : files)
    if (!file_exists(campaign.output_path(file))) return campaign.output_path(file);
  return "";
}

// The work items of a toy stage and those its journals hold; false when there are no journals.
bool journal_progress(const Campaign& campaign, const sims::SimulatorInfo& info, StageStatus& s,
                      double& last_activity, double& first_activity) {
  const config::Config& config = campaign.config;
  s.unit = "work items";
  // coverage's toys (wilks, neyman) and its posterior checks (sbc, expected_coverage) journal apart.
  std::vector<std::string> directories = {"work/" + s.stage};
  s.total = s.stage == "coverage" && !has_toy_methods(config) ? 0 : toy_items(config, info, s.stage);
  if (s.stage == "coverage") {
    s.total += posterior_check_items(config);
    directories.emplace_back(posterior_check_journals());
  }
  std::uint64_t files = 0;
  for (const auto& directory : directories) {
    const distributed::WorkJournalSummary journals =
        distributed::summarize_work_journals(campaign.output_path(directory));
    if (journals.files == 0) continue;
    s.done += journals.items;
    last_activity = std::max(last_activity, journals.last_modified);
    first_activity = files == 0 ? journals.first_created : std::min(first_activity, journals.first_created);
    files += journals.files;
  }
  if (files == 0) return false;
  s.detail = std::to_string(files) + " journal(s)";
  s.state = "interrupted";
  return true;
}

void inspect_files(const Campaign& campaign, const sims::SimulatorInfo& info, StageStatus& s) {
  const config::Config& config = campaign.config;
  if (summary_complete(campaign.output_path(s.stage + ".json"))) {
    const std::string missing = missing_output(campaign, s.stage);
    if (missing.empty()) {
      s.state = "complete";
      return;
    }
    s.detail = "its summary is there, but not " + missing;
  }
  double last_activity = 0;
  double first_activity = 0;
  if (s.stage == "simulate") {
    const std::string partial = campaign.output_path(config.get<std::string>("simulate.output")) + ".partial";
    s.unit = "blocks";
    if (!file_exists(partial)) return;
    try {
      h5::File file = h5::File::open(partial, MPI_COMM_SELF, h5::Access::read);
      h5::Dataset blocks = file.root().open_dataset("progress/blocks_done");
      std::vector<std::uint8_t> flags(blocks.dims().at(0));
      if (!flags.empty()) blocks.read_rows(0, flags.size(), flags.data());
      s.total = flags.size();
      s.done = static_cast<std::uint64_t>(std::count(flags.begin(), flags.end(), 1));
    } catch (const Error& e) {
      s.detail = "cannot read '" + partial + "'";
    }
    last_activity = modified_seconds(partial);
    first_activity = born_seconds(partial);
    s.state = "interrupted";
  } else if (s.stage == "train") {
    const auto ensemble = static_cast<std::uint64_t>(config.get<std::int64_t>("train.ensemble"));
    const auto epochs = config.get<std::int64_t>("train.epochs");
    s.unit = "members";
    s.total = ensemble;
    bool any = false;
    for (std::uint64_t k = 0; k < ensemble; ++k) {
      const std::string path = campaign.output_path("checkpoints/train-member-" + std::to_string(k) + ".h5");
      if (!file_exists(path)) continue;
      any = true;
      last_activity = std::max(last_activity, modified_seconds(path));
      try {
        const auto c = distributed::read_checkpoint(path);
        if (c && c->finished) {
          ++s.done;
        } else if (c) {
          s.detail +=
              (s.detail.empty() ? "" : ", ") + ("member " + std::to_string(k) + ": epoch " +
                                                std::to_string(c->epoch) + "/" + std::to_string(epochs));
        }
      } catch (const Error&) {
        s.detail +=
            (s.detail.empty() ? "" : ", ") + ("member " + std::to_string(k) + ": unreadable checkpoint");
      }
    }
    if (!any) return;
    s.state = "interrupted";
  } else if (s.stage == "test" || s.stage == "calibrate" || s.stage == "coverage") {
    if (!journal_progress(campaign, info, s, last_activity, first_activity)) return;
  } else {
    return;  // infer has no partial outputs
  }
  if (now_seconds() - last_activity < running_window_seconds) s.state = "running";
  if (first_activity > 0 && last_activity > first_activity && s.done > 0) {
    s.rate = static_cast<double>(s.done) / (last_activity - first_activity);
    if (s.total >= s.done) s.eta = static_cast<double>(s.total - s.done) / s.rate;
  }
}

void apply_slurm(StageStatus& s) {
  if (s.jobs.empty() || s.state == "complete") return;
  bool running = false, failed = false, queued = false;
  for (const JobState& job : s.jobs)
    for (const auto& [state, count] : job.states) {
      if (state == "RUNNING" || state == "COMPLETING" || state == "CONFIGURING") running = true;
      if (state == "PENDING" || state == "REQUEUED" || state == "REQUEUE_HOLD" || state == "SUSPENDED")
        queued = true;
      if (state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" || state == "NODE_FAIL" ||
          state == "OUT_OF_MEMORY" || state == "BOOT_FAIL" || state == "DEADLINE")
        failed = true;
    }
  if (failed)
    s.state = "failed";
  else if (running)
    s.state = "running";
  else if (queued && s.state == "running")
    s.state = "interrupted";  // requeued: waiting to resume
}

std::string pad(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

// The config file `nsbi status TARGET` reads: TARGET itself, or the slurm/config.yaml of a campaign
// directory.
std::string status_config_file(const std::string& target) {
  std::error_code error;
  if (!fs::is_directory(target, error)) return target;
  const std::string config_file = (fs::path(target) / "slurm" / "config.yaml").string();
  if (!file_exists(config_file))
    throw ConfigError("nsbi status: '" + target +
                      "' holds no slurm/config.yaml (written by `nsbi submit`): " +
                      "give the campaign's config file instead (nsbi status CONFIG)");
  return config_file;
}

// SLURM's view of the jobs `nsbi submit` recorded in slurm/jobs.json, by stage (empty without the file).
std::map<std::string, std::vector<JobState>> recorded_jobs(const Campaign& campaign) {
  const std::string jobs_file = campaign.output_path("slurm/jobs.json");
  std::map<std::string, std::vector<JobState>> jobs;
  if (!file_exists(jobs_file)) return jobs;
  YAML::Node recorded;
  try {
    recorded = YAML::LoadFile(jobs_file);
  } catch (const YAML::Exception& e) {
    throw InputError("nsbi status: cannot read '" + jobs_file + "': " + e.what());
  }
  for (const auto& job : recorded["jobs"]) {
    JobState state;
    state.job_id = job["job_id"].as<std::string>();
    state.role = job["role"].as<std::string>();
    state.array_size = job["array_size"].as<std::uint64_t>();
    state.states = slurm_states(state.job_id);
    if (state.states.empty()) state.states["UNKNOWN"] = 1;
    jobs[job["stage"].as<std::string>()].push_back(state);
  }
  return jobs;
}

// Each stage of the pipeline: its files, the live locks of its runs, then its SLURM jobs.
std::vector<StageStatus> stage_statuses(const Campaign& campaign) {
  const auto simulator = make_simulator(campaign.config);
  std::map<std::string, std::vector<JobState>> jobs = recorded_jobs(campaign);
  std::vector<StageStatus> stages;
  for (const std::string& stage : campaign.config.get<std::vector<std::string>>("pipeline")) {
    StageStatus s;
    s.stage = stage;
    inspect_files(campaign, simulator->info(), s);
    // A live lock is the surest sign of a run at work, and names it (a stage without partial files too).
    for (const LeaseHolder& lease : live_stage_leases(campaign.dir, stage)) {
      s.state = "running";
      s.detail +=
          (s.detail.empty() ? "" : "; ") + ("'" + lease.what + "' held by " + lease.describe(now_seconds()));
    }
    s.jobs = jobs[stage];
    apply_slurm(s);
    stages.push_back(s);
  }
  return stages;
}

// `nsbi status --json`: one row per stage.
json::Object status_json(const Campaign& campaign, const std::string& config_file,
                         const std::vector<StageStatus>& stages) {
  std::vector<json::Object> rows;
  for (const StageStatus& s : stages) {
    json::Object row;
    row.set("stage", s.stage).set("state", s.state);
    if (!s.unit.empty())
      row.set("done", static_cast<std::int64_t>(s.done))
          .set("total", static_cast<std::int64_t>(s.total))
          .set("unit", s.unit);
    if (!s.detail.empty()) row.set("detail", s.detail);
    if (s.rate > 0) row.set("rate_per_second", s.rate);
    if (s.eta >= 0) row.set("eta_seconds", s.eta);
    std::vector<json::Object> job_rows;
    for (const JobState& j : s.jobs) {
      json::Object states;
      for (const auto& [state, count] : j.states) states.set(state, static_cast<std::int64_t>(count));
      json::Object job;
      job.set("job_id", j.job_id)
          .set("role", j.role)
          .set("array_size", static_cast<std::int64_t>(j.array_size))
          .set("states", states);
      job_rows.push_back(job);
    }
    row.set("jobs", job_rows);
    rows.push_back(row);
  }
  json::Object body;
  body.set("campaign", campaign.name).set("dir", campaign.dir).set("config", config_file).set("stages", rows);
  return body;
}

}  // namespace

void print_status(const std::string& target, const std::vector<std::string>& overrides, bool as_json,
                  std::ostream& out) {
  const std::string config_file = status_config_file(target);
  Invocation invocation;
  invocation.command = "status";
  invocation.config_file = config_file;
  invocation.overrides = overrides;
  const Campaign campaign = Campaign::load(invocation, 1);
  const std::vector<StageStatus> stages = stage_statuses(campaign);
  if (as_json) {
    out << status_json(campaign, config_file, stages).dump(2) << "\n";
    return;
  }
  out << "campaign '" << campaign.name << "' in " << campaign.dir << " (config " << config_file << ")\n";
  out << pad("stage", 11) << pad("state", 13) << pad("done", 22) << pad("rate", 14) << pad("ETA", 9)
      << "SLURM jobs\n";
  for (const StageStatus& s : stages) {
    std::string done = "-";
    if (!s.unit.empty() && (s.total > 0 || s.done > 0))
      done = std::to_string(s.done) + "/" + std::to_string(s.total) + " " + s.unit;
    if (s.state == "complete") done = "all";
    char rate[32] = "-";
    if (s.rate > 0) std::snprintf(rate, sizeof rate, "%.3g/s", s.rate);
    std::string job_text;
    for (const JobState& j : s.jobs) {
      job_text += (job_text.empty() ? "" : ", ") + j.job_id + (j.role == "stage" ? "" : " " + j.role) + " (";
      std::string states;
      for (const auto& [state, count] : j.states)
        states += (states.empty() ? "" : " ") + (j.array_size > 0 ? std::to_string(count) + " " : "") + state;
      job_text += states + ")";
    }
    out << pad(s.stage, 11) << pad(s.state, 13) << pad(done, 22) << pad(rate, 14)
        << pad(s.state == "running" ? format_duration(s.eta) : "-", 9) << (job_text.empty() ? "-" : job_text)
        << "\n";
    if (!s.detail.empty()) out << pad("", 24) << s.detail << "\n";
  }
}

}  // namespace nsbi::jobs
