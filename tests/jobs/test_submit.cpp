// nsbi submit without a cluster: the scripts a campaign becomes (arrays, merge jobs, dependencies and
// resources as the config says), that bash accepts every one of them, the slurm section's errors, and the
// work queue's slices that the job arrays rest on.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/slurm.hpp"

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

// A scratch directory per test.
class Submit : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/nsbi-test-submit-XXXXXX";
    ASSERT_NE(mkdtemp(name), nullptr);
    dir = name;
  }
  void TearDown() override { fs::remove_all(dir); }

  // A campaign from YAML text (written to dir/campaign.yaml) with its outputs in dir/run.
  Campaign campaign(const std::string& yaml, const std::vector<std::string>& overrides = {}) const {
    const std::string file = dir + "/campaign.yaml";
    std::ofstream(file) << yaml;
    Invocation invocation;
    invocation.config_file = file;
    invocation.overrides = overrides;
    invocation.overrides.push_back("campaign.dir=" + dir + "/run");
    return Campaign::load(invocation, 1);
  }

  std::string dir;
};

const char* const full_campaign = R"(campaign: {name: plan, seed: 7}
simulator: {name: gaussian2d}
train: {ensemble: 3}
calibrate: {grid: {mu2: {values: [0.0]}, rho12: {values: [0.0]}}}
slurm:
  partition: short
  account: lattice
  time: "02:00:00"
  ntasks: 4
  mem: 8G
  launcher: mpirun
  extra: ["--qos=high", "--constraint=zen4"]
  array_tasks: 2
  signal_seconds: 90
  nsbi: /bin/true
  stages:
    calibrate: {array_tasks: 5, time: "1-00:00:00", ntasks: 2}
    train: {gpus_per_task: 1}
pipeline: [simulate, train, infer, calibrate, coverage]
)";

// The lines of `script` that start with `prefix`.
std::vector<std::string> lines_with(const std::string& script, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(script);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  return found;
}

bool has_line(const std::string& script, const std::string& line) {
  const auto all = lines_with(script, line);
  return std::find(all.begin(), all.end(), line) != all.end();
}

TEST_F(Submit, ArraysMergeJobsAndDependenciesFollowTheConfig) {
  const SubmitPlan plan = plan_submission(campaign(full_campaign));
  // simulate; train (ensemble 3 over min(2, 3) tasks) + merge; infer; calibrate (its own 5 tasks) + merge;
  // coverage (the campaign-wide 2) + merge.
  struct Expected {
    const char* stage;
    const char* role;
    std::uint64_t array_size;
    const char* file;
  };
  const Expected expected[] = {{"simulate", "stage", 0, "01-simulate.sbatch"},
                               {"train", "array", 2, "02-train-array.sbatch"},
                               {"train", "merge", 0, "02-train-merge.sbatch"},
                               {"infer", "stage", 0, "03-infer.sbatch"},
                               {"calibrate", "array", 5, "04-calibrate-array.sbatch"},
                               {"calibrate", "merge", 0, "04-calibrate-merge.sbatch"},
                               {"coverage", "array", 2, "05-coverage-array.sbatch"},
                               {"coverage", "merge", 0, "05-coverage-merge.sbatch"}};
  ASSERT_EQ(plan.jobs.size(), std::size(expected));
  EXPECT_EQ(plan.directory, dir + "/run/slurm");
  EXPECT_EQ(plan.config_file, dir + "/run/slurm/config.yaml");
  for (std::size_t j = 0; j < plan.jobs.size(); ++j) {
    const SlurmJob& job = plan.jobs[j];
    SCOPED_TRACE(job.file);
    EXPECT_EQ(job.stage, expected[j].stage);
    EXPECT_EQ(job.role, expected[j].role);
    EXPECT_EQ(job.array_size, expected[j].array_size);
    EXPECT_EQ(job.file, plan.directory + "/" + expected[j].file);
    // A chain: each job waits for the one before (a merge for its array, a stage for the stage before).
    EXPECT_EQ(job.after, j == 0 ? std::vector<std::size_t>{} : std::vector<std::size_t>{j - 1});
    const std::string& s = job.script;
    EXPECT_EQ(s.rfind("#!/bin/bash\n", 0), 0u);
    EXPECT_TRUE(has_line(s, "#SBATCH --job-name=nsbi-plan-" + job.stage));
    EXPECT_TRUE(has_line(s, "#SBATCH --requeue"));
    EXPECT_TRUE(has_line(s, "#SBATCH --signal=B:USR1@90"));
    EXPECT_TRUE(has_line(s, "#SBATCH --partition=short"));
    EXPECT_TRUE(has_line(s, "#SBATCH --account=lattice"));
    EXPECT_TRUE(has_line(s, "#SBATCH --mem=8G"));
    EXPECT_TRUE(has_line(s, "#SBATCH --qos=high"));
    EXPECT_TRUE(has_line(s, "#SBATCH --constraint=zen4"));
    EXPECT_TRUE(has_line(s, "nsbi='/bin/true'"));
    EXPECT_TRUE(has_line(s, "config='" + plan.config_file + "'"));
    const auto array_lines = lines_with(s, "#SBATCH --array=");
    if (job.array_size > 0) {
      ASSERT_EQ(array_lines.size(), 1u);
      EXPECT_EQ(array_lines[0], "#SBATCH --array=0-" + std::to_string(job.array_size - 1));
      EXPECT_TRUE(has_line(s, "#SBATCH --output=" + plan.directory + "/" + job.stage + "-%A_%a.out"));
    } else {
      EXPECT_TRUE(array_lines.empty());
    }
    // What runs: the stage, its slice of the work in an array task, everything in a merge.
    const auto commands = lines_with(s, "command=(");
    ASSERT_EQ(commands.size(), 1u);
    std::string args = "\"$nsbi\" " + job.stage + " \"$config\"";
    if (job.role == "array")
      args += std::string(job.stage == "train" ? " --members" : " --slice") + " \"$SLURM_ARRAY_TASK_ID/" +
              std::to_string(job.array_size) + "\"";
    EXPECT_EQ(commands[0], "command=(mpirun -np \"$SLURM_NTASKS\" " + args + ")");
  }
  // Per-stage resources override the campaign-wide ones, for that stage only.
  EXPECT_TRUE(has_line(plan.jobs[4].script, "#SBATCH --time=1-00:00:00"));
  EXPECT_TRUE(has_line(plan.jobs[4].script, "#SBATCH --ntasks=2"));
  EXPECT_TRUE(has_line(plan.jobs[3].script, "#SBATCH --time=02:00:00"));
  EXPECT_TRUE(has_line(plan.jobs[3].script, "#SBATCH --ntasks=4"));
  EXPECT_TRUE(has_line(plan.jobs[1].script, "#SBATCH --gpus-per-task=1"));
  EXPECT_TRUE(lines_with(plan.jobs[3].script, "#SBATCH --gpus-per-task").empty());
}

TEST_F(Submit, EveryScriptPassesBashSyntaxCheck) {
  for (const char* launcher : {"srun", "mpirun"}) {
    // An awkward path too: quotes and spaces in the binary's name must survive.
    const std::string binary = dir + "/it's an nsbi";
    std::ofstream(binary) << "#!/bin/sh\n";
    fs::permissions(binary, fs::perms::owner_all);
    const SubmitPlan plan = plan_submission(campaign(
        full_campaign, {std::string("slurm.launcher=") + launcher, "slurm.nsbi=\"" + binary + "\""}));
    for (const SlurmJob& job : plan.jobs) {
      const std::string file = dir + "/check.sbatch";
      std::ofstream(file) << job.script;
      EXPECT_EQ(std::system(("bash -n " + file + " 2>" + dir + "/bash.err").c_str()), 0)
          << launcher << " " << job.file << ":\n"
          << job.script;
      EXPECT_NE(job.script.find("nsbi='" + dir + "/it'\\''s an nsbi'"), std::string::npos) << job.script;
    }
  }
  // bash -n does fail on a broken script (the check above can fail).
  std::ofstream(dir + "/broken.sbatch") << "#!/bin/bash\nif true; then\n";
  EXPECT_NE(std::system(("bash -n " + dir + "/broken.sbatch 2>/dev/null").c_str()), 0);
}

TEST_F(Submit, NoArraysWithOneTaskOrOneMember) {
  const std::string base =
      "campaign: {name: plain}\nsimulator: {name: gaussian2d}\nslurm: {nsbi: /bin/true}\n"
      "pipeline: [simulate, train, calibrate]\n";
  // Defaults: train.ensemble 1 (no train array), slurm.array_tasks 4 for calibrate.
  SubmitPlan plan = plan_submission(campaign(base));
  ASSERT_EQ(plan.jobs.size(), 4u);
  EXPECT_EQ(plan.jobs[1].role, "stage");
  EXPECT_EQ(plan.jobs[2].array_size, 4u);
  EXPECT_EQ(plan.jobs[3].role, "merge");
  // The srun launcher is the default.
  EXPECT_EQ(lines_with(plan.jobs[0].script, "command=(")[0], "command=(srun \"$nsbi\" simulate \"$config\")");
  const SubmitPlan pmix = plan_submission(campaign(base, {"slurm.mpi=pmix"}));
  EXPECT_EQ(lines_with(pmix.jobs[0].script, "command=(")[0],
            "command=(srun --mpi='pmix' \"$nsbi\" simulate \"$config\")");
  plan = plan_submission(campaign(base, {"slurm.array_tasks=1"}));
  ASSERT_EQ(plan.jobs.size(), 3u);
  for (const SlurmJob& job : plan.jobs) EXPECT_EQ(job.role, "stage");
}

TEST_F(Submit, DryRunWritesScriptsAndAResolvedConfigAndSubmitsNothing) {
  const Campaign c = campaign(full_campaign, {"calibrate.n_toys=77"});
  std::ostringstream out;
  submit_campaign(c, /*dry_run=*/true, out);
  const SubmitPlan plan = plan_submission(c);
  for (const SlurmJob& job : plan.jobs) {
    std::ifstream in(job.file);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), job.script) << job.file;
    EXPECT_NE(out.str().find(job.script), std::string::npos) << "the dry run does not print " << job.file;
    EXPECT_TRUE(fs::status(job.file).permissions() != fs::perms::none);
  }
  EXPECT_FALSE(fs::exists(plan.directory + "/jobs.json"));
  EXPECT_NE(out.str().find("--dependency=afterok:<" + plan.jobs[3].file + "> --kill-on-invalid-dep=yes " +
                           plan.jobs[4].file),
            std::string::npos)
      << out.str();
  // The jobs' config: the overrides applied, campaign.dir absolute, and it loads as a campaign.
  Invocation again;
  again.config_file = plan.config_file;
  const Campaign resolved = Campaign::load(again, 1);
  EXPECT_EQ(resolved.config.get<std::int64_t>("calibrate.n_toys"), 77);
  EXPECT_EQ(resolved.dir, dir + "/run");
  EXPECT_EQ(resolved.config.get<std::string>("slurm.launcher"), "mpirun");
}

// The ConfigError message of loading (and planning) `yaml`.
std::string config_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(Submit, BadSlurmKeysAreConfigErrorsNamingTheKey) {
  const std::string head = "simulator: {name: gaussian2d}\npipeline: [simulate, calibrate]\n";
  const auto error = [&](const std::string& slurm) {
    return config_error([&] { plan_submission(campaign(head + "slurm:\n" + slurm)); });
  };
  EXPECT_TRUE(std::regex_search(error("  launcher: srunn\n"),
                                std::regex(R"(campaign\.yaml:4:\d+: slurm\.launcher: .*srun.*mpirun)")))
      << error("  launcher: srunn\n");
  EXPECT_TRUE(std::regex_search(error("  stages: {calibrate: {tme: '10'}}\n"),
                                std::regex(R"(campaign\.yaml:4:\d+: slurm\.stages\.calibrate\.tme: .*time)")))
      << error("  stages: {calibrate: {tme: '10'}}\n");
  EXPECT_TRUE(std::regex_search(error("  array_tasks: 0\n"), std::regex(R"(slurm\.array_tasks: .*1)")))
      << error("  array_tasks: 0\n");
  EXPECT_TRUE(
      std::regex_search(error("  time: one hour\n"),
                        std::regex(R"(campaign\.yaml:4:\d+: slurm\.time: 'one hour' is not a SLURM)")))
      << error("  time: one hour\n");
  EXPECT_TRUE(std::regex_search(error("  stages: {calibrate: {mem: lots}}\n"),
                                std::regex(R"(slurm\.stages\.calibrate\.mem: 'lots' is not a SLURM memory)")))
      << error("  stages: {calibrate: {mem: lots}}\n");
  EXPECT_TRUE(std::regex_search(error("  stages: {infer: {time: '10'}}\n"),
                                std::regex(R"(slurm\.stages\.infer: stage infer is not in the pipeline)")))
      << error("  stages: {infer: {time: '10'}}\n");
  EXPECT_TRUE(std::regex_search(error("  nsbi: /no/such/nsbi\n"),
                                std::regex(R"(slurm\.nsbi: '/no/such/nsbi' is not an executable)")))
      << error("  nsbi: /no/such/nsbi\n");
  EXPECT_TRUE(std::regex_search(error("  signal_seconds: 70000\n"), std::regex(R"(slurm\.signal_seconds)")))
      << error("  signal_seconds: 70000\n");
  // A well-formed section is no error: the checks above are about the values.
  EXPECT_EQ(error("  launcher: srun\n  time: '30'\n"), "(no error)");
}

// The work queue's slices, which calibrate/coverage --slice and the job arrays rest on.
void item_value(std::uint64_t item, double* out) {
  out[0] = std::sin(0.5 * static_cast<double>(item)) + static_cast<double>(item);
  out[1] = std::sqrt(static_cast<double>(item) + 0.25);
}

// nsbi submit checks each stage's memory per rank against what its jobs ask SLURM for (--mem per node over
// the job's ranks per node), not against the submitting machine's.
TEST_F(Submit, StagesMustFitTheMemoryTheirJobsAskFor) {
  const std::string head =
      "simulator: {name: gaussian2d}\npipeline: [simulate, infer]\n"
      "infer: {grid: {mu2: {points: 1000}, rho12: {points: 1000}}}\n";  // about 370 MiB per rank
  const auto error = [&](const std::string& slurm) {
    return config_error([&] { plan_submission(campaign(head + "slurm:\n" + slurm)); });
  };
  EXPECT_EQ(error("  mem: 1G\n"), "(no error)");
  EXPECT_EQ(error("  mem: ''\n"), "(no error)");  // the cluster's default: nothing to check against
  const std::string four_ranks = error("  mem: 1G\n  ntasks: 4\n");
  EXPECT_TRUE(std::regex_search(
      four_ranks,
      std::regex(
          R"(campaign\.yaml:3:\d+: infer\.grid\.mu2\.points: infer would need about 3\d\d\.\d MiB )"
          R"(per MPI rank, more than the 256\.0 MiB a rank has \(slurm\.mem = 1G per node for 4 rank)")))
      << four_ranks;
  // Over two nodes, two ranks share each node's gigabyte; a stage's own mem counts for that stage.
  EXPECT_EQ(error("  mem: 1G\n  ntasks: 4\n  nodes: 2\n"), "(no error)");
  EXPECT_TRUE(std::regex_search(error("  stages: {infer: {mem: 200M}}\n"),
                                std::regex(R"(slurm\.stages\.infer\.mem = 200M per node for 1 rank)")))
      << error("  stages: {infer: {mem: 200M}}\n");
}

TEST(WorkSlice, CountsItsItems) {
  for (std::uint64_t count = 1; count <= 5; ++count)
    for (std::uint64_t index = 0; index < count; ++index)
      for (std::uint64_t n = 0; n <= 12; ++n) {
        const distributed::WorkSlice slice{index, count};
        std::uint64_t brute = 0;
        for (std::uint64_t i = 0; i < n; ++i) brute += slice.contains(i) ? 1 : 0;
        EXPECT_EQ(slice.size(n), brute) << index << "/" << count << " of " << n;
      }
}

TEST_F(Submit, SlicesComputeTheirItemsAndAnUnslicedRunMergesThem) {
  const Communicator self(MPI_COMM_SELF);
  const std::uint64_t n = 23;
  const std::uint64_t k = 3;
  distributed::WorkQueueOptions o;
  o.directory = dir + "/journals";
  o.identity = "slices v1";
  o.n_items = n;
  o.item_size = 2;
  std::vector<int> calls(n, 0);
  const auto work = [&](std::uint64_t item, double* out) {
    ++calls.at(item);
    item_value(item, out);
  };
  for (std::uint64_t index = 0; index < k; ++index) {
    o.slice = {index, k};
    const distributed::WorkQueueResult result = distributed::run_work_queue(self, o, work);
    EXPECT_TRUE(result.results.empty());
    EXPECT_EQ(result.items_computed, o.slice.size(n));
    // Again: its items are journaled, nothing to do.
    const distributed::WorkQueueResult again = distributed::run_work_queue(self, o, work);
    EXPECT_EQ(again.items_computed, 0u);
    EXPECT_EQ(again.items_done_at_start, o.slice.size(n));
  }
  for (std::uint64_t item = 0; item < n; ++item) EXPECT_EQ(calls[item], 1) << "item " << item;
  // Journals are named per slice, so the tasks of an array (each its own rank 0) never share one.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(o.directory)) names.push_back(entry.path().filename());
  ASSERT_EQ(names.size(), k);
  for (std::uint64_t index = 0; index < k; ++index)
    EXPECT_EQ(std::count_if(names.begin(), names.end(),
                            [&](const std::string& name) {
                              return std::regex_match(
                                  name, std::regex("[0-9a-f]{16}-slice" + std::to_string(index) +
                                                   "of3-rank0\\.journal"));
                            }),
              1);

  o.slice = {};
  const distributed::WorkQueueResult merged = distributed::run_work_queue(self, o, work);
  EXPECT_EQ(merged.items_done_at_start, n);
  EXPECT_EQ(merged.items_computed, 0u);
  ASSERT_EQ(merged.results.size(), n * 2);
  for (std::uint64_t item = 0; item < n; ++item) {
    double expected[2];
    item_value(item, expected);
    EXPECT_EQ(std::memcmp(merged.results.data() + 2 * item, expected, sizeof expected), 0) << "item " << item;
  }
}

TEST_F(Submit, ASliceReadsNoSiblingJournal) {
  const Communicator self(MPI_COMM_SELF);
  distributed::WorkQueueOptions o;
  o.directory = dir + "/journals";
  o.identity = "slices v1";
  o.n_items = 10;
  o.item_size = 2;
  fs::create_directories(o.directory);
  // A sibling task's journal (here: not a journal at all). Slice 0 leaves it alone...
  std::ofstream(o.directory + "/0123456789abcdef-slice1of2-rank0.journal") << "not a journal";
  o.slice = {0, 2};
  EXPECT_EQ(distributed::run_work_queue(self, o, item_value).items_computed, 5u);
  // ... while an unsliced run reads every journal, and so meets it.
  o.slice = {};
  try {
    distributed::run_work_queue(self, o, item_value);
    ADD_FAILURE() << "the unsliced run did not read the sibling's journal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("slice1of2-rank0.journal' is not an nsbi work journal"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nsbi::jobs
