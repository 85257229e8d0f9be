// Simulation throughput of each built-in simulator on one core: proposal + simulator kernels for a block of
// events, as the simulate stage runs them (no file I/O). Reports events/s.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>
#include <vector>

#include "nsbi/sims/lensing.hpp"
#include "nsbi/sims/particle_chain.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace {

void simulate_block(benchmark::State& state, const std::string& name) {
  const auto sim = nsbi::sims::make_simulator(name);
  const auto& info = sim->info();
  const auto proposal = nsbi::sims::Proposal::default_for(info);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  nsbi::Matrix theta = nsbi::make_matrix("theta", n, info.n_parameters());
  nsbi::Matrix x = nsbi::make_matrix("x", n, info.n_observables());
  std::uint64_t first = 0;
  for (auto _ : state) {
    proposal.sample(theta, first, 1);
    sim->simulate(theta, x, first, 1);
    Kokkos::fence();
    benchmark::DoNotOptimize(x.data());
    first += n;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

// The same with gold (joint log ratio against the proposal's centre, joint score), for simulators that have
// it.
void simulate_gold_block(benchmark::State& state, const std::string& name) {
  const auto sim = nsbi::sims::make_simulator(name);
  const auto& info = sim->info();
  const auto proposal = nsbi::sims::Proposal::default_for(info);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  nsbi::Matrix theta = nsbi::make_matrix("theta", n, info.n_parameters());
  nsbi::Matrix x = nsbi::make_matrix("x", n, info.n_observables());
  nsbi::Matrix score = nsbi::make_matrix("score", n, info.n_parameters());
  nsbi::Vector log_r("log_r", n);
  std::vector<double> theta0;
  for (const auto& p : info.parameters) theta0.push_back(0.5 * (p.min + p.max));
  std::uint64_t first = 0;
  for (auto _ : state) {
    proposal.sample(theta, first, 1);
    sim->simulate_gold(nsbi::ExecutionSpace(), theta, x, theta, theta0.data(), log_r, score, first, 1);
    Kokkos::fence();
    benchmark::DoNotOptimize(x.data());
    first += n;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

// particle_chain's shower alone at a fixed (kappa, lambda) = (range(0), range(1)) / 10, one event at a time
// through the model: its cost grows with the leaves, which it reports with the means that
// particle_chain_throughput.py compares with its plain-Python version of the chain.
void particle_chain_at(benchmark::State& state) {
  const nsbi::sims::ParticleChainModel model;
  const double theta[2] = {0.1 * static_cast<double>(state.range(0)),
                           0.1 * static_cast<double>(state.range(1))};
  std::uint64_t index = 0;
  double leaves = 0, cos_theta_j1 = 0, j1_constituents = 0, m_jj = 0;
  for (auto _ : state) {
    double x[nsbi::sims::ParticleChainModel::n_observables_shower];
    nsbi::sims::ParticleChainLatent z;
    model.sample(nsbi::rng::StreamBlocks(1, nsbi::rng::Purpose::simulate, index++), theta, x, z);
    leaves += 0.5 * (z.leaves[0] + z.leaves[1]);
    cos_theta_j1 += x[0];
    m_jj += x[1];
    j1_constituents += x[3];
  }
  const double n = static_cast<double>(index);
  state.counters["leaves_per_jet"] = leaves / n;
  state.counters["mean_cos_theta_j1"] = cos_theta_j1 / n;
  state.counters["mean_m_jj"] = m_jj / n;
  state.counters["mean_j1_n_constituents"] = j1_constituents / n;
  state.counters["events"] = n;
  state.SetItemsProcessed(static_cast<std::int64_t>(index));
}

// lensing's stages one by one at the defaults (theta = (0.05, -1.9), every host quantity fixed), image after
// image (row index = iteration): range(0) picks the stage, 0 = the whole image. The deflections report
// ns per pixel-subhalo pair; each image's subhalo count is the same in every stage, from its latent summary.
enum LensingStage { whole_image, deflections, source, psf, noise };

void lensing_stage(benchmark::State& state) {
  using nsbi::sims::LensingModel;
  const auto sim =
      nsbi::sims::make_lensing({{"fixed", "[lens_redshift, velocity_dispersion, source_offset]"}});
  const LensingModel& model = static_cast<const nsbi::sims::Lensing&>(*sim).model();
  const double theta[2] = {0.05, -1.9};
  std::vector<float> alpha_x(LensingModel::n_pixels), alpha_y(LensingModel::n_pixels);
  std::vector<double> mu(LensingModel::n_pixels), blurred(LensingModel::n_pixels), x(LensingModel::n_pixels);
  std::vector<std::int32_t> pending(LensingModel::n_pixels);
  const nsbi::sims::LensingWorkspace work{alpha_x.data(), alpha_y.data(), mu.data(), blurred.data(),
                                          pending.data()};
  const auto stage = static_cast<LensingStage>(state.range(0));
  std::uint64_t index = 0;
  double pairs = 0.0;
  for (auto _ : state) {
    const nsbi::rng::StreamBlocks draws(1, nsbi::rng::Purpose::simulate, index++);
    nsbi::sims::LensingLatent z;
    z.host = model.host_of(draws);
    z.nbar = LensingModel::mean_subhalos(z.host, theta[0], theta[1]);
    switch (stage) {
      case whole_image:
        model.sample(draws, theta, work, x.data(), z);
        break;
      case deflections:
        LensingModel::add_subhalos(draws, theta[1], z.host, z, alpha_x.data(), alpha_y.data());
        break;
      case source:
        LensingModel::expected_counts(z.host, alpha_x.data(), alpha_y.data(), mu.data());
        break;
      case psf:
        model.blur(mu.data(), blurred.data());
        break;
      case noise:
        LensingModel::add_noise(draws, mu.data(), x.data(), pending.data(), blurred.data());
        break;
    }
    pairs += static_cast<double>(z.n) * LensingModel::n_pixels;
    benchmark::DoNotOptimize(x.data());
    benchmark::DoNotOptimize(mu.data());
    benchmark::DoNotOptimize(alpha_x.data());
  }
  if (stage == deflections)
    state.counters["ns_per_pair"] =
        benchmark::Counter(pairs * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<std::int64_t>(index));
}

}  // namespace

BENCHMARK_CAPTURE(simulate_block, gaussian2d, std::string("gaussian2d"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, spin3d, std::string("spin3d"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, lepton, std::string("lepton"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, particle_chain, std::string("particle_chain"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_gold_block, particle_chain, std::string("particle_chain"))
    ->Arg(1 << 16)
    ->UseRealTime();
BENCHMARK(particle_chain_at)->Args({8, 5})->Args({8, 15})->Args({8, 30})->Args({-8, 15})->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, lensing, std::string("lensing"))->Arg(64)->UseRealTime();
BENCHMARK(lensing_stage)->ArgName("stage")->DenseRange(0, 4)->UseRealTime();
