#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>

#include "nsbi/core/json.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/distributed/dataset_writer.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

// What decides the rows' values (and the file's layout): a dataset is resumed or kept only if this matches.
std::string simulate_identity(const config::Config& config, const std::string& label,
                              const sims::SimulatorInfo& info) {
  YAML::Node identity;
  identity["file"] = label;
  identity["seed"] = config.get<std::int64_t>("campaign.seed");
  identity["simulator"] = config.get<YAML::Node>("simulator");
  if (info.stream_version != 1) identity["simulator_version"] = info.stream_version;
  YAML::Node simulate = config.get<YAML::Node>("simulate");
  simulate.remove("checkpoint_seconds");  // when blocks are recorded, not what they hold
  if (label == "observed") {
    // The observed data draws from its own streams: only its own keys decide it.
    YAML::Node observed = simulate["observed"];
    observed.remove("output");
    identity["observed"] = observed;
  } else {
    simulate.remove("output");
    simulate.remove("observed");
    // The training set depends on its reference only through gold (θ0 of its joint log ratios); the
    // reference starts where the training set ends.
    if (label == "dataset") {
      const YAML::Node theta0 = YAML::Clone(simulate["reference"]["theta"]);
      simulate.remove("reference");
      if (simulate["gold"].as<bool>()) simulate["gold_theta0"] = theta0;
    } else {
      simulate["reference"].remove("output");
    }
    identity["simulate"] = simulate;
  }
  YAML::Emitter out;
  out << identity;
  return out.c_str();
}

std::string emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

// One dataset file: rows [0, n_rows) of it draw from the simulator streams (seed, first_index + row), so a
// reference dataset (first_index = the training set's size) shares no random numbers with the training set,
// and the observed data (seed: inference::toy_seed of ToyStage::observed) none with either.
struct DatasetJob {
  std::string label;  // "dataset", "reference" or "observed": names the file in messages and the summary
  std::string key;    // the config key of its path
  std::string path;
  const sims::Proposal* proposal;
  std::uint64_t n_rows;
  std::uint64_t first_index;
  std::uint64_t seed;
  // Gold: θ0 of the joint log ratios (empty: no gold). A reference dataset's rows are all at θ0, so their log
  // ratio is evaluated at the θ that training pairs them with: drawn from `gold_pairing` (the training
  // proposal) at the rows' own indices, which the training set's rows [0, n) never reach.
  std::vector<double> gold_theta0 = {};
  const sims::Proposal* gold_pairing = nullptr;
};

json::Object simulate_one(const Communicator& world, const Campaign& campaign,
                          const sims::Simulator& simulator, const DatasetJob& job, bool force) {
  const config::Config& config = campaign.config;
  const sims::SimulatorInfo& info = simulator.info();
  distributed::DatasetDescription description;
  description.simulator = info.name;
  for (const auto& p : info.parameters) description.parameter_names.push_back(p.name);
  description.observable_names = info.observables;
  description.proposal_yaml = emit(job.proposal->to_yaml());
  description.seed = campaign.seed;
  description.config_yaml = config.resolved_yaml();
  description.identity = simulate_identity(config, job.label, info);
  description.provenance = campaign.provenance;
  // Attributes are written collectively: every rank must write rank 0's values.
  description.provenance.created_utc = world.broadcast(campaign.provenance.created_utc);
  description.provenance.hostname = world.broadcast(campaign.provenance.hostname);
  description.n_rows = job.n_rows;
  description.block_rows = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.block_size"));
  description.gold_theta0 = job.gold_theta0;
  description.gold_theta = job.gold_pairing != nullptr;
  const bool gold = !job.gold_theta0.empty();

  world.agree([&] { prepare_directory(config, job.key, parent_directory(job.path)); }, /*root_only=*/true);
  distributed::DatasetWriter writer(world, job.path, description, force,
                                    config.get<double>("simulate.checkpoint_seconds"));
  json::Object summary;
  summary.set("output", job.path).set("n_samples", static_cast<std::int64_t>(job.n_rows)).set("gold", gold);
  if (writer.state() == distributed::DatasetWriter::State::complete) {
    log::info("simulate: '", job.path,
              "' is complete and was made from this config: nothing to do (--force redoes it)");
    return summary.set("events_per_second", 0.0);
  }
  if (writer.state() == distributed::DatasetWriter::State::resumed)
    log::info("simulate: resuming '", job.path, ".partial': ", writer.rows_done(), " of ", job.n_rows,
              " rows already done");
  log::info("simulate: ", job.label, ": ", job.n_rows, " rows of ", info.name, " in blocks of ",
            description.block_rows, " on ", world.size(), " rank(s), seed ", campaign.seed);

  const std::size_t block_rows = writer.schedule().block_rows();
  Matrix theta = make_matrix("nsbi::simulate::theta", block_rows, info.n_parameters());
  Matrix x = make_matrix("nsbi::simulate::x", block_rows, info.n_observables());
  auto theta_host = Kokkos::create_mirror_view(theta);
  auto x_host = Kokkos::create_mirror_view(x);
  // Gold buffers (empty without gold): joint log ratio, joint score, and the θ the ratio is evaluated at.
  const std::size_t gold_rows = gold ? block_rows : 0;
  Vector log_r("nsbi::simulate::log_r", gold_rows);
  Matrix score = make_matrix("nsbi::simulate::score", gold_rows, info.n_parameters());
  Matrix gold_theta = make_matrix("nsbi::simulate::gold_theta", gold_rows, info.n_parameters());
  auto log_r_host = Kokkos::create_mirror_view(log_r);
  auto score_host = Kokkos::create_mirror_view(score);
  auto gold_theta_host = Kokkos::create_mirror_view(gold_theta);

  const auto& pending = writer.pending_blocks();
  const std::uint64_t rounds = distributed::BlockSchedule::rounds(pending.size(), world.size());
  std::uint64_t rows_done = writer.rows_done();
  const std::uint64_t writer_start_rows = rows_done;
  Progress progress("simulate " + job.label, job.n_rows, "events", world.is_root(), rows_done);
  const auto start = std::chrono::steady_clock::now();
  double write_seconds = 0.0;  // in the collective writes and checkpoints, waits for other ranks included
  // A simulator may fail (an external program: docs/external_simulators.md); every rank then stops, with
  // the blocks written so far recorded in the .partial file.
  const auto keep_written_blocks = [&](const std::function<void()>& work) {
    try {
      world.agree(work);
    } catch (const CollectiveError&) {
      writer.checkpoint();
      throw;
    }
  };
  for (std::uint64_t round = 0; round < rounds; ++round) {
    if (world.any(stop_requested())) {
      writer.checkpoint();
      throw CollectiveError(ExitCode::interrupted,
                            "simulate: stopped by a signal after " + std::to_string(rows_done) + " of " +
                                std::to_string(job.n_rows) + " rows of '" + job.path +
                                "'; every finished block is saved: run the same command to resume");
    }
    const auto block = distributed::BlockSchedule::block_for(pending, round, world.rank(), world.size());
    std::int64_t rows = 0;
    std::int64_t non_finite = 0;
    keep_written_blocks([&] {
      if (block) {
        const distributed::RowRange range = writer.schedule().rows(*block);
        rows = static_cast<std::int64_t>(range.size());
        const auto sub = std::make_pair(std::size_t{0}, range.size());
        Matrix theta_block = Kokkos::subview(theta, sub, Kokkos::ALL);
        Matrix x_block = Kokkos::subview(x, sub, Kokkos::ALL);
        job.proposal->sample(theta_block, job.first_index + range.begin, campaign.seed);
        if (gold) {
          Matrix gold_theta_block = Kokkos::subview(gold_theta, sub, Kokkos::ALL);
          if (job.gold_pairing != nullptr)
            job.gold_pairing->sample(gold_theta_block, job.first_index + range.begin, campaign.seed);
          else
            Kokkos::deep_copy(gold_theta_block, theta_block);
          simulator.simulate_gold(ExecutionSpace(), theta_block, x_block, gold_theta_block,
                                  job.gold_theta0.data(), Kokkos::subview(log_r, sub),
                                  Kokkos::subview(score, sub, Kokkos::ALL), job.first_index + range.begin,
                                  job.seed);
          Kokkos::deep_copy(log_r_host, log_r);
          Kokkos::deep_copy(score_host, score);
          Kokkos::deep_copy(gold_theta_host, gold_theta);
        } else {
          simulator.simulate(theta_block, x_block, job.first_index + range.begin, job.seed);
        }
        Kokkos::deep_copy(theta_host, theta);
        Kokkos::deep_copy(x_host, x);
        for (std::size_t i = 0; i < range.size() * info.n_observables(); ++i)
          non_finite += std::isfinite(x_host.data()[i]) ? 0 : 1;
        for (std::size_t i = 0; i < range.size() && gold; ++i) {
          non_finite += std::isfinite(log_r_host(i)) ? 0 : 1;
          for (std::size_t p = 0; p < info.n_parameters(); ++p)
            non_finite += std::isfinite(score_host(i, p)) ? 0 : 1;
        }
      }
    });
    if (world.sum(non_finite) > 0)
      keep_written_blocks([&] {
        if (non_finite > 0)
          throw InternalError("simulate: simulator " + info.name + " produced " + std::to_string(non_finite) +
                              " non-finite values in block " + std::to_string(*block) + " of '" + job.path +
                              "'; nothing of this block was written");
      });
    const auto write_start = std::chrono::steady_clock::now();
    writer.write_round(
        block, theta_host.data(), x_host.data(),
        gold ? distributed::GoldRows{log_r_host.data(), score_host.data(), gold_theta_host.data()}
             : distributed::GoldRows{});
    write_seconds += seconds_since(write_start);
    rows_done += static_cast<std::uint64_t>(world.sum(rows));
    progress.update(rows_done);
  }
  const auto finish_start = std::chrono::steady_clock::now();
  writer.finish();
  write_seconds += seconds_since(finish_start);
  progress.finish();
  const double seconds = seconds_since(start);
  log::info("simulate: wrote '", job.path, "'");
  return summary.set("seconds", seconds)
      .set("write_seconds", world.max(write_seconds))
      .set("events_per_second", static_cast<double>(job.n_rows - writer_start_rows) / seconds);
}

}  // namespace

// mkdir -p `dir`, then a write check, so that an unwritable output location is a config error naming `key`.
void prepare_directory(const config::Config& config, const std::string& key, const std::string& dir) {
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string partial = dir.substr(0, i);
    if (mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST)
      config.fail(key, "cannot create directory '" + partial + "': " + std::strerror(errno));
  }
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    config.fail(key, "'" + dir + "' is not a directory");
  if (access(dir.c_str(), W_OK) != 0)
    config.fail(key, "cannot write into '" + dir + "': " + std::strerror(errno));
}

std::string parent_directory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void run_simulate(const Communicator& world, const Campaign& campaign, bool force) {
  const config::Config& config = campaign.config;
  const auto simulator = make_simulator(config);
  const sims::SimulatorInfo& info = simulator->info();
  std::optional<sims::Proposal> proposal;
  std::optional<sims::Proposal> reference;
  std::optional<sims::Proposal> observed;
  world.agree([&] {
    proposal = sims::Proposal::from_config(config, "simulate.proposal", info);
    if (!config.children("simulate.reference.theta").empty())
      reference = sims::Proposal::fixed_point_from_config(config, "simulate.reference.theta", info);
    if (!config.children("simulate.observed.theta").empty())
      observed = sims::Proposal::fixed_point_from_config(config, "simulate.observed.theta", info);
  });
  // Gold: the joint log ratios are against the reference point θ0.
  std::vector<double> gold_theta0;
  world.agree([&] {
    if (!config.get<bool>("simulate.gold")) return;
    if (!info.has_gold)
      config.fail("simulate.gold", "simulator " + info.name +
                                       " has no gold (docs/simulators.md lists the simulators that do)");
    if (!reference)
      config.fail("simulate.gold",
                  "gold needs simulate.reference.theta: the θ0 of the joint log ratio log r(x, z|θ, θ0)");
    for (const auto& p : info.parameters)
      gold_theta0.push_back(config.get<double>("simulate.reference.theta." + p.name));
  });
  world.agree([&] { prepare_directory(config, "campaign.dir", campaign.dir); }, /*root_only=*/true);

  const auto n_rows = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.n_samples"));
  const std::string path = campaign.output_path(config.get<std::string>("simulate.output"));
  json::Object dataset = simulate_one(
      world, campaign, *simulator,
      {"dataset", "simulate.output", path, &*proposal, n_rows, 0, campaign.seed, gold_theta0}, force);
  std::optional<json::Object> reference_summary;
  if (reference) {
    const auto n_reference = static_cast<std::uint64_t>(config.get<std::int64_t>(
        config.has("simulate.reference.n_samples") ? "simulate.reference.n_samples" : "simulate.n_samples"));
    const std::string reference_path =
        campaign.output_path(config.get<std::string>("simulate.reference.output"));
    reference_summary =
        simulate_one(world, campaign, *simulator,
                     {"reference", "simulate.reference.output", reference_path, &*reference, n_reference,
                      n_rows, campaign.seed, gold_theta0, gold_theta0.empty() ? nullptr : &*proposal},
                     force);
  }
  std::optional<json::Object> observed_summary;
  if (observed) {
    const auto n_events = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.observed.n_events"));
    observed_summary =
        simulate_one(world, campaign, *simulator,
                     {"observed", "simulate.observed.output",
                      campaign.output_path(config.get<std::string>("simulate.observed.output")), &*observed,
                      n_events, 0, inference::toy_seed(campaign.seed, inference::ToyStage::observed, 0)},
                     force);
  }

  // Peak resident memory of the largest rank: the stage's memory stays bounded by the block size.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mib = world.max(static_cast<double>(usage.ru_maxrss) / 1024.0);
  const std::string created = world.broadcast(campaign.provenance.created_utc);
  world.agree(
      [&] {
        std::vector<std::string> parameters;
        for (const auto& p : info.parameters) parameters.push_back(p.name);
        json::Object summary;
        summary.set("stage", "simulate")
            .set("complete", true)
            .set("simulator", info.name)
            .set("seed", static_cast<std::int64_t>(campaign.seed))
            .set("parameters", parameters)
            .set("observables", info.observables)
            .set("mpi_ranks", static_cast<std::int64_t>(world.size()))
            .set("dataset", dataset);
        if (reference_summary) summary.set("reference", *reference_summary);
        if (observed_summary) summary.set("observed", *observed_summary);
        summary.set("peak_rss_mib_per_rank", peak_rss_mib)
            .set("nsbi_version", campaign.provenance.nsbi_version)
            .set("created", created);
        json::write_file_atomically(campaign.output_path("simulate.json"), summary.dump() + "\n");
      },
      /*root_only=*/true);
}

}  // namespace nsbi::jobs
