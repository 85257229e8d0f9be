// nsbi submit (docs/slurm.md): one batch script per pipeline stage, chained with afterok dependencies;
// calibrate, coverage and ensemble training as job arrays over slices of their work followed by a merge
// job. Every job runs the resolved config copied into <campaign.dir>/slurm/, so that a requeued job runs
// what was submitted even if the user has edited the campaign file since.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <regex>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/jobs/memory_bounds.hpp"
#include "nsbi/jobs/slurm.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

// Single quotes for the shell: the text as one word, whatever it holds.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A stage's setting: slurm.stages.<stage>.<key> when given, else slurm.<key>.
std::string setting(const config::Config& config, const std::string& stage, const std::string& key) {
  const std::string specific = "slurm.stages." + stage + "." + key;
  const std::string path = config.has(specific) ? specific : "slurm." + key;
  return config.get<YAML::Node>(path).Scalar();
}
std::string setting_path(const config::Config& config, const std::string& stage, const std::string& key) {
  const std::string specific = "slurm.stages." + stage + "." + key;
  return config.has(specific) ? specific : "slurm." + key;
}

void check_time(const config::Config& config, const std::string& path) {
  // The forms sbatch --time accepts: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, unlimited.
  static const std::regex form(
      R"(^(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+|UNLIMITED|unlimited|INFINITE|infinite)$)");
  const std::string value = config.get<std::string>(path);
  if (!std::regex_match(value, form))
    config.fail(
        path,
        "'" + value + "' is not a SLURM time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS");
}

void check_mem(const config::Config& config, const std::string& path) {
  static const std::regex form(R"(^(\d+[KMGT]?)?$)");
  const std::string value = config.get<std::string>(path);
  if (!std::regex_match(value, form))
    config.fail(path, "'" + value + "' is not a SLURM memory size: a number with an optional K, M, G or T");
}

// Each stage's memory per rank (memory_bounds.hpp) against what its jobs ask SLURM for: --mem per node
// shared by the job's ranks on a node (ntasks over nodes, rounded up). No --mem: the cluster's default,
// unknown here, so nothing to check.
void check_stage_memory(const config::Config& config, const sims::SimulatorInfo& info,
                        const std::string& stage) {
  const std::string path = setting_path(config, stage, "mem");
  const std::string mem = config.get<std::string>(path);
  if (mem.empty()) return;
  const std::string units = "KMGT";
  const std::size_t unit = units.find(mem.back());
  // sbatch's unit without a suffix is the megabyte (MiB).
  const int shift = unit == std::string::npos ? 20 : 10 * static_cast<int>(unit + 1);
  const std::uint64_t number = std::stoull(unit == std::string::npos ? mem : mem.substr(0, mem.size() - 1));
  const std::uint64_t node_bytes = number > (std::numeric_limits<std::uint64_t>::max() >> shift)
                                       ? std::numeric_limits<std::uint64_t>::max()
                                       : number << shift;
  const auto ntasks = static_cast<std::uint64_t>(std::stoll(setting(config, stage, "ntasks")));
  const auto nodes = static_cast<std::uint64_t>(std::stoll(setting(config, stage, "nodes")));
  const std::uint64_t per_node = (ntasks + nodes - 1) / nodes;
  MemoryLimit limit;
  limit.bytes = node_bytes / per_node;
  limit.source = path + " = " + mem + " per node for " + std::to_string(per_node) +
                 " rank(s) per node: raise it, or lower the count";
  check_memory(config, estimate_stage_memory(config, info, stage, static_cast<int>(ntasks)), limit);
}

std::string nsbi_binary(const config::Config& config) {
  if (config.has("slurm.nsbi")) {
    const std::string path = config.get<std::string>("slurm.nsbi");
    if (access(path.c_str(), X_OK) != 0)
      config.fail("slurm.nsbi", "'" + path + "' is not an executable file");
    return fs::absolute(path).lexically_normal().string();
  }
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) config.fail("slurm.nsbi", "cannot tell the path of this nsbi (/proc/self/exe): give it here");
  return self.string();
}

struct JobText {
  std::string header;   // what the job is, in words
  std::string command;  // the nsbi arguments after the binary, shell text
};

// The script's head: what the job is, and its #SBATCH directives (resources, array, requeue, signal).
std::string sbatch_directives(const Campaign& campaign, const SubmitPlan& plan, const std::string& stage,
                              std::size_t stage_number, std::size_t n_stages, const SlurmJob& job,
                              const JobText& text) {
  const config::Config& config = campaign.config;
  std::ostringstream s;
  const std::string log_name = job.role == "array"   ? stage + "-%A_%a.out"
                               : job.role == "merge" ? stage + "-merge-%j.out"
                                                     : stage + "-%j.out";
  s << "#!/bin/bash\n"
    << "# nsbi campaign '" << campaign.name << "', stage " << stage_number << " of " << n_stages << ": "
    << text.header << "\n"
    << "# Written by `nsbi submit` (docs/slurm.md); it runs the resolved config next to it, config.yaml.\n"
    << "# Dependencies are given at submission (sbatch --dependency=afterok:...): see jobs.json.\n"
    << "#\n"
    << "# Resources: slurm.* of the config, slurm.stages." << stage << ".* where given.\n"
    << "#SBATCH --job-name=nsbi-" << campaign.name << "-" << stage << "\n"
    << "#SBATCH --output=" << plan.directory << "/" << log_name << "\n"
    << "#SBATCH --open-mode=append\n";
  const std::string partition = setting(config, stage, "partition");
  if (!partition.empty()) s << "#SBATCH --partition=" << partition << "\n";
  const std::string account = config.get<std::string>("slurm.account");
  if (!account.empty()) s << "#SBATCH --account=" << account << "\n";
  s << "#SBATCH --time=" << setting(config, stage, "time") << "\n"
    << "#SBATCH --nodes=" << setting(config, stage, "nodes") << "\n"
    << "#SBATCH --ntasks=" << setting(config, stage, "ntasks") << "\n"
    << "#SBATCH --cpus-per-task=" << setting(config, stage, "cpus_per_task") << "\n";
  if (setting(config, stage, "gpus_per_task") != "0")
    s << "#SBATCH --gpus-per-task=" << setting(config, stage, "gpus_per_task") << "\n";
  const std::string mem = setting(config, stage, "mem");
  if (!mem.empty()) s << "#SBATCH --mem=" << mem << "\n";
  if (job.array_size > 0) s << "#SBATCH --array=0-" << job.array_size - 1 << "\n";
  const std::int64_t signal_seconds = config.get<std::int64_t>("slurm.signal_seconds");
  s << "# Preemption: the job may be requeued; SIGUSR1 reaches this script (B:) " << signal_seconds
    << " s before the\n"
    << "# time limit. nsbi then checkpoints and exits with code 4, and the job requeues itself.\n"
    << "#SBATCH --requeue\n"
    << "#SBATCH --signal=B:USR1@" << signal_seconds << "\n";
  const auto extra = config.get<std::vector<std::string>>("slurm.extra");
  if (!extra.empty()) {
    s << "# slurm.extra:\n";
    for (const auto& line : extra) s << "#SBATCH " << line << "\n";
  }
  return s.str();
}

// The script's body: runs nsbi through the launcher, passes signals on, and requeues after exit code 4.
std::string job_commands(const config::Config& config, const SubmitPlan& plan, const JobText& text,
                         const std::string& binary) {
  std::ostringstream s;
  const std::string launcher = config.get<std::string>("slurm.launcher");
  s << "\n"
    << "set -u\n"
    << "nsbi=" << shell_quote(binary) << "\n"
    << "config=" << shell_quote(plan.config_file) << "\n";
  if (launcher == "srun") {
    // srun starts SLURM_NTASKS ranks itself (the site's MPI plugin wires them up) and forwards signals.
    const std::string mpi = config.get<std::string>("slurm.mpi");
    s << "command=(srun " << (mpi.empty() ? "" : "--mpi=" + shell_quote(mpi) + " ") << "\"$nsbi\" "
      << text.command << ")\n";
  } else {
    // mpirun inside the allocation starts its ranks on the allocated nodes and forwards USR1 to them.
    s << "command=(mpirun -np \"$SLURM_NTASKS\" \"$nsbi\" " << text.command << ")\n";
  }
  s << "\n"
    << "# Signals reach this shell (USR1 before the time limit, TERM at preemption or requeue): pass them on "
       "to\n"
    << "# nsbi through the launcher and keep waiting until nsbi has written its checkpoint and exited.\n"
    << "forward() { kill -\"$1\" \"$child\" 2>/dev/null || true; }\n"
    << "trap 'forward USR1' USR1\n"
    << "trap 'forward TERM' TERM\n"
    << "echo \"nsbi-job: $(date -u +%FT%TZ) job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}) on "
       "$(hostname): ${command[*]}\"\n"
    << "\"${command[@]}\" &\n"
    << "child=$!\n"
    << "status=0\n"
    << "wait \"$child\" || status=$?\n"
    << "# wait returns early when a trapped signal arrives, while nsbi is still finishing.\n"
    << "while kill -0 \"$child\" 2>/dev/null; do\n"
    << "  status=0\n"
    << "  wait \"$child\" || status=$?\n"
    << "done\n"
    << "echo \"nsbi-job: $(date -u +%FT%TZ) nsbi exited with code $status\"\n"
    << "if [ \"$status\" -eq 4 ]; then\n"
    << "  # Interrupted with a checkpoint written: requeue this job (this array task) to resume where it "
       "stopped.\n"
    << "  # Already being requeued (scontrol requeue, preemption)? Then this fails harmlessly.\n"
    << "  scontrol requeue \"$SLURM_JOB_ID\" || echo \"nsbi-job: scontrol requeue $SLURM_JOB_ID failed\" "
       ">&2\n"
    << "fi\n"
    << "# 0: done; 4: interrupted (requeued); 2: config error; 3: bad input data; 1: internal error.\n"
    << "exit \"$status\"\n";
  return s.str();
}

std::string script_text(const Campaign& campaign, const SubmitPlan& plan, const std::string& stage,
                        std::size_t stage_number, std::size_t n_stages, const SlurmJob& job,
                        const JobText& text, const std::string& binary) {
  return sbatch_directives(campaign, plan, stage, stage_number, n_stages, job, text) +
         job_commands(campaign.config, plan, text, binary);
}

std::string two_digits(std::size_t n) {
  char text[24];
  std::snprintf(text, sizeof text, "%02zu", n);
  return text;
}

// Whether an environment variable is one the MPI runtime set for this process (nsbi has called MPI_Init):
// sbatch passes the environment on to the job, where they would make mpirun believe it runs inside another
// MPI job (it then fails at once). The user's own settings (OMPI_ALLOW_RUN_AS_ROOT, OMPI_MCA_btl, ...) stay.
bool set_by_mpi_runtime(const std::string& name) {
  static const std::vector<std::string> prefixes = {"PMIX_", "OMPI_COMM_WORLD_", "OMPI_MCA_orte_", "PMI_"};
  static const std::vector<std::string> names = {
      "OMPI_MCA_ess",       "OMPI_MCA_pmix",         "OMPI_APP_CTX_NUM_PROCS", "OMPI_ARGV",
      "OMPI_COMMAND",       "OMPI_UNIVERSE_SIZE",    "OMPI_FIRST_RANKS",       "OMPI_NUM_APP_CTX",
      "OMPI_FILE_LOCATION", "OMPI_MCA_initial_wdir", "ORTE_SCHIZO_DETECTION",  "HFI_NO_BACKTRACE",
      "IPATH_NO_BACKTRACE"};
  for (const auto& prefix : prefixes)
    if (name.rfind(prefix, 0) == 0) return true;
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// Writes the plan's config.yaml and its scripts (executable) into its directory.
void write_plan(const Campaign& campaign, const SubmitPlan& plan) {
  std::error_code error;
  fs::create_directories(plan.directory, error);
  if (error)
    campaign.config.fail("campaign.dir", "cannot create '" + plan.directory + "': " + error.message());
  json::write_file_atomically(plan.config_file, plan.config_text);
  for (const SlurmJob& job : plan.jobs) {
    json::write_file_atomically(job.file, job.script);
    fs::permissions(job.file, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add, error);
  }
}

// sbatch's command line for `job`, after the jobs it waits for: their ids (`ids`, in plan order), or in a
// dry run their script files.
std::vector<std::string> sbatch_command(const SubmitPlan& plan, const SlurmJob& job,
                                        const std::vector<std::string>& ids, bool dry_run) {
  std::vector<std::string> command = {"sbatch", "--parsable"};
  std::string dependency;
  for (const std::size_t a : job.after)
    dependency += ":" + (dry_run ? "<" + plan.jobs[a].file + ">" : ids[a]);
  if (!dependency.empty()) {
    command.push_back("--dependency=afterok" + dependency);
    // A failed predecessor cancels this job instead of leaving it pending for ever.
    command.push_back("--kill-on-invalid-dep=yes");
  }
  command.push_back(job.file);
  return command;
}

// A failed sbatch (command `line`, its exit status and output): what failed, and which jobs are already in.
[[noreturn]] void sbatch_failed(const std::string& line, int status, const std::string& output,
                                const std::vector<std::string>& ids) {
  std::string submitted;
  for (const auto& i : ids) submitted += " " + i;
  throw ConfigError("nsbi submit: `" + line + "` failed (exit code " + std::to_string(status) + ")" +
                    (output.empty() ? "" : ": " + output) +
                    (status == 127 ? "; is sbatch installed (a SLURM cluster)? --dry-run only writes the "
                                     "scripts"
                                   : "") +
                    (ids.empty() ? "" : "; jobs already submitted (scancel them):" + submitted));
}

// The jobs.json record of `job`, just submitted: its id is the last of `ids`.
json::Object job_record(const SlurmJob& job, const std::vector<std::string>& ids) {
  std::vector<std::string> after;
  for (const std::size_t a : job.after) after.push_back(ids[a]);
  json::Object record;
  record.set("stage", job.stage)
      .set("role", job.role)
      .set("job_id", ids.back())
      .set("array_size", static_cast<std::int64_t>(job.array_size))
      .set("after", after)
      .set("script", job.file);
  return record;
}

}  // namespace

std::string run_command(const std::vector<std::string>& command, int& status, bool discard_stderr) {
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) throw InputError("cannot create a pipe to run " + command.front());
  const pid_t pid = fork();
  if (pid < 0) throw InputError("cannot fork to run " + command.front());
  if (pid == 0) {
    dup2(pipe_ends[1], STDOUT_FILENO);
    if (discard_stderr) {
      const int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, STDERR_FILENO);
    }
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    std::vector<std::string> drop;
    for (char** entry = environ; *entry; ++entry) {
      const std::string variable = *entry;
      const std::string name = variable.substr(0, variable.find('='));
      if (set_by_mpi_runtime(name)) drop.push_back(name);
    }
    for (const auto& name : drop) unsetenv(name.c_str());
    std::vector<char*> argv;
    for (const auto& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s\n", argv[0]);
    _exit(127);
  }
  close(pipe_ends[1]);
  std::string output;
  std::array<char, 4096> buffer;
  ssize_t n = 0;
  while ((n = read(pipe_ends[0], buffer.data(), buffer.size())) > 0) output.append(buffer.data(), n);
  close(pipe_ends[0]);
  int raw = 0;
  waitpid(pid, &raw, 0);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128;
  return output;
}

void declare_slurm(config::Schema& schema) {
  using config::Key;
  using config::Type;
  schema.add(
      Key("slurm.partition", Type::string, "partition (queue) of every job (empty: the cluster's default)")
          .with_default(YAML::Node("")));
  schema.add(Key("slurm.account", Type::string, "account charged for the jobs (empty: your default)")
                 .with_default(YAML::Node("")));
  schema.add(Key("slurm.time", Type::string, "time limit of each job: minutes, HH:MM:SS or D-HH:MM:SS")
                 .with_default(YAML::Node("01:00:00")));
  schema.add(Key("slurm.nodes", Type::integer, "nodes per job").with_default("1").minimum(1));
  schema.add(
      Key("slurm.ntasks", Type::integer, "MPI ranks per job (per array task)").with_default("1").minimum(1));
  schema.add(Key("slurm.cpus_per_task", Type::integer, "cores per MPI rank").with_default("1").minimum(1));
  schema.add(Key("slurm.gpus_per_task", Type::integer, "GPUs per MPI rank (0: no --gpus-per-task line)")
                 .with_default("0")
                 .minimum(0));
  schema.add(Key("slurm.mem", Type::string, "memory per node, as sbatch --mem: 4G, 500M (empty: the default)")
                 .with_default(YAML::Node("")));
  schema.add(Key("slurm.launcher", Type::string,
                 "what starts the ranks inside a job: `srun` (SLURM's MPI plugin) or `mpirun`")
                 .with_default("srun")
                 .one_of({"srun", "mpirun"}));
  schema.add(
      Key("slurm.mpi", Type::string,
          "launcher srun: its MPI plugin, srun --mpi=<this> (pmix, pmi2; empty: the cluster's MpiDefault)")
          .with_default(YAML::Node("")));
  schema.add(
      Key("slurm.extra", Type::string_list,
          "extra #SBATCH lines, as they follow `#SBATCH ` (e.g. \"--qos=long\", \"--constraint=zen4\")")
          .with_default("[]"));
  schema.add(Key("slurm.array_tasks", Type::integer,
                 "tasks of the job arrays of calibrate, coverage and ensemble training (1: no arrays)")
                 .with_default("4")
                 .minimum(1)
                 .maximum(10000));
  schema.add(Key("slurm.signal_seconds", Type::integer,
                 "seconds before the time limit at which SIGUSR1 tells nsbi to checkpoint and requeue")
                 .with_default("300")
                 .minimum(1)
                 .maximum(65535));
  schema.add(Key("slurm.nsbi", Type::string, "the nsbi binary the jobs run (default: the one submitting)")
                 .as_optional());
  for (const std::string& stage : pipeline_stages()) {
    const std::string prefix = "slurm.stages." + stage + ".";
    const std::string doc = " of the " + stage + " jobs (default: slurm.";
    schema.add(Key(prefix + "partition", Type::string, "partition" + doc + "partition)").as_optional());
    schema.add(Key(prefix + "time", Type::string, "time limit" + doc + "time)").as_optional());
    schema.add(Key(prefix + "nodes", Type::integer, "nodes" + doc + "nodes)").minimum(1).as_optional());
    schema.add(Key(prefix + "ntasks", Type::integer, "MPI ranks" + doc + "ntasks)").minimum(1).as_optional());
    schema.add(Key(prefix + "cpus_per_task", Type::integer, "cores per rank" + doc + "cpus_per_task)")
                   .minimum(1)
                   .as_optional());
    schema.add(Key(prefix + "gpus_per_task", Type::integer, "GPUs per rank" + doc + "gpus_per_task)")
                   .minimum(0)
                   .as_optional());
    schema.add(Key(prefix + "mem", Type::string, "memory per node" + doc + "mem)").as_optional());
    if (stage == "train" || stage == "calibrate" || stage == "coverage")
      schema.add(Key(prefix + "array_tasks", Type::integer, "array tasks" + doc + "array_tasks)")
                     .minimum(1)
                     .maximum(10000)
                     .as_optional());
  }
}

SubmitPlan plan_submission(const Campaign& campaign) {
  const config::Config& config = campaign.config;
  const auto pipeline = config.get<std::vector<std::string>>("pipeline");
  for (const std::string& stage : pipeline)
    for (const char* key : {"time", "mem"}) {
      const std::string path = setting_path(config, stage, key);
      if (std::string(key) == "time")
        check_time(config, path);
      else
        check_mem(config, path);
    }
  const sims::SimulatorInfo info = make_simulator(config)->info();
  for (const std::string& stage : pipeline) check_stage_memory(config, info, stage);
  for (const std::string& stage : pipeline_stages())
    if (config.has("slurm.stages." + stage) &&
        std::find(pipeline.begin(), pipeline.end(), stage) == pipeline.end())
      config.fail("slurm.stages." + stage, "stage " + stage + " is not in the pipeline: it runs no job");

  SubmitPlan plan;
  const std::string dir = fs::absolute(campaign.dir).lexically_normal().string();
  plan.directory = dir + "/slurm";
  plan.config_file = plan.directory + "/config.yaml";
  YAML::Node resolved = YAML::Load(config.resolved_yaml());
  resolved["campaign"]["dir"] = dir;
  YAML::Emitter emitter;
  emitter << resolved;
  plan.config_text =
      "# The config every job of `nsbi submit` runs: the campaign file with its --set overrides "
      "and defaults\n# resolved, campaign.dir made absolute.\n" +
      std::string(emitter.c_str()) + "\n";
  const std::string binary = nsbi_binary(config);
  const std::string config_arg = "\"$config\"";

  std::optional<std::size_t> previous;  // the job the next stage waits for
  for (std::size_t s = 0; s < pipeline.size(); ++s) {
    const std::string& stage = pipeline[s];
    const std::string prefix = plan.directory + "/" + two_digits(s + 1) + "-" + stage;
    std::uint64_t tasks = 1;
    std::string what;  // what the array tasks share out
    if (stage == "calibrate" || stage == "coverage") {
      tasks = static_cast<std::uint64_t>(std::stoll(setting(config, stage, "array_tasks")));
      what = "toy work items";
    } else if (stage == "train") {
      tasks = std::min<std::uint64_t>(
          static_cast<std::uint64_t>(std::stoll(setting(config, stage, "array_tasks"))),
          static_cast<std::uint64_t>(config.get<std::int64_t>("train.ensemble")));
      what = "ensemble members";
    }
    const auto add = [&](SlurmJob job, const JobText& text) {
      if (previous) job.after.push_back(*previous);
      job.script = script_text(campaign, plan, stage, s + 1, pipeline.size(), job, text, binary);
      plan.jobs.push_back(std::move(job));
      previous = plan.jobs.size() - 1;
    };
    if (tasks <= 1) {
      add({stage, "stage", prefix + ".sbatch", 0, {}, {}}, {stage, stage + " " + config_arg});
      continue;
    }
    const std::string option = stage == "train" ? "--members" : "--slice";
    const std::string k = std::to_string(tasks);
    const std::string array_text =
        stage == "train"
            ? "train as a job array: task k of " + k + " trains the ensemble members m with m % " + k +
                  " == k\n# to finished checkpoints (no model); the merge job after it writes model.h5."
            : stage + " as a job array: task k of " + k + " computes the work items i with i % " + k +
                  " == k\n# and journals them (no results); the merge job after it writes the results.";
    add({stage, "array", prefix + "-array.sbatch", tasks, {}, {}},
        {array_text, stage + " " + config_arg + " " + option + " \"$SLURM_ARRAY_TASK_ID/" + k + "\""});
    add({stage, "merge", prefix + "-merge.sbatch", 0, {}, {}},
        {stage + ", merge: after every task of the array, finds all " + what +
             " done and writes the results.",
         stage + " " + config_arg});
  }
  return plan;
}

void submit_campaign(const Campaign& campaign, bool dry_run, std::ostream& out) {
  const SubmitPlan plan = plan_submission(campaign);
  write_plan(campaign, plan);
  if (dry_run) {
    for (const SlurmJob& job : plan.jobs) out << "==> " << job.file << "\n" << job.script << "\n";
    out << "nsbi submit --dry-run: would submit, in this order:\n";
  } else {
    out << "nsbi submit: submitting " << plan.jobs.size() << " jobs:\n";
  }

  std::vector<std::string> ids;
  std::vector<json::Object> records;
  const auto record_jobs = [&] {
    json::Object body;
    body.set("campaign", campaign.name)
        .set("config", plan.config_file)
        .set("submitted", utc_now())
        .set("jobs", records);
    json::write_file_atomically(plan.directory + "/jobs.json", body.dump(2) + "\n");
  };
  for (const SlurmJob& job : plan.jobs) {
    const std::vector<std::string> command = sbatch_command(plan, job, ids, dry_run);
    std::string line;
    for (const auto& word : command) line += (line.empty() ? "" : " ") + word;
    if (dry_run) {
      out << "  " << line << "\n";
      continue;
    }
    int status = 0;
    std::string output = run_command(command, status);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    const std::string id = output.substr(0, output.find(';'));  // "<id>[;<cluster>]"
    if (status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      if (!records.empty()) record_jobs();
      sbatch_failed(line, status, output, ids);
    }
    ids.push_back(id);
    records.push_back(job_record(job, ids));
    out << "  " << id << "  " << job.stage << (job.role == "stage" ? "" : " (" + job.role + ")")
        << (job.array_size ? ", " + std::to_string(job.array_size) + " tasks" : "") << "\n";
  }
  if (dry_run) {
    out << "nothing submitted; the scripts and config.yaml are in " << plan.directory << "\n";
    return;
  }
  record_jobs();
  out << "job ids recorded in " << plan.directory << "/jobs.json; `nsbi status " << campaign.dir
      << "` follows the campaign\n";
}

}  // namespace nsbi::jobs
