#include "nsbi/inference/sbc.hpp"

#include <algorithm>
#include <cmath>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/inference/scan.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/toys.hpp"

namespace nsbi::inference {
namespace {

// The index of the value of `values` nearest v (the first of equally near ones).
std::size_t nearest(const std::vector<double>& values, double v) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < values.size(); ++i)
    if (std::abs(values[i] - v) < std::abs(values[best] - v)) best = i;
  return best;
}

// One run's L posterior samples [L, P] of one estimator from the grid, and θ*'s credibility.
std::vector<double> grid_run(const SbcSetup& setup, RatioEstimator& estimator, const Matrix& x,
                             const double* truth, std::uint64_t run, double& credibility) {
  const Grid& grid = *setup.grid;
  std::vector<double> volume(grid.size());
  for (std::size_t k = 0; k < volume.size(); ++k) volume[k] = grid.cell_volume(k);
  const std::vector<double> t = scan_experiments(estimator, x, 1, setup.n_events, grid).t;
  const std::vector<double> posterior = grid_posterior(t, setup.grid_log_prior, volume);
  credibility = grid_credibility(posterior, grid, truth);
  return grid_posterior_draws(posterior, grid, setup.n_samples,
                              toy_seed(setup.seed, ToyStage::sbc_chains, run));
}

// The same by Markov chains: ⌈L / chains⌉ draws per chain, the first L in chain order kept.
std::vector<double> chain_run(const SbcSetup& setup, RatioEstimator& estimator, const Matrix& x,
                              const double* truth, std::uint64_t run, double& credibility) {
  const std::size_t n_parameters = setup.prior->n_parameters();
  McmcSettings settings = setup.mcmc;
  settings.samples = (setup.n_samples + settings.chains - 1) / settings.chains;
  settings.seed = toy_seed(setup.seed, ToyStage::sbc_chains, run);
  const BatchLogLikelihood log_likelihood = observed_log_likelihood(estimator, x, n_parameters);
  ChainDraws draws = run_chains(log_likelihood, setup.box, settings, 0, settings.chains);
  draws.samples.resize(setup.n_samples * n_parameters);
  draws.log_posterior.resize(setup.n_samples);
  double at_truth = 0;
  log_likelihood(1, truth, &at_truth);
  credibility = sample_credibility(draws.log_posterior, at_truth + setup.box.log_density(truth));
  return draws.samples;
}

}  // namespace

std::vector<double> sbc_ranks(const std::vector<double>& samples, std::size_t n_parameters,
                              const double* theta_true) {
  std::vector<double> ranks(n_parameters, 0.0);
  for (std::size_t l = 0; l < samples.size() / n_parameters; ++l)
    for (std::size_t p = 0; p < n_parameters; ++p) ranks[p] += samples[l * n_parameters + p] < theta_true[p];
  return ranks;
}

std::vector<std::uint64_t> rank_histogram(const std::vector<double>& ranks, std::size_t n_samples,
                                          std::size_t bins) {
  NSBI_ASSERT(bins >= 2 && (n_samples + 1) % bins == 0, "rank bins must divide the L + 1 ranks");
  const std::size_t width = (n_samples + 1) / bins;
  std::vector<std::uint64_t> counts(bins, 0);
  for (const double rank : ranks) {
    NSBI_ASSERT(rank >= 0 && rank <= static_cast<double>(n_samples), "rank outside [0, L]");
    ++counts[static_cast<std::size_t>(rank) / width];
  }
  return counts;
}

UniformityTest chi2_uniformity(const std::vector<std::uint64_t>& counts) {
  std::uint64_t total = 0;
  for (const auto c : counts) total += c;
  NSBI_ASSERT(counts.size() >= 2 && total > 0, "a uniformity test needs two bins and a count");
  const double expected = static_cast<double>(total) / static_cast<double>(counts.size());
  UniformityTest test;
  for (const auto c : counts) {
    const double d = static_cast<double>(c) - expected;
    test.chi2 += d * d / expected;
  }
  test.dof = static_cast<int>(counts.size()) - 1;
  test.p_value = 1.0 - chi2_cdf(test.chi2, test.dof);
  return test;
}

double sample_credibility(const std::vector<double>& log_density_samples, double log_density_truth) {
  NSBI_ASSERT(!log_density_samples.empty(), "no samples");
  std::size_t above = 0;
  for (const double v : log_density_samples) above += v > log_density_truth;
  return static_cast<double>(above) / static_cast<double>(log_density_samples.size());
}

double grid_credibility(const std::vector<double>& posterior, const Grid& grid, const double* theta_true) {
  std::vector<std::size_t> index(grid.n_parameters());
  for (std::size_t p = 0; p < index.size(); ++p) index[p] = nearest(grid.axes()[p].values, theta_true[p]);
  const std::size_t at = grid.ravel(index);
  const double density = posterior[at] / grid.cell_volume(at);
  double mass = 0;
  for (std::size_t k = 0; k < posterior.size(); ++k)
    if (posterior[k] / grid.cell_volume(k) > density) mass += posterior[k];
  return std::min(mass, 1.0);
}

std::vector<double> grid_posterior_draws(const std::vector<double>& posterior, const Grid& grid,
                                         std::size_t n, std::uint64_t seed, void (*check)()) {
  std::vector<double> cumulative(posterior.size());
  double running = 0;
  for (std::size_t k = 0; k < posterior.size(); ++k) cumulative[k] = (running += posterior[k]);
  const std::size_t n_parameters = grid.n_parameters();
  std::vector<double> samples(n * n_parameters);
  for (std::size_t s = 0; s < n; ++s) {
    if (check && s % 65536 == 0) check();
    rng::Stream stream(seed, rng::Purpose::posterior, s);
    const double u = stream.uniform() * running;
    const std::size_t k = std::min<std::size_t>(
        static_cast<std::size_t>(std::lower_bound(cumulative.begin(), cumulative.end(), u) -
                                 cumulative.begin()),
        posterior.size() - 1);
    const auto index = grid.unravel(k);
    for (std::size_t p = 0; p < n_parameters; ++p) {
      const auto& axis = grid.axes()[p];
      double value = axis.values[index[p]];
      const double jitter = stream.uniform() - 0.5;
      if (axis.continuous())
        value = std::clamp(value + jitter * axis.spacing(), axis.values.front(), axis.values.back());
      samples[s * n_parameters + p] = value;
    }
  }
  return samples;
}

std::vector<double> sbc_truth(const SbcSetup& setup, std::uint64_t run) {
  const std::size_t n_parameters = setup.prior->n_parameters();
  Matrix theta(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::sbc::theta"), 1, n_parameters);
  setup.prior->sample(theta, run, toy_seed(setup.seed, ToyStage::sbc_prior, 0));
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), theta);
  std::vector<double> truth(n_parameters);
  for (std::size_t p = 0; p < n_parameters; ++p) truth[p] = host(0, p);
  return truth;
}

void sbc_item(const SbcSetup& setup, Estimators& estimators, std::uint64_t n_runs,
              std::uint64_t runs_per_item, std::uint64_t item, Matrix& x, double* out) {
  const std::size_t values = sbc_values(setup);
  const std::size_t n_parameters = values - 1;
  const std::size_t item_size = runs_per_item * estimators.size() * values;
  std::fill(out, out + item_size, std::nan(""));
  const std::uint64_t first = item * runs_per_item;
  const std::size_t d = setup.simulator->info().n_observables();
  if (x.extent(0) != setup.n_events)
    x = Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::sbc::x"), setup.n_events, d);
  for (std::uint64_t run = first; run < std::min(n_runs, first + runs_per_item); ++run) {
    const std::vector<double> truth = sbc_truth(setup, run);
    simulate_toys(*setup.simulator, truth.data(), setup.seed, ToyStage::sbc, run, 0, setup.n_events, x);
    for (std::size_t e = 0; e < estimators.size(); ++e) {
      double credibility = 0;
      const std::vector<double> samples =
          setup.grid ? grid_run(setup, *estimators[e], x, truth.data(), run, credibility)
                     : chain_run(setup, *estimators[e], x, truth.data(), run, credibility);
      const std::vector<double> ranks = sbc_ranks(samples, n_parameters, truth.data());
      double* slot = out + ((run - first) * estimators.size() + e) * values;
      std::copy(ranks.begin(), ranks.end(), slot);
      slot[n_parameters] = credibility;
    }
  }
}

}  // namespace nsbi::inference
