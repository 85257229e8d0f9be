// Weak scaling of the simulation kernels: every rank simulates EVENTS_PER_RANK events per repetition (its own
// global index range) in blocks of BLOCK_SIZE, as the simulate stage does (no file I/O); the time of a
// repetition is the slowest rank's, the best repetition is reported. Prints one JSON object on rank 0.
// Usage: mpirun -np N simulate_scaling SIMULATOR EVENTS_PER_RANK [REPETITIONS [BLOCK_SIZE]]
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/runtime.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

int main(int argc, char** argv) {
  const nsbi::Runtime runtime(argc, argv, nsbi::Runtime::KokkosSettings::command_line);
  const nsbi::Communicator world;
  if (argc < 3) {
    if (world.is_root())
      std::fprintf(stderr, "usage: simulate_scaling SIMULATOR EVENTS_PER_RANK [REPETITIONS [BLOCK_SIZE]]\n");
    return 2;
  }
  const std::string name = argv[1];
  const std::size_t n = std::stoull(argv[2]);
  const int repetitions = argc > 3 ? std::stoi(argv[3]) : 5;
  // Blocks keep the working set in cache as in the stage: one array of all events would measure DRAM.
  const std::size_t block = std::min<std::size_t>(n, argc > 4 ? std::stoull(argv[4]) : 65536);
  const auto sim = nsbi::sims::make_simulator(name);
  const auto& info = sim->info();
  const auto proposal = nsbi::sims::Proposal::default_for(info);
  nsbi::Matrix theta = nsbi::make_matrix("theta", block, info.n_parameters());
  nsbi::Matrix x = nsbi::make_matrix("x", block, info.n_observables());
  double best = 1e300;
  for (int r = 0; r < repetitions; ++r) {
    const std::uint64_t first = (static_cast<std::uint64_t>(r) * world.size() + world.rank()) * n;
    world.barrier();
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < n; done += block) {
      const auto rows = std::make_pair(std::size_t{0}, std::min(block, n - done));
      const nsbi::Matrix theta_block = Kokkos::subview(theta, rows, Kokkos::ALL);
      const nsbi::Matrix x_block = Kokkos::subview(x, rows, Kokkos::ALL);
      proposal.sample(theta_block, first + done, 1);
      sim->simulate(theta_block, x_block, first + done, 1);
    }
    Kokkos::fence();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, world.max(seconds));
  }
  if (world.is_root())
    std::printf(
        "{\"simulator\": \"%s\", \"ranks\": %d, \"events_per_rank\": %zu, \"block_size\": %zu, "
        "\"seconds\": %.6g, \"events_per_second_per_rank\": %.6g}\n",
        name.c_str(), world.size(), n, block, best, static_cast<double>(n) / best);
  return 0;
}
