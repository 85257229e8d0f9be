#include "nsbi/jobs/cli.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <optional>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/jobs/c2st.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/campaign_lock.hpp"
#include "nsbi/jobs/slurm.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

constexpr const char* usage_text =
    "usage: nsbi <command> CONFIG [--set key.path=value]... [--output DIR] [--force] [--verbose]\n"
    "                           [--allow-extrapolation] [--slice k/K] [--members k/K]\n"
    "       nsbi submit CONFIG [--dry-run] [--set key.path=value]... [--output DIR]\n"
    "       nsbi status DIR|CONFIG [--json]\n"
    "       nsbi c2st A B [--out FILE] [--seed N]\n"
    "       nsbi <command> --help | nsbi --help | nsbi --version\n";

constexpr const char* main_help =
    "nsbi: neural simulation-based inference at HPC scale.\n"
    "\n"
    "A campaign is one YAML file (docs/config.md); each command runs one stage of it, on as many MPI ranks "
    "as\n"
    "it is started with (mpirun -np N nsbi ...). Outputs go to the campaign directory (campaign.dir).\n"
    "\n"
    "commands:\n"
    "  simulate   simulate an amortized training set (theta, x) into one HDF5 file (docs/formats.md)\n"
    "  train      train the classifier whose logit is log r(x|theta,theta0) into model.h5 (docs/formats.md)\n"
    "  infer      best fit, test-statistic scan, Wilks intervals and posterior for the observed events\n"
    "  test       p-values of a simple hypothesis H0 against H1 from pseudo-experiments under both\n"
    "  calibrate  Neyman construction: confidence belts from pseudo-experiments on a theta grid\n"
    "  coverage   how often Wilks and Neyman intervals contain the true theta (Clopper-Pearson errors)\n"
    "  run        the stages listed in `pipeline`, in order, skipping those already complete\n"
    "  submit     the stages of `pipeline` as SLURM batch jobs (job arrays, requeue on preemption)\n"
    "  status     where a campaign stands: per stage complete/running/pending/failed, progress, SLURM jobs\n"
    "  c2st       classifier two-sample test of two sample sets (posterior samples of results.h5, CSV)\n"
    "\n"
    "options (every command):\n"
    "  --set key.path=value  override one config key (repeatable); the value is YAML: 3, 1e5, [0, 1], {kind: "
    "fixed}\n"
    "  --output DIR          write the outputs to DIR (same as --set campaign.dir=DIR)\n"
    "  --force               overwrite existing results instead of refusing or resuming\n"
    "  --verbose             debug messages, from every MPI rank\n"
    "  --allow-extrapolation infer/test/calibrate/coverage: accept theta beyond the model's training range\n"
    "  --slice k/K           calibrate/coverage: only work items i with i % K == k, journaled, no results\n"
    "  --members k/K         train: only ensemble members m with m % K == k, to finished checkpoints, no "
    "model\n"
    "  --help                this text, or a command's own help after the command\n"
    "  --version             the version and the libraries this build uses\n"
    "\n"
    "exit codes: 0 success, 1 internal error (a bug), 2 usage or config error,\n"
    "            3 data that cannot be read or written (bad input, disk full; the same command resumes),\n"
    "            4 interrupted (SIGTERM/SIGUSR1/SIGINT; progress saved, run the same command to resume)\n";

// Each command's --help text.
constexpr const char* simulate_help =
    "nsbi simulate CONFIG [--set key.path=value]... [--output DIR] [--force]\n"
    "\n"
    "Simulates simulate.n_samples rows: theta from the proposal (simulate.proposal), x from the "
    "simulator\n"
    "(simulator.name), into <campaign.dir>/<simulate.output>. Rows are split into blocks of\n"
    "simulate.block_size dealt to the MPI ranks; the file is the same, bit for bit, for any number of "
    "ranks.\n"
    "\n"
    "The file is written as <output>.partial and renamed when every block is in. A run that was killed\n"
    "resumes from the blocks it finished when started again with the same config; --force starts over.\n"
    "An existing complete dataset from the same config is kept (nothing to do); one from another config "
    "is\n"
    "an error unless --force.\n";

constexpr const char* train_help =
    "nsbi train CONFIG [--set key.path=value]... [--output DIR] [--force]\n"
    "\n"
    "Trains a parametric classifier on <campaign.dir>/<train.dataset> (class 1: theta, x) against class "
    "0:\n"
    "with train.reference: theta, the x of train.reference_dataset (events at one point theta0, made by\n"
    "`nsbi simulate` when simulate.reference.theta is set) paired with theta from the dataset; with\n"
    "train.reference: marginal, the dataset's x and theta paired apart. Its logit is then\n"
    "log p(x|theta)/p(x|theta0), or log p(x|theta)/p(x). Data parallel over the MPI ranks: the global "
    "batch\n"
    "(train.batch_size) and the result do not depend on the number of ranks; train.ensemble members "
    "train\n"
    "in parallel on groups of ranks. Datasets larger than memory stream within train.memory_budget_mib.\n"
    "\n"
    "Writes <train.output> (model.h5: architecture, weights, standardisation, history, diagnostics; any\n"
    "numpy can evaluate it, see scripts/nsbi_model.py) and train.json. A checkpoint is written every\n"
    "train.checkpoint_every steps, every epoch and on SIGTERM/SIGUSR1 (exit code 4): the same command\n"
    "resumes and gives the same model. A model from the same config is kept; from another one it is an\n"
    "error unless --force, which also discards checkpoints. Bad datasets (non-finite values, wrong "
    "names,\n"
    "empty, truncated) stop it with exit code 3 before anything is written.\n";

constexpr const char* infer_help =
    "nsbi infer CONFIG [--set key.path=value]... [--output DIR] [--force] [--allow-extrapolation]\n"
    "\n"
    "Reads the observed events (infer.observed: CSV with a header of observable names, or an HDF5 "
    "dataset)\n"
    "and, for each estimator in infer.estimators (learned: the model's log r-hat; exact: the simulator's\n"
    "likelihood, where it has one), computes t(D|theta) = -2 sum_i log r(x_i|theta,theta0) on the grid\n"
    "infer.grid, the best fit (grid minimum refined off the grid), the profile q = t - min t with "
    "nuisance\n"
    "parameters (infer.profile) minimised over, 1-D intervals and joint regions at the Wilks levels, and "
    "the\n"
    "posterior on the grid with samples. Writes /infer of results.h5 and infer.json; with both "
    "estimators\n"
    "infer.json compares them (best-fit difference, Jaccard index of the regions). The grid must lie in "
    "the\n"
    "model's training range unless --allow-extrapolation. A rerun with the same config finds /infer and\n"
    "infer.json complete (nothing to do; either missing: it runs again); results of another config are "
    "an\n"
    "error (exit 2, nothing written) unless --force, which replaces /infer and infer.json only.\n"
    "infer.observed_dataset: [a, b] (or all) analyses several observed datasets of an HDF5 file in one run,\n"
    "each as alone, results under /infer/datasets/<name>; infer.outputs chooses what results.h5 holds\n"
    "(e.g. [posterior_samples]: no full-grid arrays).\n";

constexpr const char* test_help =
    "nsbi test CONFIG [--set key.path=value]... [--output DIR] [--force]\n"
    "\n"
    "Simple hypothesis test of test.h0 against test.h1 with t = -2 sum_i log r(x_i|H1,H0) (small t "
    "favours\n"
    "H1): test.n_toys pseudo-experiments of test.n_events events under each hypothesis, simulated from "
    "the\n"
    "simulator, give the p-value of H0, P(t >= t_obs|H1) and the expected p-value of H0 under H1, each "
    "with\n"
    "its toy count and binomial uncertainty. Toys are spread over the MPI ranks in work items of\n"
    "test.toys_per_item; an interrupted run (exit 4) resumes from the finished items. Results of another\n"
    "config in /test or test.json are an error unless --force, as for infer.\n";

constexpr const char* calibrate_help =
    "nsbi calibrate CONFIG [--set key.path=value]... [--output DIR] [--force] [--allow-extrapolation]\n"
    "\n"
    "Neyman construction: at every point theta_k of calibrate.grid, calibrate.n_toys pseudo-experiments "
    "give\n"
    "the distribution of q_theta_k (each toy scanned over infer.grid and minimised as real data is); its\n"
    "quantiles at calibrate.levels are the belts c_alpha(theta_k), reported next to the Wilks "
    "thresholds.\n"
    "With observed data (infer.observed), also its confidence set {theta: q_theta(D) <= c_alpha(theta)}.\n"
    "Toys are the same on any number of ranks; work items are journaled, so a killed run resumes.\n"
    "--slice k/K (one task of a job array, docs/slurm.md) computes only the work items i with i % K == "
    "k,\n"
    "journals them and writes no results; the plain command then finds every item done and writes "
    "them.\n"
    "Results of another config in /calibrate or calibrate.json are an error unless --force, as for "
    "infer.\n";

constexpr const char* coverage_help =
    "nsbi coverage CONFIG [--set key.path=value]... [--output DIR] [--force] [--allow-extrapolation]\n"
    "\n"
    "At each true value theta* of coverage.grid, coverage.n_toys pseudo-experiments: the fraction whose\n"
    "interval (coverage.methods: wilks, or neyman with the belts of `nsbi calibrate`) contains theta*, "
    "with\n"
    "its 95% Clopper-Pearson interval; a method covers where the nominal level lies inside it.\n"
    "The posterior checks (coverage.methods: sbc, expected_coverage) instead draw theta* from the prior\n"
    "coverage.sbc.runs times, simulate coverage.n_events events and sample the posterior as infer would\n"
    "(grid, or infer.posterior: mcmc): rank histograms of theta* among the samples with a chi-square\n"
    "uniformity test, and how often highest-density regions hold theta* (docs/statistics.md).\n"
    "--slice k/K works as for calibrate (docs/slurm.md). Results of another config in /coverage or\n"
    "coverage.json are an error unless --force, as for infer.\n";

constexpr const char* run_help =
    "nsbi run CONFIG [--set key.path=value]... [--output DIR] [--force] [--allow-extrapolation]\n"
    "\n"
    "Runs the stages of `pipeline` in order (simulate, train, infer, test, calibrate, coverage). A stage\n"
    "that already completed with the same config is skipped, an interrupted one resumes; --force redoes\n"
    "every stage.\n";

constexpr const char* submit_help =
    "nsbi submit CONFIG [--dry-run] [--set key.path=value]... [--output DIR]\n"
    "\n"
    "Runs the campaign on a SLURM cluster (docs/slurm.md): writes the resolved config (with --set "
    "applied)\n"
    "to <campaign.dir>/slurm/config.yaml and one batch script per stage of `pipeline`,\n"
    "<campaign.dir>/slurm/<nn>-<stage>.sbatch, with the resources of the config's `slurm` section, then\n"
    "submits them in order with sbatch --dependency=afterok on the job before. calibrate and coverage "
    "(and\n"
    "train with train.ensemble > 1) become a job array of slurm.array_tasks tasks (--slice/--members "
    "k/K)\n"
    "and a merge job. Jobs ask for --requeue and SIGUSR1 slurm.signal_seconds before their time limit:\n"
    "nsbi checkpoints, exits with code 4 and the job requeues itself to resume. The job ids are printed\n"
    "and recorded in <campaign.dir>/slurm/jobs.json. --dry-run writes and prints the scripts and the "
    "sbatch\n"
    "commands, and submits nothing.\n";

constexpr const char* status_help =
    "nsbi status DIR|CONFIG [--json] [--set key.path=value]...\n"
    "\n"
    "Where a campaign stands, from its files (no SLURM needed): per stage of `pipeline` complete (its\n"
    "<stage>.json), running or interrupted (partial outputs: dataset blocks, training checkpoints, toy\n"
    "journals, with work done, rate and ETA where they can be told), pending (nothing yet) or failed (as\n"
    "SLURM reports the jobs of slurm/jobs.json). DIR is a campaign directory written by `nsbi submit`\n"
    "(its slurm/config.yaml is read); a CONFIG file works for any campaign. --json: the same as JSON.\n";

constexpr const char* c2st_help =
    "nsbi c2st A B [--out FILE] [--seed N]\n"
    "\n"
    "Classifier two-sample test (docs/statistics.md), as sbibm defines it: both sets z-scored with A's mean\n"
    "and standard deviation, an MLP (two ReLU hidden layers of 10 x dimension units, Adam) tells A from B\n"
    "in 5 stratified folds; the mean held-out accuracy is printed: 0.5 when the sets cannot be told apart,\n"
    "1 when they are fully separable. A and B are each a CSV file (a header of parameter names, one sample\n"
    "per row; both files name the same columns in the same order), an HDF5 results file (the posterior\n"
    "samples of its only estimator in /infer) or FILE:DATASET for another dataset [samples, parameters]\n"
    "(e.g. results.h5:/infer/exact/posterior_samples). --out FILE writes the settings, seed, per-fold\n"
    "accuracies, their mean and its standard error as JSON (docs/formats.md). --seed N (default 0) fixes\n"
    "the folds, the mini-batch order and the initial weights: the same seed gives the same result. Runs\n"
    "on one rank (the others wait).\n";

const std::map<std::string, std::string>& command_help() {
  static const std::map<std::string, std::string> help = {
      {"simulate", simulate_help}, {"train", train_help},         {"infer", infer_help},
      {"test", test_help},         {"calibrate", calibrate_help}, {"coverage", coverage_help},
      {"run", run_help},           {"submit", submit_help},       {"status", status_help},
      {"c2st", c2st_help},
  };
  return help;
}

struct Parsed {
  enum class Action { run, help, version } action = Action::run;
  Invocation invocation;
  bool dry_run = false;
  bool json = false;
  std::optional<distributed::WorkSlice> slice;
  std::optional<distributed::WorkSlice> members;
};

[[noreturn]] void usage_error(const std::string& what) { throw ConfigError(what + "\n" + usage_text); }

// "k/K" with 0 <= k < K.
distributed::WorkSlice parse_slice(const std::string& option, const std::string& text) {
  const std::size_t slash = text.find('/');
  const auto number = [&](const std::string& digits) {
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      usage_error(option + " " + text + ": expected k/K with whole numbers 0 <= k < K");
    return static_cast<std::uint64_t>(std::stoull(digits));
  };
  if (slash == std::string::npos)
    usage_error(option + " " + text + ": expected k/K with whole numbers 0 <= k < K");
  distributed::WorkSlice slice{number(text.substr(0, slash)), number(text.substr(slash + 1))};
  if (slice.count == 0 || slice.index >= slice.count)
    usage_error(option + " " + text + ": expected k/K with whole numbers 0 <= k < K");
  return slice;
}

Parsed parse(const std::vector<std::string>& argv) {
  Parsed parsed;
  parsed.invocation.argv = argv;
  std::vector<std::string> positional;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    const auto value = [&](const std::string& option) -> std::string {
      const std::string prefix = option + "=";
      if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
      if (i + 1 >= argv.size()) usage_error(option + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      parsed.action = Parsed::Action::help;
    } else if (arg == "--version") {
      parsed.action = Parsed::Action::version;
    } else if (arg == "--force") {
      parsed.invocation.force = true;
    } else if (arg == "--allow-extrapolation") {
      parsed.invocation.allow_extrapolation = true;
    } else if (arg == "--verbose" || arg == "-v") {
      parsed.invocation.verbose = true;
    } else if (arg == "--set" || arg.rfind("--set=", 0) == 0) {
      parsed.invocation.overrides.push_back(value("--set"));
    } else if (arg == "--output" || arg.rfind("--output=", 0) == 0) {
      parsed.invocation.overrides.push_back("campaign.dir=" + value("--output"));
    } else if (arg == "--dry-run") {
      parsed.dry_run = true;
    } else if (arg == "--json") {
      parsed.json = true;
    } else if (arg == "--slice" || arg.rfind("--slice=", 0) == 0) {
      parsed.slice = parse_slice("--slice", value("--slice"));
    } else if (arg == "--members" || arg.rfind("--members=", 0) == 0) {
      parsed.members = parse_slice("--members", value("--members"));
    } else if (arg.size() > 1 && arg[0] == '-') {
      const std::string suggestion =
          config::closest(arg, {"--help", "--version", "--force", "--verbose", "--set", "--output",
                                "--allow-extrapolation", "--dry-run", "--json", "--slice", "--members"});
      usage_error("unknown option '" + arg + "'" +
                  (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?"));
    } else {
      positional.push_back(arg);
    }
  }
  if (!positional.empty()) parsed.invocation.command = positional[0];
  if (parsed.action != Parsed::Action::run) return parsed;
  if (positional.empty()) usage_error("no command given");
  if (positional.size() < 2) usage_error("nsbi " + positional[0] + " needs a CONFIG file");
  if (positional.size() > 2) usage_error("unexpected argument '" + positional[2] + "'");
  parsed.invocation.config_file = positional[1];
  // Options that belong to one command only.
  const std::string& command = positional[0];
  const auto only = [&](bool given, const char* option, const std::vector<std::string>& commands) {
    if (!given || std::find(commands.begin(), commands.end(), command) != commands.end()) return;
    std::string list;
    for (const auto& c : commands) list += (list.empty() ? "nsbi " : " and nsbi ") + c;
    usage_error(std::string(option) + " is an option of " + list + " only");
  };
  only(parsed.dry_run, "--dry-run", {"submit"});
  only(parsed.json, "--json", {"status"});
  only(parsed.slice.has_value(), "--slice", {"calibrate", "coverage"});
  only(parsed.members.has_value(), "--members", {"train"});
  only(parsed.invocation.force, "--force",
       {"simulate", "train", "infer", "test", "calibrate", "coverage", "run"});
  return parsed;
}

void check_command(const std::string& command) {
  if (command_help().count(command)) return;
  std::vector<std::string> names;
  for (const auto& entry : command_help()) names.push_back(entry.first);
  const std::string suggestion = config::closest(command, names);
  usage_error("unknown command '" + command + "'" +
              (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?"));
}

int dispatch(const Communicator& world, const std::vector<std::string>& argv) {
  // nsbi c2st takes two sample files, not a CONFIG: its own arguments (its --help is the common one's).
  const auto asks_help = [&] {
    return std::find(argv.begin(), argv.end(), "--help") != argv.end() ||
           std::find(argv.begin(), argv.end(), "-h") != argv.end();
  };
  if (argv.size() > 1 && argv[1] == "c2st" && !asks_help()) {
    run_c2st(world, argv);
    return 0;
  }
  // Every rank parses the same command line: a usage error is collective and reported once.
  Parsed parsed;
  world.agree([&] {
    parsed = parse(argv);
    if (!parsed.invocation.command.empty() && parsed.action != Parsed::Action::version)
      check_command(parsed.invocation.command);
  });
  const Invocation& inv = parsed.invocation;
  log::configure(world.rank(), inv.verbose);
  if (parsed.action == Parsed::Action::version) {
    if (world.is_root()) std::fputs(version_report().c_str(), stdout);
    return 0;
  }
  if (parsed.action == Parsed::Action::help) {
    if (world.is_root())
      std::fputs(inv.command.empty() ? main_help : command_help().at(inv.command).c_str(), stdout);
    return 0;
  }
  if (inv.command == "status") {
    // Serial: rank 0 reads the files and asks SLURM.
    world.agree(
        [&] {
          if (world.is_root()) print_status(inv.config_file, inv.overrides, parsed.json, std::cout);
        },
        /*root_only=*/true);
    return 0;
  }
  install_stop_handlers();
  std::optional<Campaign> campaign;
  world.agree([&] { campaign.emplace(Campaign::load(inv, world.size())); });
  if (inv.command == "submit") {
    world.agree([&] { submit_campaign(*campaign, parsed.dry_run, std::cout); }, /*root_only=*/true);
    return 0;
  }
  StageOptions options;
  options.force = inv.force;
  options.allow_extrapolation = inv.allow_extrapolation;
  if (parsed.slice) options.slice = *parsed.slice;
  if (parsed.members) options.members = *parsed.members;
  // Each stage holds the campaign directory's lock of its stage and slice while it runs (campaign_lock.hpp).
  const auto run_stage = [&](const std::string& stage) {
    run_locked(world, *campaign, stage, stage == "train" ? options.members : options.slice, [&] {
      if (stage == "simulate") run_simulate(world, *campaign, options.force);
      if (stage == "train") run_train(world, *campaign, options.force, options.members);
      if (stage == "infer") run_infer(world, *campaign, options);
      if (stage == "test") run_test(world, *campaign, options);
      if (stage == "calibrate") run_calibrate(world, *campaign, options);
      if (stage == "coverage") run_coverage(world, *campaign, options);
    });
  };
  if (inv.command != "run") {
    run_stage(inv.command);
    return 0;
  }
  const auto pipeline = campaign->config.get<std::vector<std::string>>("pipeline");
  for (std::size_t i = 0; i < pipeline.size(); ++i) {
    log::info("run: stage ", i + 1, " of ", pipeline.size(), ": ", pipeline[i]);
    run_stage(pipeline[i]);
  }
  log::info("run: all ", pipeline.size(), " stages complete; outputs in '", campaign->dir, "'");
  return 0;
}

}  // namespace

int run_command_line(const Communicator& world, const std::vector<std::string>& argv) {
  try {
    return dispatch(world, argv);
  } catch (const CollectiveError& e) {
    // Every rank has this error: rank 0 reports it once and all ranks leave with its code.
    if (world.is_root()) std::fprintf(stderr, "nsbi: error: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const Error& e) {
    std::fprintf(stderr, "nsbi: error: %s%s\n",
                 world.size() > 1 ? ("[rank " + std::to_string(world.rank()) + "] ").c_str() : "", e.what());
    if (world.size() > 1) world.abort(e.code());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nsbi: internal error on rank %d: %s (please report this as a bug)\n", world.rank(),
                 e.what());
    if (world.size() > 1) world.abort(ExitCode::internal);
    return static_cast<int>(ExitCode::internal);
  }
}

}  // namespace nsbi::jobs
