#pragma once
// Posterior checks over the prior (docs/statistics.md, "Simulation-based calibration"): run i draws θ*_i from
// the prior, simulates a dataset at θ*_i, samples the posterior of that dataset (by the grid or by Markov
// chains), and records the rank of θ*_i among the L posterior samples per parameter (SBC, Talts et al. 2018)
// and the credibility of the smallest highest-density region holding θ*_i (expected coverage). A run depends
// only on (campaign seed, run index), so runs are work items spread over ranks in any order.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/mcmc.hpp"
#include "nsbi/inference/prior.hpp"
#include "nsbi/inference/toy_items.hpp"

namespace nsbi::inference {

/// #{l : samples[l, p] < theta_true[p]} per parameter, in [0, L], for samples [L, P] row-major.
std::vector<double> sbc_ranks(const std::vector<double>& samples, std::size_t n_parameters,
                              const double* theta_true);

/// Counts of ranks in [0, n_samples] in `bins` equal bins of (n_samples + 1) / bins ranks each; bins ≥ 2
/// divides n_samples + 1 (so that every bin is equally likely under a calibrated posterior).
std::vector<std::uint64_t> rank_histogram(const std::vector<double>& ranks, std::size_t n_samples,
                                          std::size_t bins);

/// Pearson's χ² test of counts against equal expected counts: χ² = Σ (n_b − n/B)² / (n/B), B − 1 degrees of
/// freedom, p = 1 − P(χ²_{B−1} ≤ χ²). Needs ≥ 2 bins and ≥ 1 count.
struct UniformityTest {
  double chi2 = 0;
  int dof = 0;
  double p_value = 1;
};
UniformityTest chi2_uniformity(const std::vector<std::uint64_t>& counts);

/// The credibility of the smallest highest-density region holding θ*, from posterior samples: the fraction
/// of samples whose log density exceeds log_density_truth (the density at θ*, both up to one constant).
double sample_credibility(const std::vector<double>& log_density_samples, double log_density_truth);

/// The same on a grid posterior (probabilities summing to 1 over grid's points): the mass of the points
/// whose density (probability / cell volume) exceeds that of the point nearest θ* (per axis).
double grid_credibility(const std::vector<double>& posterior, const Grid& grid, const double* theta_true);

/// Draws from a grid posterior: a point by the cumulative sum, jittered uniformly within its cell along
/// continuous axes; draw s uses the stream (seed, rng::Purpose::posterior, s). samples [n, P] row-major.
/// `check`, when given, is called before every 65536 draws (to stop on a signal).
std::vector<double> grid_posterior_draws(const std::vector<double>& posterior, const Grid& grid,
                                         std::size_t n, std::uint64_t seed, void (*check)() = nullptr);

/// What every run samples from and with. Exactly one of grid (grid posterior) and box (Markov chains) is
/// used: the grid when `grid` is set.
struct SbcSetup {
  const sims::Simulator* simulator = nullptr;
  const Prior* prior = nullptr;
  std::uint64_t seed = 0;              // the campaign's
  std::size_t n_events = 0;            // per dataset
  std::size_t n_samples = 0;           // L, posterior samples per run
  const Grid* grid = nullptr;          // grid posterior on these points
  std::vector<double> grid_log_prior;  // log π at the grid's points
  McmcPrior box;                       // Markov chains in this box, with the prior's log density
  McmcSettings mcmc;                   // chains, warmup, thin per run (samples and seed are set per run)
};

/// θ*_i: the prior's draw of index `run` from the streams of seed toy_seed(seed, ToyStage::sbc_prior, 0).
std::vector<double> sbc_truth(const SbcSetup& setup, std::uint64_t run);

/// Values per run and estimator in an item: the P ranks, then the credibility.
inline std::size_t sbc_values(const SbcSetup& setup) { return setup.prior->n_parameters() + 1; }

/// Work item `item` of blocks of `runs_per_item` runs out of `n_runs`: for run i, θ*_i, a dataset of
/// n_events events from the streams of toy_seed(seed, ToyStage::sbc, i), and per estimator the ranks of θ*_i
/// among L posterior samples and its HPD credibility (chains seeded by toy_seed(seed, ToyStage::sbc_chains,
/// i); grid draws by the same). out[(j · E + e) · (P + 1) + c] for run j of the item, NaN after a short
/// block. x is the reused event buffer.
void sbc_item(const SbcSetup& setup, Estimators& estimators, std::uint64_t n_runs,
              std::uint64_t runs_per_item, std::uint64_t item, Matrix& x, double* out);

}  // namespace nsbi::inference
