#include "nsbi/inference/mcmc_diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "nsbi/core/error.hpp"
#include "nsbi/inference/statistics.hpp"

namespace nsbi::inference {
namespace {

std::size_t draws_per_chain(const std::vector<double>& draws, std::size_t chains, std::size_t minimum) {
  NSBI_ASSERT(chains > 0 && draws.size() % chains == 0, "mcmc diagnostics: draws are not [chains, n]");
  const std::size_t n = draws.size() / chains;
  NSBI_ASSERT(n >= minimum, "mcmc diagnostics: too few draws per chain");
  return n;
}

// Each chain's first and last n/2 draws as two chains (the middle draw of an odd n dropped).
std::vector<double> split_chains(const std::vector<double>& draws, std::size_t chains) {
  const std::size_t n = draws_per_chain(draws, chains, 4);
  const std::size_t half = n / 2;
  std::vector<double> out;
  out.reserve(2 * chains * half);
  for (std::size_t c = 0; c < chains; ++c) {
    const auto begin = draws.begin() + static_cast<std::ptrdiff_t>(c * n);
    out.insert(out.end(), begin, begin + static_cast<std::ptrdiff_t>(half));
    out.insert(out.end(), begin + static_cast<std::ptrdiff_t>(n - half),
               begin + static_cast<std::ptrdiff_t>(n));
  }
  return out;
}

// The normal scores of the pooled ranks: Φ⁻¹((r − 3/8) / (S + 1/4)), tied values sharing their mean rank.
std::vector<double> rank_normalise(const std::vector<double>& values) {
  const std::size_t s = values.size();
  std::vector<std::size_t> order(s);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> out(s);
  for (std::size_t i = 0; i < s;) {
    std::size_t j = i;
    while (j + 1 < s && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j) + 1.0;  // 1-based mean rank of the tie
    const double score = normal_quantile((rank - 0.375) / (static_cast<double>(s) + 0.25));
    for (std::size_t k = i; k <= j; ++k) out[order[k]] = score;
    i = j + 1;
  }
  return out;
}

double median(std::vector<double> values) {
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  return 0.5 * (upper + *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid)));
}

struct ChainMoments {
  std::vector<double> means;
  double mean_variance = 0;      // W: the chains' variances (n − 1 denominator), averaged
  double variance_of_means = 0;  // B/n: across chains (chains − 1 denominator), 0 for one chain
};

ChainMoments chain_moments(const std::vector<double>& draws, std::size_t chains, std::size_t n) {
  ChainMoments m;
  m.means.resize(chains);
  for (std::size_t c = 0; c < chains; ++c) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += draws[c * n + i];
    m.means[c] = sum / static_cast<double>(n);
    double squares = 0;
    for (std::size_t i = 0; i < n; ++i)
      squares += (draws[c * n + i] - m.means[c]) * (draws[c * n + i] - m.means[c]);
    m.mean_variance += squares / static_cast<double>(n - 1) / static_cast<double>(chains);
  }
  if (chains > 1) {
    const double grand = std::accumulate(m.means.begin(), m.means.end(), 0.0) / static_cast<double>(chains);
    for (const double mean : m.means) m.variance_of_means += (mean - grand) * (mean - grand);
    m.variance_of_means /= static_cast<double>(chains - 1);
  }
  return m;
}

}  // namespace

double rhat(const std::vector<double>& draws, std::size_t chains) {
  const std::size_t n = draws_per_chain(draws, chains, 2);
  NSBI_ASSERT(chains >= 2, "rhat: needs at least two chains");
  const ChainMoments m = chain_moments(draws, chains, n);
  if (!(m.mean_variance > 0)) return 1.0;
  const double nd = static_cast<double>(n);
  return std::sqrt(((nd - 1) / nd * m.mean_variance + m.variance_of_means) / m.mean_variance);
}

double ess(const std::vector<double>& draws, std::size_t chains) {
  const std::size_t n = draws_per_chain(draws, chains, 4);
  const ChainMoments m = chain_moments(draws, chains, n);
  const double nd = static_cast<double>(n);
  const double total = nd * static_cast<double>(chains);
  const double var_plus = m.mean_variance * (nd - 1) / nd + m.variance_of_means;
  if (!(var_plus > 0)) return total;
  // ρ_t = 1 − (W − mean over chains of the lag-t autocovariance) / var⁺, computed lag by lag: Geyer's
  // sequence usually stops after a few autocorrelation times.
  const auto rho = [&](std::size_t t) {
    double acov = 0;
    for (std::size_t c = 0; c < chains; ++c) {
      const double* x = draws.data() + c * n;
      double sum = 0;
      for (std::size_t i = 0; i + t < n; ++i) sum += (x[i] - m.means[c]) * (x[i + t] - m.means[c]);
      acov += sum / nd;
    }
    return 1.0 - (m.mean_variance - acov / static_cast<double>(chains)) / var_plus;
  };
  // Geyer's initial positive sequence: pairs (ρ_2k, ρ_2k+1) while their sum is positive; the last pair
  // read is kept as a bias term when its even member is positive (it helps antithetic chains).
  std::vector<double> rho_hat(n + 1, 0.0);
  rho_hat[0] = 1.0;
  double even = 1.0;
  double odd = rho(1);
  rho_hat[1] = odd;
  std::size_t t = 1;
  while (t + 4 < n && even + odd > 0) {
    even = rho(t + 1);
    odd = rho(t + 2);
    if (even + odd >= 0) {
      rho_hat[t + 1] = even;
      rho_hat[t + 2] = odd;
    }
    t += 2;
  }
  const std::size_t last = t;
  if (even > 0) rho_hat[last + 1] = even;
  // The initial monotone sequence: no pair sum larger than the one before it.
  for (std::size_t s = 1; s + 3 <= last; s += 2) {
    if (rho_hat[s + 1] + rho_hat[s + 2] > rho_hat[s - 1] + rho_hat[s]) {
      rho_hat[s + 1] = 0.5 * (rho_hat[s - 1] + rho_hat[s]);
      rho_hat[s + 2] = rho_hat[s + 1];
    }
  }
  double sum = 0;
  for (std::size_t s = 0; s < last; ++s) sum += rho_hat[s];
  const double tau = -1.0 + 2.0 * sum + rho_hat[last + 1];
  return std::min(total / tau, total * std::log10(total));
}

double split_rhat(const std::vector<double>& draws, std::size_t chains) {
  const std::vector<double> split = split_chains(draws, chains);
  const double m = median(split);
  std::vector<double> folded(split.size());
  for (std::size_t i = 0; i < split.size(); ++i) folded[i] = std::abs(split[i] - m);
  return std::max(rhat(rank_normalise(split), 2 * chains), rhat(rank_normalise(folded), 2 * chains));
}

double bulk_ess(const std::vector<double>& draws, std::size_t chains) {
  return ess(rank_normalise(split_chains(draws, chains)), 2 * chains);
}

ChainDiagnostics diagnose_chains(const std::vector<double>& samples, std::size_t chains,
                                 const std::vector<std::string>& names) {
  const std::size_t p_count = names.size();
  NSBI_ASSERT(chains > 0 && p_count > 0 && samples.size() % (chains * p_count) == 0,
              "diagnose_chains: samples are not [chains, n, P]");
  const std::size_t n = samples.size() / (chains * p_count);
  ChainDiagnostics d;
  std::vector<double> draws(chains * n);
  for (std::size_t p = 0; p < p_count; ++p) {
    for (std::size_t i = 0; i < chains * n; ++i) draws[i] = samples[i * p_count + p];
    d.rhat.push_back(split_rhat(draws, chains));
    d.ess_bulk.push_back(bulk_ess(draws, chains));
    char line[160];
    if (d.rhat.back() > rhat_limit) {
      std::snprintf(line, sizeof line, "%s: R̂ %.4f > %.2f: the chains disagree (more warm-up or samples)",
                    names[p].c_str(), d.rhat.back(), rhat_limit);
      d.warnings.emplace_back(line);
    }
    if (d.ess_bulk.back() < ess_minimum) {
      std::snprintf(line, sizeof line, "%s: bulk ESS %.0f < %.0f: too few effective samples (more samples)",
                    names[p].c_str(), d.ess_bulk.back(), ess_minimum);
      d.warnings.emplace_back(line);
    }
  }
  return d;
}

}  // namespace nsbi::inference
