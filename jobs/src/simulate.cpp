// nsbi simulate: the config's files (training set, reference dataset, observed data) as
// distributed::SimulateSettings, each simulated by distributed::DatasetSimulation, then simulate.json.

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/distributed/simulate_dataset.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

// How /x is stored: the simulator's shape and type, and simulate.compression.
h5::Compression x_compression(const config::Config& config) {
  if (config.get<std::string>("simulate.compression") == "none") return {};
  if (!h5::deflate_available())
    config.fail("simulate.compression",
                "this HDF5 library cannot write deflate (zlib) compression; use none, or an HDF5 built with "
                "zlib");
  return {h5::Compression::Filter::deflate,
          static_cast<int>(config.get<std::int64_t>("simulate.compression_level"))};
}

// /x's layout where it is not tabular float64 uncompressed (files of that layout, made before it could be
// anything else, keep their identity and summary): shape, element type and compression.
std::optional<YAML::Node> x_layout(const config::Config& config, const sims::SimulatorInfo& info) {
  const h5::Compression compression = x_compression(config);
  if (!info.is_array() && !info.x_float32 && compression.filter == h5::Compression::Filter::none) return {};
  YAML::Node layout;
  for (const std::size_t extent : info.observable_shape) layout["shape"].push_back(extent);
  layout["dtype"] = info.x_float32 ? "float32" : "float64";
  layout["compression"] = h5::to_string(compression);
  return layout;
}

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
  simulate.remove("compression");         // in x's layout
  simulate.remove("compression_level");
  if (const auto layout = x_layout(config, info)) identity["x"] = *layout;
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

// One dataset file of the stage (distributed::SimulateSettings says how its rows draw from the streams).
struct DatasetJob {
  std::string label;  // "dataset", "reference" or "observed": names the file in messages and the summary
  std::string key;    // the config key of its path
  std::string path;
  const sims::Proposal* proposal;
  std::uint64_t n_rows;
  std::uint64_t first_index;
  std::uint64_t seed;  // the simulator's streams
  std::vector<double> gold_theta0 = {};
  const sims::Proposal* gold_pairing = nullptr;
};

distributed::SimulateSettings dataset_settings(const Campaign& campaign, const sims::SimulatorInfo& info,
                                               const DatasetJob& job, bool force) {
  const config::Config& config = campaign.config;
  distributed::SimulateSettings settings;
  settings.path = job.path;
  settings.proposal = job.proposal;
  settings.n_rows = job.n_rows;
  settings.block_rows = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.block_size"));
  settings.first_index = job.first_index;
  settings.seed = campaign.seed;
  settings.simulator_seed = job.seed;
  settings.gold_theta0 = job.gold_theta0;
  settings.gold_pairing = job.gold_pairing;
  settings.x_compression = x_compression(config);
  settings.config_yaml = config.resolved_yaml();
  settings.identity = simulate_identity(config, job.label, info);
  settings.provenance = campaign.provenance;
  settings.force = force;
  settings.checkpoint_seconds = config.get<double>("simulate.checkpoint_seconds");
  return settings;
}

json::Object simulate_one(const Communicator& world, const Campaign& campaign,
                          const sims::Simulator& simulator, const DatasetJob& job, bool force) {
  const sims::SimulatorInfo& info = simulator.info();
  const distributed::SimulateSettings settings = dataset_settings(campaign, info, job, force);
  world.agree([&] { prepare_directory(campaign.config, job.key, parent_directory(job.path)); },
              /*root_only=*/true);
  distributed::DatasetSimulation simulation(world, simulator, settings);
  json::Object summary;
  summary.set("output", job.path)
      .set("n_samples", static_cast<std::int64_t>(job.n_rows))
      .set("gold", !job.gold_theta0.empty());
  if (simulation.state() == distributed::DatasetWriter::State::complete) {
    log::info("simulate: '", job.path,
              "' is complete and was made from this config: nothing to do (--force redoes it)");
    return summary.set("events_per_second", 0.0);
  }
  if (simulation.state() == distributed::DatasetWriter::State::resumed)
    log::info("simulate: resuming '", job.path, ".partial': ", simulation.rows_done(), " of ", job.n_rows,
              " rows already done");
  log::info("simulate: ", job.label, ": ", job.n_rows, " rows of ", info.name, " in blocks of ",
            settings.block_rows, " on ", world.size(), " rank(s), seed ", campaign.seed);

  const std::uint64_t rows_at_start = simulation.rows_done();
  Progress progress("simulate " + job.label, job.n_rows, "events", world.is_root(), rows_at_start);
  const auto start = std::chrono::steady_clock::now();
  const double write_seconds = simulation.run([&](std::uint64_t rows_done) { progress.update(rows_done); });
  progress.finish();
  const double seconds = seconds_since(start);
  log::info("simulate: wrote '", job.path, "'");
  return summary.set("seconds", seconds)
      .set("write_seconds", write_seconds)
      .set("events_per_second", static_cast<double>(job.n_rows - rows_at_start) / seconds);
}

// The proposals of the stage's files: the training set's, and the fixed points of the reference dataset and
// of the observed data (each only when its θ is given).
struct Proposals {
  std::optional<sims::Proposal> dataset;
  std::optional<sims::Proposal> reference;
  std::optional<sims::Proposal> observed;
};

Proposals read_proposals(const Communicator& world, const config::Config& config,
                         const sims::SimulatorInfo& info) {
  Proposals proposals;
  world.agree([&] {
    proposals.dataset = sims::Proposal::from_config(config, "simulate.proposal", info);
    if (!config.children("simulate.reference.theta").empty())
      proposals.reference = sims::Proposal::fixed_point_from_config(config, "simulate.reference.theta", info);
    if (!config.children("simulate.observed.theta").empty())
      proposals.observed = sims::Proposal::fixed_point_from_config(config, "simulate.observed.theta", info);
  });
  return proposals;
}

// θ0 of the joint log ratios with simulate.gold (the reference point), else empty.
std::vector<double> read_gold_theta0(const Communicator& world, const config::Config& config,
                                     const sims::SimulatorInfo& info, bool has_reference) {
  std::vector<double> gold_theta0;
  world.agree([&] {
    if (!config.get<bool>("simulate.gold")) return;
    if (!info.has_gold)
      config.fail("simulate.gold", "simulator " + info.name +
                                       " has no gold (docs/simulators.md lists the simulators that do)");
    if (!has_reference)
      config.fail("simulate.gold",
                  "gold needs simulate.reference.theta: the θ0 of the joint log ratio log r(x, z|θ, θ0)");
    for (const auto& p : info.parameters)
      gold_theta0.push_back(config.get<double>("simulate.reference.theta." + p.name));
  });
  return gold_theta0;
}

// The summaries of the files the stage made (simulate_one's).
struct FileSummaries {
  json::Object dataset;
  std::optional<json::Object> reference;
  std::optional<json::Object> observed;
};

// simulate.json, written by rank 0 once every file is complete.
void write_simulate_summary(const Communicator& world, const Campaign& campaign,
                            const sims::SimulatorInfo& info, const FileSummaries& files) {
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
            .set("observables", info.observables);
        if (const auto layout = x_layout(campaign.config, info)) {
          std::vector<double> shape;
          for (const std::size_t extent : info.observable_shape) shape.push_back(static_cast<double>(extent));
          summary.set("x", json::Object()
                               .set("shape", shape)
                               .set("dtype", (*layout)["dtype"].as<std::string>())
                               .set("compression", (*layout)["compression"].as<std::string>()));
        }
        summary.set("mpi_ranks", static_cast<std::int64_t>(world.size())).set("dataset", files.dataset);
        if (files.reference) summary.set("reference", *files.reference);
        if (files.observed) summary.set("observed", *files.observed);
        summary.set("peak_rss_mib_per_rank", peak_rss_mib)
            .set("nsbi_version", campaign.provenance.nsbi_version)
            .set("created", created);
        json::write_file_atomically(campaign.output_path("simulate.json"), summary.dump() + "\n");
      },
      /*root_only=*/true);
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
  const Proposals proposals = read_proposals(world, config, info);
  // Gold: the joint log ratios are against the reference point θ0.
  const std::vector<double> gold_theta0 =
      read_gold_theta0(world, config, info, proposals.reference.has_value());
  world.agree([&] { prepare_directory(config, "campaign.dir", campaign.dir); }, /*root_only=*/true);

  FileSummaries files;
  const auto n_rows = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.n_samples"));
  const std::string path = campaign.output_path(config.get<std::string>("simulate.output"));
  files.dataset = simulate_one(
      world, campaign, *simulator,
      {"dataset", "simulate.output", path, &*proposals.dataset, n_rows, 0, campaign.seed, gold_theta0},
      force);
  if (proposals.reference) {
    const auto n_reference = static_cast<std::uint64_t>(config.get<std::int64_t>(
        config.has("simulate.reference.n_samples") ? "simulate.reference.n_samples" : "simulate.n_samples"));
    const std::string reference_path =
        campaign.output_path(config.get<std::string>("simulate.reference.output"));
    files.reference = simulate_one(
        world, campaign, *simulator,
        {"reference", "simulate.reference.output", reference_path, &*proposals.reference, n_reference, n_rows,
         campaign.seed, gold_theta0, gold_theta0.empty() ? nullptr : &*proposals.dataset},
        force);
  }
  if (proposals.observed) {
    const auto n_events = static_cast<std::uint64_t>(config.get<std::int64_t>("simulate.observed.n_events"));
    files.observed = simulate_one(
        world, campaign, *simulator,
        {"observed", "simulate.observed.output",
         campaign.output_path(config.get<std::string>("simulate.observed.output")), &*proposals.observed,
         n_events, 0, inference::toy_seed(campaign.seed, inference::ToyStage::observed, 0)},
        force);
  }
  write_simulate_summary(world, campaign, info, files);
}

}  // namespace nsbi::jobs
