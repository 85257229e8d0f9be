#include "nsbi/distributed/simulate_dataset.hpp"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::distributed {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

// What the file records: the simulator's names, the proposal, and the settings' seed, sizes and metadata.
DatasetDescription describe(const Communicator& world, const sims::SimulatorInfo& info,
                            const SimulateSettings& settings) {
  DatasetDescription description;
  description.simulator = info.name;
  for (const auto& p : info.parameters) description.parameter_names.push_back(p.name);
  description.observable_names = info.observables;
  description.observable_shape = info.observable_shape;
  description.x_float32 = info.x_float32;
  description.x_compression = settings.x_compression;
  description.proposal_yaml = emit(settings.proposal->to_yaml());
  description.seed = settings.seed;
  description.config_yaml = settings.config_yaml;
  description.identity = settings.identity;
  description.provenance = settings.provenance;
  // Attributes are written collectively: every rank must write rank 0's values.
  description.provenance.created_utc = world.broadcast(settings.provenance.created_utc);
  description.provenance.hostname = world.broadcast(settings.provenance.hostname);
  description.n_rows = settings.n_rows;
  description.block_rows = settings.block_rows;
  description.gold_theta0 = settings.gold_theta0;
  description.gold_theta = settings.gold_pairing != nullptr;
  return description;
}

// One block's rows: θ and x, and the gold (empty without gold): the joint log ratio, the joint score and the
// θ the ratio is evaluated at; each with its host mirror, which the writer reads.
struct BlockBuffers {
  BlockBuffers(std::size_t block_rows, const sims::SimulatorInfo& info, bool gold)
      : theta(make_matrix("nsbi::simulate::theta", block_rows, info.n_parameters())),
        x(make_matrix("nsbi::simulate::x", block_rows, info.n_observables())),
        log_r("nsbi::simulate::log_r", gold ? block_rows : 0),
        score(make_matrix("nsbi::simulate::score", gold ? block_rows : 0, info.n_parameters())),
        gold_theta(make_matrix("nsbi::simulate::gold_theta", gold ? block_rows : 0, info.n_parameters())),
        theta_host(Kokkos::create_mirror_view(theta)),
        x_host(Kokkos::create_mirror_view(x)),
        log_r_host(Kokkos::create_mirror_view(log_r)),
        score_host(Kokkos::create_mirror_view(score)),
        gold_theta_host(Kokkos::create_mirror_view(gold_theta)) {}

  Matrix theta, x;
  Vector log_r;
  Matrix score, gold_theta;
  Matrix::HostMirror theta_host, x_host;
  Vector::HostMirror log_r_host;
  Matrix::HostMirror score_host, gold_theta_host;
};

// Simulates the rows of `range` into the buffers and copies them to the host; returns how many of the
// values (x, and the gold) are not finite.
std::int64_t simulate_block(const sims::Simulator& simulator, const SimulateSettings& settings,
                            const RowRange& range, BlockBuffers& b) {
  const sims::SimulatorInfo& info = simulator.info();
  const bool gold = !settings.gold_theta0.empty();
  const std::uint64_t first = settings.first_index + range.begin;
  const auto sub = std::make_pair(std::size_t{0}, range.size());
  Matrix theta_block = Kokkos::subview(b.theta, sub, Kokkos::ALL);
  Matrix x_block = Kokkos::subview(b.x, sub, Kokkos::ALL);
  settings.proposal->sample(theta_block, first, settings.seed);
  if (gold) {
    Matrix gold_theta_block = Kokkos::subview(b.gold_theta, sub, Kokkos::ALL);
    if (settings.gold_pairing != nullptr)
      settings.gold_pairing->sample(gold_theta_block, first, settings.seed);
    else
      Kokkos::deep_copy(gold_theta_block, theta_block);
    simulator.simulate_gold(ExecutionSpace(), theta_block, x_block, gold_theta_block,
                            settings.gold_theta0.data(), Kokkos::subview(b.log_r, sub),
                            Kokkos::subview(b.score, sub, Kokkos::ALL), first, settings.simulator_seed);
    Kokkos::deep_copy(b.log_r_host, b.log_r);
    Kokkos::deep_copy(b.score_host, b.score);
    Kokkos::deep_copy(b.gold_theta_host, b.gold_theta);
  } else {
    simulator.simulate(theta_block, x_block, first, settings.simulator_seed);
  }
  Kokkos::deep_copy(b.theta_host, b.theta);
  Kokkos::deep_copy(b.x_host, b.x);
  std::int64_t non_finite = 0;
  for (std::size_t i = 0; i < range.size() * info.n_observables(); ++i)
    non_finite += std::isfinite(b.x_host.data()[i]) ? 0 : 1;
  for (std::size_t i = 0; i < range.size() && gold; ++i) {
    non_finite += std::isfinite(b.log_r_host(i)) ? 0 : 1;
    for (std::size_t p = 0; p < info.n_parameters(); ++p)
      non_finite += std::isfinite(b.score_host(i, p)) ? 0 : 1;
  }
  return non_finite;
}

}  // namespace

DatasetSimulation::DatasetSimulation(const Communicator& world, const sims::Simulator& simulator,
                                     SimulateSettings settings)
    : world_(world), simulator_(simulator), settings_(std::move(settings)) {
  NSBI_ASSERT(settings_.proposal != nullptr, "a dataset simulation needs a proposal");
  NSBI_ASSERT(settings_.gold_pairing == nullptr || !settings_.gold_theta0.empty(),
              "gold_pairing is for a dataset with gold (gold_theta0)");
  profiling::Region region("nsbi/simulate/open");
  writer_.emplace(world_, settings_.path, describe(world_, simulator_.info(), settings_), settings_.force,
                  settings_.checkpoint_seconds);
}

double DatasetSimulation::run(const std::function<void(std::uint64_t rows_done)>& progress) {
  DatasetWriter& writer = *writer_;
  const bool gold = !settings_.gold_theta0.empty();
  BlockBuffers buffers(writer.schedule().block_rows(), simulator_.info(), gold);
  const GoldRows gold_rows =
      gold ? GoldRows{buffers.log_r_host.data(), buffers.score_host.data(), buffers.gold_theta_host.data()}
           : GoldRows{};
  const auto& pending = writer.pending_blocks();
  const std::uint64_t rounds = BlockSchedule::rounds(pending.size(), world_.size());
  std::uint64_t rows_done = writer.rows_done();
  double write_seconds = 0.0;  // in the collective writes and checkpoints, waits for other ranks included
  // A simulator may fail (an external program: docs/external_simulators.md); every rank then stops, with
  // the blocks written so far recorded in the .partial file.
  const auto keep_written_blocks = [&](const std::function<void()>& work) {
    try {
      world_.agree(work);
    } catch (const CollectiveError&) {
      writer.checkpoint();
      throw;
    }
  };
  for (std::uint64_t round = 0; round < rounds; ++round) {
    if (world_.any(stop_requested())) {
      writer.checkpoint();
      throw CollectiveError(ExitCode::interrupted,
                            "simulate: stopped by a signal after " + std::to_string(rows_done) + " of " +
                                std::to_string(settings_.n_rows) + " rows of '" + settings_.path +
                                "'; every finished block is saved: run the same command to resume");
    }
    const auto block = BlockSchedule::block_for(pending, round, world_.rank(), world_.size());
    std::int64_t rows = 0;
    std::int64_t non_finite = 0;
    keep_written_blocks([&] {
      if (!block) return;
      profiling::Region region("nsbi/simulate/simulator");
      const RowRange range = writer.schedule().rows(*block);
      rows = static_cast<std::int64_t>(range.size());
      non_finite = simulate_block(simulator_, settings_, range, buffers);
    });
    if (world_.sum(non_finite) > 0)
      keep_written_blocks([&] {
        if (non_finite > 0)
          throw InternalError("simulate: simulator " + simulator_.info().name + " produced " +
                              std::to_string(non_finite) + " non-finite values in block " +
                              std::to_string(*block) + " of '" + settings_.path +
                              "'; nothing of this block was written");
      });
    const auto write_start = std::chrono::steady_clock::now();
    {
      profiling::Region region("nsbi/simulate/write");
      writer.write_round(block, buffers.theta_host.data(), buffers.x_host.data(), gold_rows);
    }
    write_seconds += seconds_since(write_start);
    rows_done += static_cast<std::uint64_t>(world_.sum(rows));
    progress(rows_done);
  }
  const auto finish_start = std::chrono::steady_clock::now();
  {
    profiling::Region region("nsbi/simulate/finish");
    writer.finish();
  }
  write_seconds += seconds_since(finish_start);
  return world_.max(write_seconds);
}

}  // namespace nsbi::distributed
