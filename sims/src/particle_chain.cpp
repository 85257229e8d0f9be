#include "nsbi/sims/particle_chain.hpp"

#include <cmath>

#include "nsbi/core/error.hpp"

namespace nsbi::sims {
namespace {

constexpr int max_parameters = 2;

// Events in lockstep chunks of ParticleChainModel::chunk_events per work item on the host (the vector
// stages' loops then run over a chunk's leaves, not one event's few), one event per work item elsewhere;
// with gold, also the joint log ratio and score from the same latent history.
constexpr int chain_rows_per_item = Kokkos::SpaceAccessibility<ExecutionSpace, Kokkos::HostSpace>::accessible
                                        ? ParticleChainModel::chunk_events
                                        : 1;

template <bool gold>
struct ChainKernel {
  ParticleChainModel model;
  ConstMatrix theta;
  Matrix x;
  ConstMatrix gold_theta;
  Kokkos::Array<double, max_parameters> theta0;
  Vector log_r;
  Matrix score;
  std::uint64_t first_index;
  std::uint64_t seed;

  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t item) const {
    constexpr int rows = chain_rows_per_item;
    constexpr int n_observables = ParticleChainModel::n_observables_shower;
    const std::size_t begin = item * rows;
    const int count = static_cast<int>(theta.extent(0) - begin < rows ? theta.extent(0) - begin : rows);
    const int n_parameters = static_cast<int>(theta.extent(1));
    double theta_c[rows * max_parameters] = {};
    for (int r = 0; r < count; ++r)
      for (int p = 0; p < n_parameters; ++p) theta_c[r * max_parameters + p] = theta(begin + r, p);
    double x_c[rows * n_observables];
    ParticleChainLatent z[rows];
    if constexpr (rows == 1) {
      model.sample(rng::StreamBlocks(seed, rng::Purpose::simulate, first_index + begin), theta_c, x_c, z[0]);
    } else {
      model.sample_chunk(seed, first_index + begin, count, theta_c, max_parameters, x_c, z);
    }
    for (int r = 0; r < count; ++r) {
      const std::size_t i = begin + r;
      for (std::size_t d = 0; d < x.extent(1); ++d) x(i, d) = x_c[r * n_observables + d];
      if constexpr (gold) {
        if (!z[r].complete) {
          log_r(i) = std::numeric_limits<double>::quiet_NaN();
          for (int p = 0; p < n_parameters; ++p) score(i, p) = std::numeric_limits<double>::quiet_NaN();
          continue;
        }
        double gold_i[max_parameters] = {0.0, 0.0};
        for (int p = 0; p < n_parameters; ++p) gold_i[p] = gold_theta(i, p);
        log_r(i) = model.joint_log_ratio(z[r], gold_i, theta0.data());
        double score_i[max_parameters];
        model.joint_score(z[r], theta_c + r * max_parameters, score_i);
        for (int p = 0; p < n_parameters; ++p) score(i, p) = score_i[p];
      }
    }
  }
};

std::size_t chain_items(std::size_t n_rows) {
  return (n_rows + chain_rows_per_item - 1) / chain_rows_per_item;
}

struct ChainLogLikelihood {
  ParticleChainModel model;
  ConstMatrix theta;
  ConstMatrix x;
  Vector out;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    const double kappa = theta(i, 0);
    const double x_i = x(i, 0);
    out(i) = model.log_likelihood(&kappa, &x_i);
  }
};

struct ChainLogRatio {
  ParticleChainModel model;
  double kappa_a;
  double kappa_b;
  ConstMatrix x;
  Vector out;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    const double x_i = x(i, 0);
    out(i) = model.log_likelihood(&kappa_a, &x_i) - model.log_likelihood(&kappa_b, &x_i);
  }
};

const char* mode_name(ParticleChainMode mode) {
  switch (mode) {
    case ParticleChainMode::full:
      return "full";
    case ParticleChainMode::fixed_lambda:
      return "fixed_lambda";
    case ParticleChainMode::parton_only:
      return "parton_only";
  }
  return "?";
}

}  // namespace

SimulatorInfo ParticleChainModel::info() const {
  SimulatorInfo info;
  info.name = "particle_chain";
  info.has_gold = true;
  // 2: the shower's and detector's draws in single precision from 24-bit uniforms; 3: the leaves in the order
  // their splittings make them, and the node cap on splittings alone.
  info.stream_version = 3;
  info.parameters = {{"kappa", -1.0, 1.0, {}, "chiral coupling asymmetry (g_L,R = 1 +- kappa)"}};
  if (mode == ParticleChainMode::full)
    info.parameters.push_back({"lambda", 0.5, 3.0, {}, "shower rate of the r draws"});
  if (mode == ParticleChainMode::parton_only) {
    info.doc = "particle_chain's parton stage alone: x = cos theta* + N(0, sigma^2), exact marginal known";
    info.observables = {"x"};
    info.has_exact_likelihood = true;
  } else {
    info.doc = std::string("toy chain theta -> parton -> shower -> detector -> two jets, with gold") +
               (mode == ParticleChainMode::fixed_lambda ? " (lambda fixed)" : "");
    info.observables = {"cos_theta_j1",        "m_jj",     "j1_mass", "j1_n_constituents",
                        "j1_leading_fraction", "j1_width", "j2_mass", "j2_n_constituents",
                        "j2_leading_fraction", "j2_width"};
  }
  return info;
}

ParticleChain::ParticleChain(const ParticleChainModel& model) : model_(model), info_(model.info()) {}

void ParticleChain::simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                             std::uint64_t first_index, std::uint64_t seed) const {
  NSBI_ASSERT(theta.extent(1) == info_.n_parameters() && x.extent(1) == info_.n_observables() &&
                  theta.extent(0) == x.extent(0),
              "theta/x shapes do not match simulator particle_chain");
  Kokkos::parallel_for("nsbi::sims::particle_chain::simulate",
                       Kokkos::RangePolicy<ExecutionSpace>(space, 0, chain_items(theta.extent(0))),
                       ChainKernel<false>{model_, theta, x, {}, {}, {}, {}, first_index, seed});
}

void ParticleChain::simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                                  const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                                  const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const {
  check_gold_arguments(info_, theta, x, gold_theta, theta0, log_r, score);
  const std::size_t n = theta.extent(0);
  ChainKernel<true> kernel{model_, theta, x, gold_theta, {}, log_r, score, first_index, seed};
  for (std::size_t p = 0; p < info_.n_parameters(); ++p) kernel.theta0[p] = theta0[p];
  Kokkos::parallel_for("nsbi::sims::particle_chain::simulate_gold",
                       Kokkos::RangePolicy<ExecutionSpace>(space, 0, chain_items(n)), kernel);
}

void ParticleChain::log_likelihood(const ExecutionSpace& space, const ConstMatrix& theta,
                                   const ConstMatrix& x, const Vector& out) const {
  if (model_.mode != ParticleChainMode::parton_only) return Simulator::log_likelihood(space, theta, x, out);
  NSBI_ASSERT(theta.extent(1) == 1 && x.extent(1) == 1 && theta.extent(0) == x.extent(0) &&
                  out.extent(0) == x.extent(0),
              "theta/x/out shapes do not match simulator particle_chain (parton_only)");
  Kokkos::parallel_for("nsbi::sims::particle_chain::log_likelihood",
                       Kokkos::RangePolicy<ExecutionSpace>(space, 0, x.extent(0)),
                       ChainLogLikelihood{model_, theta, x, out});
}

std::string ParticleChain::exact_ratio_unavailable(const double*, const double*) const {
  if (model_.mode == ParticleChainMode::parton_only) return "";
  return std::string("particle_chain's marginal likelihood is intractable in mode ") +
         mode_name(model_.mode) + " (only mode parton_only has an exact one)";
}

void ParticleChain::exact_log_ratio(const ExecutionSpace& space, const double* theta_a, const double* theta_b,
                                    const ConstMatrix& x, const Vector& out) const {
  const std::string why = exact_ratio_unavailable(theta_a, theta_b);
  NSBI_ASSERT(why.empty(), why);
  NSBI_ASSERT(x.extent(1) == 1 && out.extent(0) == x.extent(0), "x/out shapes do not match particle_chain");
  Kokkos::parallel_for("nsbi::sims::particle_chain::exact_log_ratio",
                       Kokkos::RangePolicy<ExecutionSpace>(space, 0, x.extent(0)),
                       ChainLogRatio{model_, theta_a[0], theta_b[0], x, out});
}

std::vector<SimulatorOption> particle_chain_options() {
  SimulatorOption mode{
      "mode",
      "full",
      "full: theta = (kappa, lambda); fixed_lambda: theta = (kappa), lambda from simulator.lambda; "
      "parton_only: theta = (kappa), x = cos theta* + N(0, sigma^2) with an exact likelihood",
      {"full", "fixed_lambda", "parton_only"}};
  SimulatorOption lambda{"lambda", "1.5", "the shower rate lambda of mode fixed_lambda", {}, 0.5, 3.0};
  SimulatorOption sigma{"sigma", "0.1", "the resolution of mode parton_only (> 0)", {}, 0.0};
  return {mode, lambda, sigma};
}

std::unique_ptr<Simulator> make_particle_chain(const SimulatorOptions& options) {
  ParticleChainModel model;
  for (const auto& [key, value] : options) {
    if (key == "mode") {
      if (value == "full")
        model.mode = ParticleChainMode::full;
      else if (value == "fixed_lambda")
        model.mode = ParticleChainMode::fixed_lambda;
      else if (value == "parton_only")
        model.mode = ParticleChainMode::parton_only;
      else
        throw ConfigError("simulator.mode: '" + value + "' is none of full, fixed_lambda, parton_only");
    } else if (key == "lambda") {
      model.fixed_lambda = parse_option_number(key, value);
      if (!(model.fixed_lambda >= 0.5 && model.fixed_lambda <= 3.0))
        throw ConfigError("simulator.lambda: " + value + " is outside particle_chain's range [0.5, 3]");
    } else if (key == "sigma") {
      model.sigma = parse_option_number(key, value);
      if (!(model.sigma > 0.0)) throw ConfigError("simulator.sigma: " + value + " must be > 0");
    } else {
      throw ConfigError("simulator." + key +
                        ": particle_chain has no such option (it has mode, lambda, sigma)");
    }
  }
  return std::make_unique<ParticleChain>(model);
}

}  // namespace nsbi::sims
