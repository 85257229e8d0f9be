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
  static constexpr double shower_cutoff_mass = 2.5;          // sqrt(t_cut)
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

  // The row's stream, block by block:
  //   0: the decay azimuth phi = 2 pi u and the label swap (u < 0.2), two 53-bit uniforms;
  //   1: parton_only's Box–Muller pair (its first normal smears c);
  //   node_block + j: splitting j in depth-first order (jet 1 first, left child before right), four 32-bit
  //     uniforms: u for r_L, u for r_R, and the direction n (cos theta = 2u - 1, azimuth 2 pi u);
  //   detector_block + b: the detector's normals 4b .. 4b + 3, two Box–Muller pairs of 32-bit uniforms; leaf
  //     k in the same order takes 3k (energy), 3k + 1 (polar angle), 3k + 2 (azimuthal angle), lost or not;
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
    const DecayAngle angle{asymmetry(kappa)};
    // Two candidates per block, from 32-bit uniforms (c then has 2^-31 resolution).
    for (std::uint32_t block = candidate_block;; ++block) {
      const UniformQuad u = uniform_quad(draws, block);
      if (angle.candidate({u.u0, u.u1}, c) || angle.candidate({u.u2, u.u3}, c)) break;
    }
    z = ParticleChainLatent{};
    z.c = c;
    if (mode == ParticleChainMode::parton_only) {
      x[0] = c + sigma * rng::normal_pair(draws.uniforms(1)).first;
      return true;
    }
    // Small buffers first; the rare event that overflows them reruns with the node cap's.
    const double lambda = lambda_of(theta);
    z.complete = shower<small_leaves, small_pending>(draws, lambda, c, x, z) ||
                 shower<max_leaves, stack_capacity>(draws, lambda, c, x, z);
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
  // Four uniforms on (0, 1) from one block, one per 32-bit word: (w + 1/2) 2^-32, exact. 32 bits suffice
  // for every draw of the shower and the detector (a Box–Muller normal then reaches 6.8 sigma), and halve the
  // Philox blocks of the 53-bit pairs.
  struct UniformQuad {
    double u0, u1, u2, u3;
  };

  KOKKOS_FORCEINLINE_FUNCTION static UniformQuad uniform_quad(const rng::StreamBlocks& draws,
                                                              std::uint32_t block) {
    const Kokkos::Array<std::uint32_t, 4> w = draws.words(block);
    constexpr double scale = 0x1p-32;
    return {(static_cast<double>(w[0]) + 0.5) * scale, (static_cast<double>(w[1]) + 0.5) * scale,
            (static_cast<double>(w[2]) + 0.5) * scale, (static_cast<double>(w[3]) + 0.5) * scale};
  }

  // sin(2 pi t) and cos(2 pi t) as kernel_math::sin_cos_turns, without its double-double product: the
  // quarter-turn remainder r is exact and r pi/2 is rounded once, an error of an ulp (of no consequence for
  // draws from 32-bit uniforms), for fewer than half the operations.
  KOKKOS_FORCEINLINE_FUNCTION static kernel_math::SinCos sin_cos_turns(double t) {
    constexpr double round_shift = 0x1.8p52;  // adding it rounds |q| < 2^51 to an integer in the low bits
    const double q = 4.0 * t;                 // quarter turns, exact
    const double shifted = q + round_shift;
    const double r = q - (shifted - round_shift);  // exact, in [-1/2, 1/2]
    const unsigned quadrant = static_cast<unsigned>(kernel_math::detail::bits_of(shifted) & 3u);
    const double x = r * kernel_math::detail::pio2_hi;
    const double sin_x = kernel_math::detail::kernel_sin(x, 0.0);
    const double cos_x = kernel_math::detail::kernel_cos(x, 0.0);
    const bool odd = (quadrant & 1u) != 0;
    const double sin_abs = odd ? cos_x : sin_x;
    const double cos_abs = odd ? sin_x : cos_x;
    return {(quadrant & 2u) != 0 ? -sin_abs : sin_abs, ((quadrant + 1u) & 2u) != 0 ? -cos_abs : cos_abs};
  }

  // Box–Muller as rng::normal_pair, with the sin_cos_turns above.
  KOKKOS_FORCEINLINE_FUNCTION static rng::NormalPair normal_pair(double u_radius, double u_angle) {
    const double radius = kernel_math::sqrt(-2.0 * kernel_math::log(u_radius));
    const kernel_math::SinCos angle = sin_cos_turns(u_angle);
    return {radius * angle.cos, radius * angle.sin};
  }

  // One event's working set for at most Leaves leaves and Pending pending nodes. An event first runs with
  // small buffers (which stay in L1) and only one that overflows them reruns with the node cap's: the same
  // draws, so the same result.
  static constexpr int small_leaves = 128;
  static constexpr int small_pending = 64;
  static constexpr int split_chunk = 16;  // splittings' draws are prepared this many at a time
  static constexpr int simd_width = 8;    // doubles per AVX-512 register

  template <int Leaves, int Pending>
  struct Buffers {
    static constexpr int splittings = Leaves - 2;
    static constexpr int nodes = 2 + 2 * splittings;
    static constexpr int prepared = splittings + split_chunk;
    // Splitting j (depth-first order): what its draws give in units of the parent's mass m = sqrt(t) (the
    // splitting is scale-free: m_L = a m, m_R = b m, p* = p m, E*_L,R = e_L,R m), r = r_L + r_R and the
    // direction n; its parent node and the parent's mass.
    double r[prepared], a[prepared], b[prepared], p[prepared], e_left[prepared], e_right[prepared];
    double nx[prepared], ny[prepared], nz[prepared];
    int parent[splittings];
    double parent_m[splittings];
    // Lab momenta of the nodes: 0 and 1 the jets' partons, 2 + 2j and 3 + 2j splitting j's children.
    double e[nodes], px[nodes], py[nodes], pz[nodes];
    // The vectorised loops run over whole SIMD widths (padded), with no scalar remainder.
    static constexpr int padded_leaves = Leaves + simd_width;
    int leaf[padded_leaves];  // leaf k's node, in walk order
    int pending_node[Pending];
    double pending_m[Pending];
    double normal[3 * padded_leaves + 4 * simd_width];  // the detector's normals, three per leaf
    // The constituents in walk order: smeared energy (0: lost) and unit direction, and angle to their jet.
    double le[padded_leaves], lx[padded_leaves], ly[padded_leaves], lz[padded_leaves], angle[padded_leaves];
  };

  template <class B>
  KOKKOS_INLINE_FUNCTION static void prepare_splittings(const rng::StreamBlocks& draws, int first,
                                                        double norm, double inv_lambda, B& out) {
    NSBI_SIMD_LOOP
    for (int q = 0; q < split_chunk; ++q) {
      const int j = first + q;
      const UniformQuad u = uniform_quad(draws, node_block + static_cast<std::uint32_t>(j));
      // r = -ln(1 - u (1 - e^{-lambda r_max})) / lambda, the truncated exponential's inverse CDF.
      const double r_left = -kernel_math::log(1.0 - u.u0 * norm) * inv_lambda;
      const double r_right = -kernel_math::log(1.0 - u.u1 * norm) * inv_lambda;
      out.r[j] = r_left + r_right;
      // t_L = r_L t and t_R = r_R (sqrt(t) - sqrt(t_L))^2, as masses over sqrt(t).
      const double a = kernel_math::sqrt(r_left);
      const double b = kernel_math::sqrt(r_right) * (1.0 - a);
      out.a[j] = a;
      out.b[j] = b;
      // Källén K(1, a^2, b^2) = (1 - (a + b)^2)(1 - (a - b)^2), >= 0 up to rounding.
      const double k1 = 1.0 - (a + b) * (a + b);
      const double k2 = 1.0 - (a - b) * (a - b);
      out.p[j] = 0.5 * kernel_math::sqrt(k1 > 0.0 ? k1 * k2 : 0.0);
      out.e_left[j] = 0.5 * (1.0 + a * a - b * b);
      out.e_right[j] = 0.5 * (1.0 - a * a + b * b);
      const double cos_n = 2.0 * u.u2 - 1.0;
      const double sin_n = kernel_math::sqrt((1.0 - cos_n) * (1.0 + cos_n));
      const kernel_math::SinCos azimuth = sin_cos_turns(u.u3);
      out.nx[j] = sin_n * azimuth.cos;
      out.ny[j] = sin_n * azimuth.sin;
      out.nz[j] = cos_n;
    }
  }

  // The two jets' showers and the detector; false when the buffers' leaves or pending nodes ran out. The
  // tree's shape follows from the masses alone, so the walk (scalar, data-dependent branches) carries one
  // mass per node; the kinematics then run over the splittings in walk order without a branch, the detector
  // and the jets' widths as loops that vectorise.
  template <int Leaves, int Pending>
  KOKKOS_INLINE_FUNCTION bool shower(const rng::StreamBlocks& draws, double lambda, double c, double* x,
                                     ParticleChainLatent& z) const {
    using B = Buffers<Leaves, Pending>;
    B buf;
    const rng::UniformPair decay = draws.uniforms(0);
    const kernel_math::SinCos phi = kernel_math::sin_cos_turns(decay.first);
    const double sin_theta = kernel_math::sqrt((1.0 - c) * (1.0 + c));
    const double axis[3] = {sin_theta * phi.cos, sin_theta * phi.sin, c};
    const double norm = -Kokkos::Experimental::expm1(-lambda * r_max);
    const double inv_lambda = 1.0 / lambda;

    // The walk: jet j's leaves are [jet_begin[j], jet_begin[j + 1]) of buf.leaf.
    int jet_begin[3] = {0, 0, 0};
    int n_leaves = 0;
    int n_splittings = 0;
    for (int jet = 0; jet < 2; ++jet) {
      const double sign = jet == 0 ? 1.0 : -1.0;
      buf.e[jet] = jet_energy;
      buf.px[jet] = sign * jet_momentum * axis[0];
      buf.py[jet] = sign * jet_momentum * axis[1];
      buf.pz[jet] = sign * jet_momentum * axis[2];
      int node = jet;
      double m = jet_mass;
      int depth = 0;  // pending right children
      for (;;) {
        // m <= 2.5 is m^2 <= t_cut exactly (2.5 is sqrt(6.25), and no other double squares to 6.25), one
        // multiplication less on the walk's critical path.
        if (m <= shower_cutoff_mass) {
          buf.leaf[n_leaves++] = node;
          if (depth == 0) break;
          --depth;
          node = buf.pending_node[depth];
          m = buf.pending_m[depth];
          continue;
        }
        // n_leaves <= n_splittings + 2 at the end: capping the splittings caps the leaves at Leaves. With
        // the node cap's buffers this is the cap of the original explicit stack (pending nodes + 2).
        if (n_splittings == B::splittings || depth + 2 > Pending) return false;
        if (n_splittings % split_chunk == 0) prepare_splittings(draws, n_splittings, norm, inv_lambda, buf);
        const int j = n_splittings++;
        buf.parent[j] = node;
        buf.parent_m[j] = m;
        buf.pending_node[depth] = 3 + 2 * j;
        buf.pending_m[depth] = buf.b[j] * m;
        ++depth;
        node = 2 + 2 * j;
        m = buf.a[j] * m;
      }
      jet_begin[jet + 1] = n_leaves;
      z.leaves[jet] = n_leaves - jet_begin[jet];
    }

    // The children in the parent's rest frame, boosted by its velocity: E = (E_P e* + P.k) / m and
    // k_lab = k + P ((P.k) / (m (E_P + m)) + e* / m), with k = +-p* n; every 1/m cancels in units of m. A
    // parent precedes its children in walk order.
    double r_sum = 0.0;
    for (int j = 0; j < n_splittings; ++j) {
      const int parent = buf.parent[j];
      const double m = buf.parent_m[j];
      const double e = buf.e[parent], px = buf.px[parent], py = buf.py[parent], pz = buf.pz[parent];
      const double nx = buf.nx[j], ny = buf.ny[j], nz = buf.nz[j];
      const double p = buf.p[j];
      const double pn = p * (px * nx + py * ny + pz * nz);  // (P.k) / m for the left child
      const double g = pn * (1.0 / (e + m));
      const double pm = p * m;
      const double c_left = g + buf.e_left[j];
      const double c_right = buf.e_right[j] - g;
      const int left = 2 + 2 * j;
      buf.e[left] = e * buf.e_left[j] + pn;
      buf.px[left] = pm * nx + px * c_left;
      buf.py[left] = pm * ny + py * c_left;
      buf.pz[left] = pm * nz + pz * c_left;
      buf.e[left + 1] = e * buf.e_right[j] - pn;
      buf.px[left + 1] = -pm * nx + px * c_right;
      buf.py[left + 1] = -pm * ny + py * c_right;
      buf.pz[left + 1] = -pm * nz + pz * c_right;
      r_sum += buf.r[j];
    }
    z.n_draws = 2.0 * n_splittings;
    z.r_sum = r_sum;

    // Padding leaves point at node 0, a valid momentum; their results are never read.
    const int n_padded = (n_leaves + simd_width - 1) / simd_width * simd_width;
    for (int k = n_leaves; k < n_padded; ++k) buf.leaf[k] = 0;

    // The detector's normals, four per block (two Box–Muller pairs); leaf k takes 3k, 3k + 1, 3k + 2.
    const int n_normal_blocks = (3 * n_leaves + 4 * simd_width - 1) / (4 * simd_width) * simd_width;
    NSBI_SIMD_LOOP
    for (int b = 0; b < n_normal_blocks; ++b) {
      const UniformQuad u = uniform_quad(draws, detector_block + static_cast<std::uint32_t>(b));
      const rng::NormalPair first = normal_pair(u.u0, u.u1);
      const rng::NormalPair second = normal_pair(u.u2, u.u3);
      buf.normal[4 * b] = first.first;
      buf.normal[4 * b + 1] = first.second;
      buf.normal[4 * b + 2] = second.first;
      buf.normal[4 * b + 3] = second.second;
    }
    for (int k = 4 * n_normal_blocks; k < 3 * n_padded; ++k) buf.normal[k] = 0.0;  // padding leaves' normals

    // The detector, leaf by leaf; a lost leaf gets energy 0 (its normals are drawn and ignored, which keeps
    // the loop free of branches).
    NSBI_SIMD_LOOP
    for (int k = 0; k < n_padded; ++k) {
      const int node = buf.leaf[k];
      const double e = buf.e[node];  // > 0: a leaf's energy is at least its mass
      const double lx = buf.px[node], ly = buf.py[node], lz = buf.pz[node];
      const double sigma_e = kernel_math::sqrt(stochastic_term2 / e + constant_term2);
      const double smeared = e * (1.0 + sigma_e * buf.normal[3 * k]);
      const bool kept = (e >= min_energy) & (smeared > 0.0);
      const double rho = kernel_math::sqrt(lx * lx + ly * ly);
      const double p = kernel_math::sqrt(rho * rho + lz * lz);
      // Guarded divisions: both sides of a select are evaluated in SIMD lanes, so no 0/0 either.
      const double inv_p = 1.0 / (p > 0.0 ? p : 1.0);
      const double inv_rho = 1.0 / (rho > 0.0 ? rho : 1.0);
      const double cos_t = p > 0.0 ? lz * inv_p : 1.0;
      const double sin_t = rho * inv_p;
      const double cos_p = rho > 0.0 ? lx * inv_rho : 1.0;
      const double sin_p = ly * inv_rho;
      // Angle sums by rotation; the smearing angles are below 0.07 (a normal from 32-bit uniforms is below
      // 6.8), well inside the range of fdlibm's kernels (|x| <= pi/4), so no argument reduction is needed.
      const double d_polar = angle_resolution * buf.normal[3 * k + 1];
      const double d_azimuthal = angle_resolution * buf.normal[3 * k + 2];
      const double dt_sin = kernel_math::detail::kernel_sin(d_polar, 0.0);
      const double dt_cos = kernel_math::detail::kernel_cos(d_polar, 0.0);
      const double dp_sin = kernel_math::detail::kernel_sin(d_azimuthal, 0.0);
      const double dp_cos = kernel_math::detail::kernel_cos(d_azimuthal, 0.0);
      const double sin_t2 = sin_t * dt_cos + cos_t * dt_sin;
      buf.le[k] = kept ? smeared : 0.0;
      buf.lx[k] = sin_t2 * (cos_p * dp_cos - sin_p * dp_sin);
      buf.ly[k] = sin_t2 * (sin_p * dp_cos + cos_p * dp_sin);
      buf.lz[k] = cos_t * dt_cos - sin_t * dt_sin;
    }

    const double* le = buf.le;
    const double* lx = buf.lx;
    const double* ly = buf.ly;
    const double* lz = buf.lz;
    double* angle = buf.angle;
    // The jets before the label swap: sums in walk order, then every constituent's angle to its jet in one
    // vectorised loop.
    double jet_e[2], jet_p[2][3], jet_inv_p[2], jet_lead[2];
    int jet_n[2];
    for (int jet = 0; jet < 2; ++jet) {
      double e = 0.0, px = 0.0, py = 0.0, pz = 0.0, lead = 0.0;
      int n = 0;
      for (int i = jet_begin[jet]; i < jet_begin[jet + 1]; ++i) {
        e += le[i];
        px += le[i] * lx[i];
        py += le[i] * ly[i];
        pz += le[i] * lz[i];
        lead = le[i] > lead ? le[i] : lead;
        n += le[i] > 0.0;
      }
      const double p = kernel_math::sqrt(px * px + py * py + pz * pz);
      jet_e[jet] = e;
      jet_p[jet][0] = px;
      jet_p[jet][1] = py;
      jet_p[jet][2] = pz;
      jet_inv_p[jet] = 1.0 / (p > 0.0 ? p : 1.0);
      jet_lead[jet] = lead;
      jet_n[jet] = n;
    }
    const int second = jet_begin[1];
    NSBI_SIMD_LOOP
    for (int i = 0; i < n_padded; ++i) {
      const bool first = i < second;
      const double px = first ? jet_p[0][0] : jet_p[1][0];
      const double py = first ? jet_p[0][1] : jet_p[1][1];
      const double pz = first ? jet_p[0][2] : jet_p[1][2];
      const double inv_p = first ? jet_inv_p[0] : jet_inv_p[1];
      const double cos_angle = (lx[i] * px + ly[i] * py + lz[i] * pz) * inv_p;
      angle[i] = kernel_math::acos(cos_angle > 1.0 ? 1.0 : (cos_angle < -1.0 ? -1.0 : cos_angle));
    }
    const bool swap = decay.second < swap_probability;
    for (int j = 0; j < 2; ++j) {
      const int jet = swap ? 1 - j : j;  // j: the label after the swap
      double width = 0.0;
      for (int i = jet_begin[jet]; i < jet_begin[jet + 1]; ++i) width += le[i] * angle[i];
      const double e = jet_e[jet], px = jet_p[jet][0], py = jet_p[jet][1], pz = jet_p[jet][2];
      const double p2 = px * px + py * py + pz * pz;
      const double mass2 = e * e - p2;
      double* out = x + 2 + 4 * j;
      out[0] = mass2 > 0.0 ? kernel_math::sqrt(mass2) : 0.0;
      out[1] = static_cast<double>(jet_n[jet]);
      out[2] = e > 0.0 ? jet_lead[jet] / e : 0.0;
      out[3] = e > 0.0 ? width / e : 0.0;
      if (j == 0) x[0] = pz * jet_inv_p[jet];
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
