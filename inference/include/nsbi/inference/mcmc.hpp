#pragma once
// Posterior sampling without a grid (docs/statistics.md, "Posterior sampling"): many independent Markov
// chains over θ targeting log π(θ) = log prior(θ) + Σ_e log r(x_e|θ, θ_ref), each a coordinate-wise slice
// sampler (Neal 2003, "Slice sampling": stepping out, then shrinkage). The chains of a rank advance in
// lockstep rounds: each round every unfinished chain asks for the log density of one point, and all the
// points go to the estimator in one batch. A chain's randomness is its own counter-based stream (campaign
// seed, rng::Purpose::mcmc, chain index) and its path depends on nothing else, so the samples are the same
// bits whichever rank runs a chain and whatever else is in its batch.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/inference/estimator.hpp"

namespace nsbi::inference {

/// The prior, through the sampler's one seam: a box [lower, upper] outside which the prior is zero, and its
/// log density (up to a constant) inside. Parameters with lower == upper are held fixed there. Without a
/// log density the prior is uniform on the box. `nsbi infer` gives inference::Prior's log density and its
/// support within the infer grid's range (the box the estimator may be evaluated in).
struct McmcPrior {
  std::vector<double> lower;  // [P]
  std::vector<double> upper;  // [P], ≥ lower
  std::function<double(const double* theta)> log_density;
  std::size_t n_parameters() const { return lower.size(); }
};

/// The log likelihood of K points at once: out[k] = log L(θ_k) for theta [K, P] row-major. A point's value
/// must not depend on the other points of the batch.
using BatchLogLikelihood = std::function<void(std::size_t k, const double* theta, double* out)>;

/// log L(θ) = Σ_e log r(x_e|θ, θ_ref) of the events x [N, D] at points of n_parameters values (−t/2 of
/// scan.hpp, the same sum in the same order): one estimator call per batch, in pieces of at most 2^22 (event,
/// point) pairs.
BatchLogLikelihood observed_log_likelihood(RatioEstimator& estimator, const ConstMatrix& x,
                                           std::size_t n_parameters);

struct McmcSettings {
  std::size_t chains = 32;
  std::size_t warmup = 500;   // iterations per chain before the kept ones (slice widths adapt here)
  std::size_t samples = 500;  // kept draws per chain
  std::size_t thin = 1;       // iterations per kept draw after the warm-up
  std::uint64_t seed = 0;     // of the chains' streams (rng::Purpose::mcmc, chain index)
};

/// The draws of chains [first_chain, first_chain + n_chains).
struct ChainDraws {
  std::size_t first_chain = 0;
  std::size_t n_chains = 0;
  std::vector<double> samples;        // [n_chains, settings.samples, P]
  std::vector<double> log_posterior;  // [n_chains, settings.samples]: log prior + log L, up to a constant
  std::uint64_t evaluations = 0;      // points whose log likelihood was asked for
};

/// The chains rank `rank` of `size` runs: the contiguous block [first, first + count) of ⌈chains / size⌉
/// (fewer on the last ranks, none beyond the chains).
std::pair<std::size_t, std::size_t> chains_of_rank(std::size_t chains, int rank, int size);

/// Runs chains [first_chain, first_chain + n_chains) of `settings` (local, no collectives). A chain starts
/// uniformly in the box; an iteration updates every free parameter once, in order, by a slice step with
/// stepping out (at most 100 widths each way, never past the box) and shrinkage; during the warm-up each
/// width follows the running mean of twice the step it made (starting at a quarter of the box). `progress`,
/// when given, hears the iterations done by these chains together after each round. InputError naming θ
/// when the log likelihood is NaN or +∞, or −∞ at a starting point; Interrupted when a stop was requested.
ChainDraws run_chains(const BatchLogLikelihood& log_likelihood, const McmcPrior& prior,
                      const McmcSettings& settings, std::size_t first_chain, std::size_t n_chains,
                      const std::function<void(std::uint64_t)>& progress = {});

/// Collective: every rank's ChainDraws (chains_of_rank) joined in chain order, on every rank.
ChainDraws gather_chains(const Communicator& world, const ChainDraws& local, const McmcSettings& settings,
                         std::size_t n_parameters);

}  // namespace nsbi::inference
