// Simulation throughput of each built-in simulator on one core: proposal + simulator kernels for a block of
// events, as the simulate stage runs them (no file I/O). Reports events/s.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>

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

}  // namespace

BENCHMARK_CAPTURE(simulate_block, gaussian2d, std::string("gaussian2d"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, spin3d, std::string("spin3d"))->Arg(1 << 16)->UseRealTime();
BENCHMARK_CAPTURE(simulate_block, lepton, std::string("lepton"))->Arg(1 << 16)->UseRealTime();
