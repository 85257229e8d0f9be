#include "nsbi/inference/mcmc.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/inference/scan.hpp"

namespace nsbi::inference {
namespace {

/// Pair values per estimator call, as the scans: bounds the [events, points] buffer to 32 MiB.
constexpr std::size_t max_pairs_per_call = std::size_t{1} << 22;
/// Stepping out goes at most this many widths beyond the starting interval (Neal's m), split at random
/// between the two sides.
constexpr int max_steps = 100;

std::string point_text(const std::vector<double>& theta) {
  std::ostringstream out;
  out.precision(17);
  out << "(";
  for (std::size_t p = 0; p < theta.size(); ++p) out << (p ? ", " : "") << theta[p];
  out << ")";
  return out.str();
}

enum class Phase { start, left, right, shrink, done };

// One chain's slice sampler as a state machine: each state names the point whose log density it waits for
// (`proposal`); advance() takes that value and moves on to the next point it needs.
class Chain {
 public:
  Chain(const McmcPrior& prior, const McmcSettings& settings, const std::vector<std::size_t>& free,
        std::size_t index)
      : prior_(prior), settings_(settings), free_(free), stream_(settings.seed, rng::Purpose::mcmc, index) {
    theta_ = prior.lower;
    for (const std::size_t p : free_) {
      theta_[p] = stream_.uniform(prior.lower[p], prior.upper[p]);
      width_.push_back(0.25 * (prior.upper[p] - prior.lower[p]));
    }
    adapted_.assign(free_.size(), 0);
    proposal_ = theta_;
  }

  bool done() const { return phase_ == Phase::done; }
  const std::vector<double>& proposal() const { return proposal_; }
  std::size_t iterations() const { return iteration_; }

  /// The log posterior at proposal(); kept draws go to samples [settings.samples, P] and log_posterior.
  void advance(double value, double* samples, double* log_posterior) {
    if (std::isnan(value) || value == HUGE_VAL || (phase_ == Phase::start && value == -HUGE_VAL))
      throw InputError("mcmc: the log posterior at θ = " + point_text(proposal_) + " is " +
                       (std::isnan(value) ? "NaN"
                        : value > 0       ? "+∞"
                                          : "−∞") +
                       (phase_ == Phase::start ? " (a chain's starting point)" : ""));
    switch (phase_) {
      case Phase::start:
        log_post_ = value;
        begin_update();
        return;
      case Phase::left:
      case Phase::right:
        step_out(phase_ == Phase::left, value);
        return;
      case Phase::shrink:
        if (value > level_) {
          accept(value, samples, log_posterior);
          return;
        }
        (proposal_[free_[axis_]] < origin_ ? lo_ : hi_) = proposal_[free_[axis_]];
        shrink();
        return;
      case Phase::done:
        NSBI_ASSERT(false, "mcmc: a finished chain was advanced");
    }
  }

 private:
  // The slice of the current coordinate: the level under the density, then an interval of one width placed
  // at random around the point, clipped to the box.
  void begin_update() {
    const std::size_t p = free_[axis_];
    origin_ = theta_[p];
    level_ = log_post_ - rng::exponential(stream_, 1.0);
    lo_ = origin_ - stream_.uniform() * width_[axis_];
    hi_ = std::max(lo_ + width_[axis_], origin_);  // rounding must not leave the point outside
    left_steps_ = static_cast<int>(std::floor(max_steps * stream_.uniform()));
    right_steps_ = max_steps - 1 - left_steps_;
    clip(true);
    clip(false);
    proposal_ = theta_;
    next_point();
  }

  // An end of the interval (left or right) that reached the box becomes the box's edge and stops there.
  void clip(bool left) {
    const std::size_t p = free_[axis_];
    if (left ? lo_ <= prior_.lower[p] : hi_ >= prior_.upper[p]) {
      (left ? lo_ : hi_) = left ? prior_.lower[p] : prior_.upper[p];
      (left ? left_steps_ : right_steps_) = 0;
    }
  }

  // Stepping out at one end, whose log density is `value`: one width further while it is above the level.
  void step_out(bool left, double value) {
    int& steps = left ? left_steps_ : right_steps_;
    if (value > level_) {
      (left ? lo_ : hi_) += left ? -width_[axis_] : width_[axis_];
      --steps;
      clip(left);
    } else {
      steps = 0;
    }
    next_point();
  }

  // The next point: the left end while it may step out, then the right end, then shrinkage.
  void next_point() {
    if (left_steps_ > 0 || right_steps_ > 0) {
      const bool left = left_steps_ > 0;
      phase_ = left ? Phase::left : Phase::right;
      proposal_[free_[axis_]] = left ? lo_ : hi_;
      return;
    }
    shrink();
  }

  void shrink() {
    phase_ = Phase::shrink;
    proposal_[free_[axis_]] = lo_ + stream_.uniform() * (hi_ - lo_);
  }

  void accept(double value, double* samples, double* log_posterior) {
    const std::size_t p = free_[axis_];
    const double step = std::abs(proposal_[p] - origin_);
    theta_[p] = proposal_[p];
    log_post_ = value;
    if (iteration_ < settings_.warmup) {
      // The width follows the running mean of twice the steps (never below 1e-9 of the box).
      const double n = static_cast<double>(adapted_[axis_]++);
      width_[axis_] =
          std::max((width_[axis_] * n + 2.0 * step) / (n + 1.0), 1e-9 * (prior_.upper[p] - prior_.lower[p]));
    }
    if (++axis_ < free_.size()) {
      begin_update();
      return;
    }
    axis_ = 0;
    ++iteration_;
    if (iteration_ > settings_.warmup && (iteration_ - settings_.warmup) % settings_.thin == 0) {
      const std::size_t n_parameters = theta_.size();
      std::copy(theta_.begin(), theta_.end(), samples + kept_ * n_parameters);
      log_posterior[kept_] = log_post_;
      ++kept_;
    }
    if (kept_ == settings_.samples) {
      phase_ = Phase::done;
      return;
    }
    begin_update();
  }

  const McmcPrior& prior_;
  const McmcSettings& settings_;
  const std::vector<std::size_t>& free_;
  rng::Stream stream_;
  std::vector<double> theta_;
  std::vector<double> proposal_;
  std::vector<double> width_;         // per free parameter
  std::vector<std::size_t> adapted_;  // warm-up updates of each width so far
  double log_post_ = 0;
  Phase phase_ = Phase::start;
  std::size_t axis_ = 0;  // into free_
  std::size_t iteration_ = 0;
  std::size_t kept_ = 0;
  double origin_ = 0;
  double level_ = 0;
  double lo_ = 0;
  double hi_ = 0;
  int left_steps_ = 0;
  int right_steps_ = 0;
};

}  // namespace

BatchLogLikelihood observed_log_likelihood(RatioEstimator& estimator, const ConstMatrix& x,
                                           std::size_t n_parameters) {
  return [&estimator, x, n_parameters](std::size_t k_points, const double* theta, double* out) {
    const std::size_t per_call =
        std::max<std::size_t>(1, max_pairs_per_call / std::max<std::size_t>(1, x.extent(0)));
    for (std::size_t first = 0; first < k_points; first += per_call) {
      const std::size_t count = std::min(per_call, k_points - first);
      Matrix points(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::mcmc::points"), count,
                    n_parameters);
      const auto host = Kokkos::create_mirror_view(points);
      for (std::size_t k = 0; k < count; ++k)
        for (std::size_t p = 0; p < n_parameters; ++p) host(k, p) = theta[(first + k) * n_parameters + p];
      Kokkos::deep_copy(points, host);
      const std::vector<double> t = t_at_points(estimator, x, points);
      // −t/2 undoes t's factor −2 exactly (a power of two).
      for (std::size_t k = 0; k < count; ++k) out[first + k] = -0.5 * t[k];
    }
  };
}

std::pair<std::size_t, std::size_t> chains_of_rank(std::size_t chains, int rank, int size) {
  const std::size_t per_rank = (chains + static_cast<std::size_t>(size) - 1) / static_cast<std::size_t>(size);
  const std::size_t first = std::min(chains, static_cast<std::size_t>(rank) * per_rank);
  return {first, std::min(chains, first + per_rank) - first};
}

ChainDraws run_chains(const BatchLogLikelihood& log_likelihood, const McmcPrior& prior,
                      const McmcSettings& settings, std::size_t first_chain, std::size_t n_chains,
                      const std::function<void(std::uint64_t)>& progress) {
  const std::size_t n_parameters = prior.n_parameters();
  std::vector<std::size_t> free;
  for (std::size_t p = 0; p < n_parameters; ++p) {
    NSBI_ASSERT(prior.upper[p] >= prior.lower[p], "mcmc: the prior's box is empty");
    if (prior.upper[p] > prior.lower[p]) free.push_back(p);
  }
  NSBI_ASSERT(!free.empty() && settings.samples > 0 && settings.thin > 0, "mcmc: nothing to sample");
  ChainDraws draws;
  draws.first_chain = first_chain;
  draws.n_chains = n_chains;
  draws.samples.resize(n_chains * settings.samples * n_parameters);
  draws.log_posterior.resize(n_chains * settings.samples);
  std::vector<Chain> chains;
  chains.reserve(n_chains);
  for (std::size_t c = 0; c < n_chains; ++c) chains.emplace_back(prior, settings, free, first_chain + c);

  std::vector<std::size_t> waiting;
  std::vector<double> points;
  std::vector<double> values;
  for (;;) {
    if (stop_requested())
      throw Interrupted(
          "infer: stopped by a signal; nothing was written: run the same command to start again");
    waiting.clear();
    points.clear();
    for (std::size_t c = 0; c < n_chains; ++c) {
      if (chains[c].done()) continue;
      waiting.push_back(c);
      points.insert(points.end(), chains[c].proposal().begin(), chains[c].proposal().end());
    }
    if (waiting.empty()) break;
    values.resize(waiting.size());
    log_likelihood(waiting.size(), points.data(), values.data());
    draws.evaluations += waiting.size();
    std::uint64_t iterations = 0;
    for (std::size_t j = 0; j < waiting.size(); ++j) {
      const std::size_t c = waiting[j];
      const double log_prior = prior.log_density ? prior.log_density(points.data() + j * n_parameters) : 0.0;
      chains[c].advance(values[j] + log_prior, draws.samples.data() + c * settings.samples * n_parameters,
                        draws.log_posterior.data() + c * settings.samples);
    }
    for (const Chain& chain : chains) iterations += chain.iterations();
    if (progress) progress(iterations);
  }
  return draws;
}

ChainDraws gather_chains(const Communicator& world, const ChainDraws& local, const McmcSettings& settings,
                         std::size_t n_parameters) {
  // Every rank sends ⌈chains / ranks⌉ chains (padded), each its samples then its log posterior: the
  // blocks arrive in rank order, which is chain order.
  const std::size_t per_rank = chains_of_rank(settings.chains, 0, world.size()).second;
  const std::size_t per_chain = settings.samples * (n_parameters + 1);
  if (per_rank * per_chain > static_cast<std::size_t>(INT_MAX))
    throw ConfigError("mcmc: " + std::to_string(per_rank) + " chains × " + std::to_string(settings.samples) +
                      " samples per rank are more values than one MPI message holds: use more ranks or fewer "
                      "samples");
  std::vector<double> block(per_rank * per_chain, 0.0);
  for (std::size_t c = 0; c < local.n_chains; ++c) {
    std::copy_n(local.samples.data() + c * settings.samples * n_parameters, settings.samples * n_parameters,
                block.data() + c * per_chain);
    std::copy_n(local.log_posterior.data() + c * settings.samples, settings.samples,
                block.data() + c * per_chain + settings.samples * n_parameters);
  }
  const std::vector<double> all = world.all_gather(block.data(), block.size());
  ChainDraws out;
  out.n_chains = settings.chains;
  out.evaluations = static_cast<std::uint64_t>(world.sum(static_cast<std::int64_t>(local.evaluations)));
  for (std::size_t c = 0; c < settings.chains; ++c) {
    const double* chain = all.data() + c * per_chain;
    out.samples.insert(out.samples.end(), chain, chain + settings.samples * n_parameters);
    out.log_posterior.insert(out.log_posterior.end(), chain + settings.samples * n_parameters,
                             chain + per_chain);
  }
  return out;
}

}  // namespace nsbi::inference
