#pragma once
// Pseudo-experiments from the simulator (docs/statistics.md, "Pseudo-experiments"): toy j of parameter
// point k in a stage is N_obs events x ~ p(x|θ_k) whose random numbers are the simulator's streams of seed
// toy_seed(campaign seed, stage, k) at indices j·N_obs … (j+1)·N_obs − 1. Any toy is regenerated from
// (seed, stage, θ index, toy index), whichever rank or block makes it.

#include <cstdint>

#include "nsbi/kernels/views.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::inference {

/// Separates the toys of different stages (and the observed data simulate writes) under one campaign seed.
/// The posterior checks of coverage (sbc.hpp) use three: their datasets (θ index: the run), the draws of θ*
/// from the prior (θ index 0) and the streams of their posterior samplers (θ index: the run).
enum class ToyStage : std::uint32_t {
  observed = 1,
  test_h0 = 2,
  test_h1 = 3,
  calibrate = 4,
  coverage = 5,
  sbc = 6,
  sbc_prior = 7,
  sbc_chains = 8
};

/// The simulator seed of the toys of (stage, θ index): 64 bits of the Philox stream
/// (seed, Purpose::toy, stage · 2^32 + theta_index).
std::uint64_t toy_seed(std::uint64_t campaign_seed, ToyStage stage, std::uint64_t theta_index);

/// x [n_toys · n_events, D]: toys first_toy … first_toy + n_toys − 1 of (stage, theta_index) at θ = theta.
void simulate_toys(const sims::Simulator& simulator, const double* theta, std::uint64_t campaign_seed,
                   ToyStage stage, std::uint64_t theta_index, std::uint64_t first_toy, std::size_t n_events,
                   const Matrix& x);

}  // namespace nsbi::inference
