#pragma once
// Convergence diagnostics of Markov chains (docs/statistics.md, "Posterior sampling"): the rank-normalised
// split-R̂ and the bulk effective sample size of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021,
// "Rank-normalization, folding, and localization: an improved R̂ for assessing convergence of MCMC").
// Pure functions of the draws, double precision.

#include <cstddef>
#include <string>
#include <vector>

namespace nsbi::inference {

/// The rank-normalised split-R̂ of one quantity: draws [chains, n] (chain after chain, n ≥ 4 each). Each
/// chain is split in halves, the pooled draws replaced by the normal scores of their ranks, and R̂ is the
/// larger of the one of these scores (bulk) and the one of the scores of |draw − median| (tails). ≈ 1 for
/// chains that sample the same distribution; constant draws give 1.
double split_rhat(const std::vector<double>& draws, std::size_t chains);

/// The bulk effective sample size of one quantity, draws [chains, n] as split_rhat: the ESS of the
/// rank-normalised split chains, from their combined autocorrelations summed by Geyer's initial monotone
/// sequence, capped at N log10 N (N all draws). ≈ N for independent draws, N (1 − ρ)/(1 + ρ) for AR(1)
/// chains of coefficient ρ; N for constant draws.
double bulk_ess(const std::vector<double>& draws, std::size_t chains);

/// The plain R̂ and ESS behind the two above, on draws as given (no splitting or rank normalisation):
/// `chains` of n draws each. R̂ = √(((n − 1)/n W + B/n) / W) with W the mean within-chain variance and B/n
/// the variance of the chain means; 1 when W = 0.
double rhat(const std::vector<double>& draws, std::size_t chains);
double ess(const std::vector<double>& draws, std::size_t chains);

/// What nsbi asks of a sample before calling it converged: R̂ ≤ 1.01 and bulk ESS ≥ 400 for every parameter.
constexpr double rhat_limit = 1.01;
constexpr double ess_minimum = 400.0;

/// Per-parameter diagnostics of a sample [chains, n, P] (chain, then draw, then parameter), the
/// parameters' names for the warnings.
struct ChainDiagnostics {
  std::vector<double> rhat;           // [P], split_rhat
  std::vector<double> ess_bulk;       // [P], bulk_ess
  std::vector<std::string> warnings;  // one line per parameter over rhat_limit or under ess_minimum
  bool converged() const { return warnings.empty(); }
};
ChainDiagnostics diagnose_chains(const std::vector<double>& samples, std::size_t chains,
                                 const std::vector<std::string>& names);

}  // namespace nsbi::inference
