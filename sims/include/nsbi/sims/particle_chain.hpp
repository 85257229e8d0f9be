#pragma once
// particle_chain (specs/simulators.md §4): theta -> parton decay -> binary shower -> detector -> x, with gold
// (the joint log ratio and joint score from each event's latent history z). One event per work item; the
// shower's recursion runs on a fixed-size explicit stack, so a kernel needs no heap and does bounded work.
//
// Modes (option `mode`): full, theta = (kappa, lambda); fixed_lambda, theta = (kappa) with lambda from the
// option `lambda`; parton_only, theta = (kappa) and x = c + N(0, sigma^2), whose marginal is exact.
//
// Jet order: before the label swap, jet 1 is the jet along +n(c, phi) (so its parton has cos theta = c) and
// jet 2 the one along -n; the swap (probability 0.2) exchanges the two labels, constituents included.

#include <Kokkos_MathematicalFunctions.hpp>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/registry.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

enum class ParticleChainMode { full, fixed_lambda, parton_only };

/// What an event's latent history z contributes to gold: only the decay angle and the shower's r draws
/// depend on theta (specs §4). leaves and complete are diagnostics.
struct ParticleChainLatent {
  double c = 0.0;          // cos theta* of the decay
  double n_draws = 0.0;    // N_d, the number of r draws (both jets)
  double r_sum = 0.0;      // R, the sum of the r draws (both jets)
  int leaves[2] = {0, 0};  // shower leaves per jet, before the detector, in the order before the label swap
  bool complete = true;    // false: the event reached the node cap and its row is NaN
};

struct ParticleChainModel {
  static constexpr double pi = 3.14159265358979323846;
  static constexpr double jet_energy = 100.0;                // M_X / 2, M_X = 200
  static constexpr double jet_mass = 30.0;                   // sqrt(t0)
  static constexpr double jet_virtuality = 900.0;            // t0 = 30^2
  static constexpr double jet_momentum = 95.39392014169457;  // sqrt(jet_energy^2 - t0)
  static constexpr double shower_cutoff = 6.25;              // t_cut = 2.5^2
  static constexpr double r_max = 1.0 - 1e-3;
  static constexpr double min_energy = 1.0;         // leaves below it are not seen
  static constexpr double stochastic_term2 = 0.25;  // sigma_E^2 = 0.25 / E + 0.03^2
  static constexpr double constant_term2 = 0.03 * 0.03;
  static constexpr double angle_resolution = 0.01;  // of the polar and azimuthal angles
  static constexpr double swap_probability = 0.2;
  static constexpr double inv_sqrt_two_pi = 0.3989422804014327;

  static constexpr int n_observables_shower = 10;
  // The node cap: at most max_leaves leaves per event (both jets), i.e. max_leaves - 2 splittings. The
  // mean is ~26 at lambda = 0.5 and the tail falls off fast (docs/simulators.md quotes the largest count
  // seen); an event that would need more is reported as failed (NaN row), never truncated.
  static constexpr int max_leaves = 1024;
  static constexpr int max_splittings = max_leaves - 2;
  static constexpr int stack_capacity = 256;  // pending nodes of the depth-first walk (~ the tree depth)

  // The row's stream, block by block (two uniforms each):
  //   0: the decay azimuth phi = 2 pi u and the label swap (u < 0.2);
  //   1: parton_only's Box–Muller pair (its first normal smears c);
  //   node_block + 2 j, + 1: splitting j in depth-first order (jet 1 first, left child before right):
  //     (u for r_L, u for r_R) and the direction n (cos theta = 2u - 1, azimuth 2 pi u);
  //   detector_block + 2 k, + 1: leaf k in the same order: Box–Muller pairs (energy, polar angle) and
  //     (azimuthal angle, unused), read for every leaf, lost or not;
  //   candidate_block + k: the decay angle's rejection candidate k (c = 2u - 1, acceptance), unbounded.
  static constexpr std::uint32_t node_block = 16;
  static constexpr std::uint32_t detector_block = node_block + 2 * max_leaves;
  static constexpr std::uint32_t candidate_block = 1u << 24;

  ParticleChainMode mode = ParticleChainMode::full;
  double fixed_lambda = 1.5;  // fixed_lambda mode's lambda
  double sigma = 0.1;         // parton_only's resolution

  int n_parameters() const { return mode == ParticleChainMode::full ? 2 : 1; }
  int n_observables() const { return mode == ParticleChainMode::parton_only ? 1 : n_observables_shower; }
  SimulatorInfo info() const;

  KOKKOS_INLINE_FUNCTION static double asymmetry(double kappa) { return 2.0 * kappa / (1.0 + kappa * kappa); }
  /// d a / d kappa.
  KOKKOS_INLINE_FUNCTION static double asymmetry_derivative(double kappa) {
    const double d = 1.0 + kappa * kappa;
    return 2.0 * (1.0 - kappa * kappa) / (d * d);
  }
  /// lambda of a row: theta[1] in full mode, the option otherwise.
  KOKKOS_INLINE_FUNCTION double lambda_of(const double* theta) const {
    return mode == ParticleChainMode::full ? theta[1] : fixed_lambda;
  }

  /// The decay angle by rejection from the uniform envelope: c = 2 u.first - 1, accepted if
  /// u.second (2 + 2|a|) < 1 + c^2 + 2 a c (acceptance 2 / (3 (1 + |a|)) >= 1/3).
  struct DecayAngle {
    double a;
    KOKKOS_FORCEINLINE_FUNCTION bool candidate(const rng::UniformPair& u, double& c) const {
      c = 2.0 * u.first - 1.0;
      const double abs_a = a < 0.0 ? -a : a;
      return u.second * (2.0 + 2.0 * abs_a) < 1.0 + c * c + 2.0 * a * c;
    }
  };

  /// One event at theta into x (n_observables() values) and its latent summary z. Returns z.complete.
  KOKKOS_INLINE_FUNCTION bool sample(const rng::StreamBlocks& draws, const double* theta, double* x,
                                     ParticleChainLatent& z) const {
    const double kappa = theta[0];
    double c = 0.0;
    rng::first_accepted<rng::unlimited_candidates>(draws, candidate_block, DecayAngle{asymmetry(kappa)}, c);
    z = ParticleChainLatent{};
    z.c = c;
    if (mode == ParticleChainMode::parton_only) {
      x[0] = c + sigma * rng::normal_pair(draws.uniforms(1)).first;
      return true;
    }
    z.complete = shower(draws, lambda_of(theta), c, x, z);
    if (!z.complete)
      for (int d = 0; d < n_observables_shower; ++d) x[d] = std::numeric_limits<double>::quiet_NaN();
    return z.complete;
  }

  /// log p(x, z | theta_a) - log p(x, z | theta_b) (specs §4, Gold).
  KOKKOS_INLINE_FUNCTION double joint_log_ratio(const ParticleChainLatent& z, const double* theta_a,
                                                const double* theta_b) const {
    const double c = z.c;
    const double base = 1.0 + c * c;
    double out =
        kernel_math::log((base + 2.0 * asymmetry(theta_a[0]) * c) / (base + 2.0 * asymmetry(theta_b[0]) * c));
    if (mode == ParticleChainMode::full) {
      const double lambda_a = theta_a[1];
      const double lambda_b = theta_b[1];
      // ln(1 - e^{-lambda r_max}) through expm1: exact at small lambda r_max as well.
      const double norm_a = -Kokkos::Experimental::expm1(-lambda_a * r_max);
      const double norm_b = -Kokkos::Experimental::expm1(-lambda_b * r_max);
      out += z.n_draws * kernel_math::log((lambda_a * norm_b) / (lambda_b * norm_a)) -
             (lambda_a - lambda_b) * z.r_sum;
    }
    return out;
  }

  /// score[p] = d log p(x, z | theta) / d theta_p (specs §4, Gold).
  KOKKOS_INLINE_FUNCTION void joint_score(const ParticleChainLatent& z, const double* theta,
                                          double* score) const {
    const double kappa = theta[0];
    const double c = z.c;
    score[0] = 2.0 * c * asymmetry_derivative(kappa) / (1.0 + c * c + 2.0 * asymmetry(kappa) * c);
    if (mode == ParticleChainMode::full) {
      const double lambda = theta[1];
      score[1] = z.n_draws * (1.0 / lambda - r_max / Kokkos::Experimental::expm1(lambda * r_max)) - z.r_sum;
    }
  }

  /// parton_only's exact log p(x | kappa) (specs §4): the decay density convolved with N(0, sigma^2).
  KOKKOS_INLINE_FUNCTION double log_likelihood(const double* theta, const double* x) const {
    const double v = x[0];
    const double alpha = (-1.0 - v) / sigma;
    const double beta = (1.0 - v) / sigma;
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    // Phi(beta) - Phi(alpha) from whichever tail keeps it accurate.
    const double i0 = v >= 0.0 ? 0.5 * (Kokkos::Experimental::erfc(-beta * inv_sqrt2) -
                                        Kokkos::Experimental::erfc(-alpha * inv_sqrt2))
                               : 0.5 * (Kokkos::Experimental::erfc(alpha * inv_sqrt2) -
                                        Kokkos::Experimental::erfc(beta * inv_sqrt2));
    const double pdf_alpha = inv_sqrt_two_pi * Kokkos::Experimental::exp(-0.5 * alpha * alpha);
    const double pdf_beta = inv_sqrt_two_pi * Kokkos::Experimental::exp(-0.5 * beta * beta);
    const double i1 = v * i0 + sigma * (pdf_alpha - pdf_beta);
    const double i2 = v * v * i0 + 2.0 * v * sigma * (pdf_alpha - pdf_beta) +
                      sigma * sigma * (i0 + alpha * pdf_alpha - beta * pdf_beta);
    return Kokkos::Experimental::log(0.375 * (i0 + i2 + 2.0 * asymmetry(theta[0]) * i1));
  }

 private:
  struct Node {
    double e, px, py, pz, m;  // m = sqrt(t), the invariant mass
  };

  // Splitting j's draws and everything they give in units of the parent's mass m = sqrt(t) (the splitting is
  // scale-free: m_L = a m, m_R = b m, p* = p m, E*_L,R = e_L,R m), which depend on j and lambda only, not on
  // the tree: computed ahead in chunks of split_chunk splittings, a loop over independent blocks that
  // vectorises.
  static constexpr int split_chunk = 8;
  struct SplitDraws {
    double r[split_chunk];  // r_L + r_R
    double a[split_chunk], b[split_chunk], p[split_chunk], e_left[split_chunk], e_right[split_chunk];
    double nx[split_chunk], ny[split_chunk], nz[split_chunk];
  };

  KOKKOS_INLINE_FUNCTION static void prepare_splittings(const rng::StreamBlocks& draws, int first,
                                                        double norm, double inv_lambda, SplitDraws& out) {
    NSBI_SIMD_LOOP
    for (int q = 0; q < split_chunk; ++q) {
      const std::uint32_t block = node_block + 2 * static_cast<std::uint32_t>(first + q);
      const rng::UniformPair u = draws.uniforms(block);
      const rng::UniformPair dir = draws.uniforms(block + 1);
      // r = -ln(1 - u (1 - e^{-lambda r_max})) / lambda, the truncated exponential's inverse CDF.
      const double r_left = -kernel_math::log(1.0 - u.first * norm) * inv_lambda;
      const double r_right = -kernel_math::log(1.0 - u.second * norm) * inv_lambda;
      out.r[q] = r_left + r_right;
      // t_L = r_L t and t_R = r_R (sqrt(t) - sqrt(t_L))^2, as masses over sqrt(t).
      const double a = kernel_math::sqrt(r_left);
      const double b = kernel_math::sqrt(r_right) * (1.0 - a);
      // Källén K(1, a^2, b^2) = (1 - (a + b)^2)(1 - (a - b)^2), >= 0 up to rounding.
      const double k1 = 1.0 - (a + b) * (a + b);
      const double k2 = 1.0 - (a - b) * (a - b);
      out.a[q] = a;
      out.b[q] = b;
      out.p[q] = 0.5 * kernel_math::sqrt(k1 > 0.0 ? k1 * k2 : 0.0);
      out.e_left[q] = 0.5 * (1.0 + a * a - b * b);
      out.e_right[q] = 0.5 * (1.0 - a * a + b * b);
      const double cos_n = 2.0 * dir.first - 1.0;
      const double sin_n = kernel_math::sqrt((1.0 - cos_n) * (1.0 + cos_n));
      const kernel_math::SinCos azimuth = kernel_math::sin_cos_turns(dir.second);
      out.nx[q] = sin_n * azimuth.cos;
      out.ny[q] = sin_n * azimuth.sin;
      out.nz[q] = cos_n;
    }
  }

  // The two jets' showers and the detector; false when the node cap or the stack was reached. Three passes,
  // so that the work without data-dependent control flow vectorises: the tree walk (scalar), the detector
  // over all leaves, the jets' angular widths.
  KOKKOS_INLINE_FUNCTION bool shower(const rng::StreamBlocks& draws, double lambda, double c, double* x,
                                     ParticleChainLatent& z) const {
    const rng::UniformPair decay = draws.uniforms(0);
    const kernel_math::SinCos phi = kernel_math::sin_cos_turns(decay.first);
    const double sin_theta = kernel_math::sqrt((1.0 - c) * (1.0 + c));
    const double axis[3] = {sin_theta * phi.cos, sin_theta * phi.sin, c};
    const double norm = -Kokkos::Experimental::expm1(-lambda * r_max);
    const double inv_lambda = 1.0 / lambda;

    // The leaves' lab momenta, in walk order; jet j's are [jet_begin[j], jet_begin[j + 1]). The detector
    // pass overwrites them with the constituents' smeared energy (0: lost) and unit direction.
    double le[max_leaves], lx[max_leaves], ly[max_leaves], lz[max_leaves];
    int jet_begin[3] = {0, 0, 0};
    int n_leaves = 0;
    int n_splittings = 0;
    double r_sum = 0.0;
    SplitDraws split;
    Node stack[stack_capacity];
    for (int jet = 0; jet < 2; ++jet) {
      const double sign = jet == 0 ? 1.0 : -1.0;
      stack[0] = {jet_energy, sign * jet_momentum * axis[0], sign * jet_momentum * axis[1],
                  sign * jet_momentum * axis[2], jet_mass};
      int depth = 1;
      while (depth > 0) {
        const Node node = stack[--depth];
        if (node.m * node.m <= shower_cutoff) {
          le[n_leaves] = node.e;
          lx[n_leaves] = node.px;
          ly[n_leaves] = node.py;
          lz[n_leaves] = node.pz;
          ++n_leaves;
          continue;
        }
        // n_leaves <= n_splittings + 2 at the end: capping the splittings caps the leaves at max_leaves.
        if (n_splittings == max_splittings || depth + 2 > stack_capacity) return false;
        const int q = n_splittings % split_chunk;
        if (q == 0) prepare_splittings(draws, n_splittings, norm, inv_lambda, split);
        ++n_splittings;
        r_sum += split.r[q];
        // The children in the parent's rest frame, boosted by its velocity: E = (E_P e* + P.k) / m and
        // k_lab = k + P ((P.k) / (m (E_P + m)) + e* / m), with k = +-p* n; every 1/m cancels in units of m.
        const double m = node.m;
        const double nx = split.nx[q], ny = split.ny[q], nz = split.nz[q];
        const double p = split.p[q];
        const double pn = p * (node.px * nx + node.py * ny + node.pz * nz);  // (P.k) / m for the left child
        const double g = pn / (node.e + m);
        const double pm = p * m;
        const double c_left = g + split.e_left[q];
        const double c_right = split.e_right[q] - g;
        stack[depth++] = {node.e * split.e_right[q] - pn, -pm * nx + node.px * c_right,
                          -pm * ny + node.py * c_right, -pm * nz + node.pz * c_right, split.b[q] * m};
        stack[depth++] = {node.e * split.e_left[q] + pn, pm * nx + node.px * c_left,
                          pm * ny + node.py * c_left, pm * nz + node.pz * c_left, split.a[q] * m};
      }
      jet_begin[jet + 1] = n_leaves;
      z.leaves[jet] = n_leaves - jet_begin[jet];
    }
    z.n_draws = 2.0 * n_splittings;
    z.r_sum = r_sum;

    // The detector, leaf by leaf; a lost leaf gets energy 0 (its draws are made and ignored, which keeps the
    // loop free of branches).
    NSBI_SIMD_LOOP
    for (int k = 0; k < n_leaves; ++k) {
      const std::uint32_t block = detector_block + 2 * static_cast<std::uint32_t>(k);
      const rng::UniformPair u = draws.uniforms(block);
      const rng::UniformPair v = draws.uniforms(block + 1);
      const rng::NormalPair energy_polar = rng::normal_pair(u.first, u.second);
      const double azimuthal = rng::normal_pair(v.first, v.second).first;
      const double e = le[k];  // > 0: a leaf's energy is at least its mass
      const double sigma_e = kernel_math::sqrt(stochastic_term2 / e + constant_term2);
      const double smeared = e * (1.0 + sigma_e * energy_polar.first);
      const bool kept = (e >= min_energy) & (smeared > 0.0);
      const double rho = kernel_math::sqrt(lx[k] * lx[k] + ly[k] * ly[k]);
      const double p = kernel_math::sqrt(rho * rho + lz[k] * lz[k]);
      // Guarded divisions: both sides of a select are evaluated in SIMD lanes, so no 0/0 either.
      const double inv_p = 1.0 / (p > 0.0 ? p : 1.0);
      const double inv_rho = 1.0 / (rho > 0.0 ? rho : 1.0);
      const double cos_t = p > 0.0 ? lz[k] * inv_p : 1.0;
      const double sin_t = rho * inv_p;
      const double cos_p = rho > 0.0 ? lx[k] * inv_rho : 1.0;
      const double sin_p = ly[k] * inv_rho;
      // Angle sums by rotation; the smearing angles are below 0.09 (a Box–Muller normal is below 8.7), well
      // inside the range of fdlibm's kernels (|x| <= pi/4), so no argument reduction is needed.
      const double d_polar = angle_resolution * energy_polar.second;
      const double d_azimuthal = angle_resolution * azimuthal;
      const double dt_sin = kernel_math::detail::kernel_sin(d_polar, 0.0);
      const double dt_cos = kernel_math::detail::kernel_cos(d_polar, 0.0);
      const double dp_sin = kernel_math::detail::kernel_sin(d_azimuthal, 0.0);
      const double dp_cos = kernel_math::detail::kernel_cos(d_azimuthal, 0.0);
      const double sin_t2 = sin_t * dt_cos + cos_t * dt_sin;
      le[k] = kept ? smeared : 0.0;
      lx[k] = sin_t2 * (cos_p * dp_cos - sin_p * dp_sin);
      ly[k] = sin_t2 * (sin_p * dp_cos + cos_p * dp_sin);
      lz[k] = cos_t * dt_cos - sin_t * dt_sin;
    }

    double jet_e[2], jet_p[2][3];
    const bool swap = decay.second < swap_probability;
    double angle[max_leaves];
    for (int j = 0; j < 2; ++j) {
      const int jet = swap ? 1 - j : j;  // j: the label after the swap
      const int begin = jet_begin[jet], end = jet_begin[jet + 1];
      double e = 0.0, px = 0.0, py = 0.0, pz = 0.0, lead = 0.0;
      int n = 0;
      for (int i = begin; i < end; ++i) {
        e += le[i];
        px += le[i] * lx[i];
        py += le[i] * ly[i];
        pz += le[i] * lz[i];
        lead = le[i] > lead ? le[i] : lead;
        n += le[i] > 0.0;
      }
      const double p = kernel_math::sqrt(px * px + py * py + pz * pz);
      const double inv_p = 1.0 / (p > 0.0 ? p : 1.0);
      NSBI_SIMD_LOOP
      for (int i = begin; i < end; ++i) {
        const double cos_angle = (lx[i] * px + ly[i] * py + lz[i] * pz) * inv_p;
        angle[i] = kernel_math::acos(cos_angle > 1.0 ? 1.0 : (cos_angle < -1.0 ? -1.0 : cos_angle));
      }
      double width = 0.0;
      for (int i = begin; i < end; ++i) width += le[i] * angle[i];
      const double mass2 = e * e - p * p;
      double* out = x + 2 + 4 * j;
      out[0] = mass2 > 0.0 ? kernel_math::sqrt(mass2) : 0.0;
      out[1] = static_cast<double>(n);
      out[2] = e > 0.0 ? lead / e : 0.0;
      out[3] = e > 0.0 ? width / e : 0.0;
      if (j == 0) x[0] = pz * inv_p;
      jet_e[j] = e;
      jet_p[j][0] = px;
      jet_p[j][1] = py;
      jet_p[j][2] = pz;
    }
    const double e = jet_e[0] + jet_e[1];
    const double px = jet_p[0][0] + jet_p[1][0], py = jet_p[0][1] + jet_p[1][1],
                 pz = jet_p[0][2] + jet_p[1][2];
    const double mass2 = e * e - (px * px + py * py + pz * pz);
    x[1] = mass2 > 0.0 ? kernel_math::sqrt(mass2) : 0.0;
    return true;
  }
};

/// particle_chain as a Simulator: simulate, gold, and (parton_only) the exact likelihood.
class ParticleChain final : public Simulator {
 public:
  explicit ParticleChain(const ParticleChainModel& model);

  const SimulatorInfo& info() const override { return info_; }
  const ParticleChainModel& model() const { return model_; }

  void simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                std::uint64_t first_index, std::uint64_t seed) const override;
  void simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                     const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                     const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const override;
  void log_likelihood(const ExecutionSpace& space, const ConstMatrix& theta, const ConstMatrix& x,
                      const Vector& out) const override;
  std::string exact_ratio_unavailable(const double* theta_a, const double* theta_b) const override;
  void exact_log_ratio(const ExecutionSpace& space, const double* theta_a, const double* theta_b,
                       const ConstMatrix& x, const Vector& out) const override;

 private:
  ParticleChainModel model_;
  SimulatorInfo info_;
};

/// The options particle_chain declares: mode, lambda, sigma.
std::vector<SimulatorOption> particle_chain_options();
/// particle_chain configured by `options` (validated: ConfigError "simulator.<key>: ...").
std::unique_ptr<Simulator> make_particle_chain(const SimulatorOptions& options);

}  // namespace nsbi::sims
