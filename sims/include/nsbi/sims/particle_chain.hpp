#pragma once
// particle_chain (specs/simulators.md §4): theta -> parton decay -> binary shower -> detector -> x, with gold
// (the joint log ratio and joint score from each event's latent history z). The shower's recursion runs on a
// fixed-size explicit stack, so a kernel needs no heap and does bounded work. On the host a work item runs a
// chunk of events: their walks one by one, then the detector and the jets as loops over all their leaves
// (sample_chunk); an event's result has the same bits whichever events share its chunk.
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
    const EventStream stream(draws);
    double x_event[n_observables_shower];
    sample_events<1, small_leaves>(1, &stream, theta, 2, x_event, &z);
    for (int d = 0; d < n_observables(); ++d) x[d] = x_event[d];
    return z.complete;
  }

  /// The number of events sample_chunk takes at a time.
  static constexpr int chunk_events = 16;

  /// Events index, ..., index + count - 1 of stream (seed, simulate) at theta (row e at theta + e * stride)
  /// into x (row e at x + e * n_observables_shower, of which the first n_observables() are set) and z;
  /// count <= chunk_events. The events run in lockstep: each stage's loop covers all of them. Every event's
  /// result has the same bits as sample's.
  KOKKOS_INLINE_FUNCTION void sample_chunk(std::uint64_t seed, std::uint64_t index, int count,
                                           const double* theta, int stride, double* x,
                                           ParticleChainLatent* z) const {
    EventStream streams[chunk_events];
    for (int e = 0; e < count; ++e)
      streams[e].draws =
          rng::StreamBlocks(seed, rng::Purpose::simulate, index + static_cast<std::uint64_t>(e));
    sample_events<chunk_events, chunk_pool_leaves>(count, streams, theta, stride, x, z);
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

  // One event's walk for at most Leaves leaves and Pending pending nodes. An event first runs with small
  // buffers (which stay in L1) and only one that overflows them reruns with the node cap's: the same draws,
  // so the same result.
  static constexpr int small_leaves = 128;
  static constexpr int small_pending = 64;
  static constexpr int split_chunk = 16;  // splittings' draws are prepared this many at a time
  static constexpr int simd_width = 8;    // doubles per AVX-512 register
  // The leaves a chunk's events share in the vector stages; an event that does not fit flushes those before
  // it. Each event's leaves start at a multiple of 4, so that its detector normals 3k .. 3k + 2 start at a
  // whole Philox block (4 normals).
  static constexpr int chunk_pool_leaves = 512;

  template <int Leaves, int Pending>
  struct Buffers {
    static constexpr int pending = Pending;
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
    int leaf[Leaves];  // leaf k's node, in walk order
    int pending_node[Pending];
    double pending_m[Pending];
  };

  // A row's stream in an array (StreamBlocks has no default constructor).
  union EventStream {
    char none;
    rng::StreamBlocks draws;
    KOKKOS_INLINE_FUNCTION EventStream() : none(0) {}
    KOKKOS_INLINE_FUNCTION explicit EventStream(const rng::StreamBlocks& d) : draws(d) {}
  };

  // The leaves of up to Events events (Capacity in all) for the vector stages, each event's padded to a
  // multiple of 4 and the whole to a multiple of simd_width; padding leaves copy a valid momentum and their
  // results are never read.
  template <int Events, int Capacity>
  struct Pool {
    static constexpr int events = Events;
    static constexpr int padded = Capacity + simd_width;
    static constexpr int blocks = 3 * padded / 4 + simd_width;
    int n_events = 0;
    int n_leaves = 0;
    int event_row[Events];     // the event's row in the caller's arrays
    bool swap[Events];         // the event's label swap
    int jet_begin[Events][3];  // the jets' leaves in the pool
    double e[padded], px[padded], py[padded], pz[padded];
    int owner[padded];      // 2 event + jet
    int block_row[blocks];  // the detector block's event (its stream) and number
    std::uint32_t block_number[blocks];
    double normal[4 * blocks];
    // The constituents: smeared energy (0: lost), unit direction, and angle to their jet.
    double le[padded], lx[padded], ly[padded], lz[padded], angle[padded];
  };

  // Splitting j's draws (block node_block + j) into out's arrays.
  template <class B>
  KOKKOS_FORCEINLINE_FUNCTION static void prepare_splitting(const rng::StreamBlocks& draws, int j,
                                                            double norm, double inv_lambda, B& out) {
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

  template <class B>
  KOKKOS_INLINE_FUNCTION static void prepare_splittings(const rng::StreamBlocks& draws, int first,
                                                        double norm, double inv_lambda, B& out) {
    NSBI_SIMD_LOOP
    for (int q = 0; q < split_chunk; ++q) prepare_splitting(draws, first + q, norm, inv_lambda, out);
  }

  // The events' decay angles, walks and kinematics one by one, into the pool; the detector and the jets as
  // loops over the pool's leaves.
  template <int Events, int Capacity>
  KOKKOS_INLINE_FUNCTION void sample_events(int count, const EventStream* streams, const double* theta,
                                            int stride, double* x, ParticleChainLatent* z) const {
    // The decay angles: every event's first candidate block in one vector loop, the events that reject both
    // its candidates (at most 4/9 of them) one by one. Also the decay azimuths and label swaps (block 0).
    double c_first[Events], u_phi[Events], u_swap[Events];
    std::uint32_t accepted[Events];  // not bool: GCC sizes SIMD lanes by the narrowest type in the loop
    NSBI_SIMD_LOOP
    for (int row = 0; row < count; ++row) {
      const DecayAngle angle{asymmetry(theta[row * stride])};
      const UniformQuad u = uniform_quad(streams[row].draws, candidate_block);
      double c0 = 0.0, c1 = 0.0;
      const bool first = angle.candidate({u.u0, u.u1}, c0);
      const bool second = angle.candidate({u.u2, u.u3}, c1);
      c_first[row] = first ? c0 : c1;
      accepted[row] = first | second;
      const rng::UniformPair decay = streams[row].draws.uniforms(0);
      u_phi[row] = decay.first;
      u_swap[row] = decay.second;
    }
    for (int row = 0; row < count; ++row) {
      z[row] = ParticleChainLatent{};
      z[row].c = accepted[row] != 0
                     ? c_first[row]
                     : decay_angle(streams[row].draws, theta[row * stride], candidate_block + 1);
    }
    if (mode == ParticleChainMode::parton_only) {
      for (int row = 0; row < count; ++row)
        x[row * n_observables_shower] =
            z[row].c + sigma * rng::normal_pair(streams[row].draws.uniforms(1)).first;
      return;
    }
    using B = Buffers<small_leaves, small_pending>;
    B buf;
    Pool<Events, Capacity> pool;
    for (int row = 0; row < count; ++row) {
      const rng::StreamBlocks& draws = streams[row].draws;
      const double lambda = lambda_of(theta + row * stride);
      const double norm = -Kokkos::Experimental::expm1(-lambda * r_max);
      const rng::UniformPair decay{u_phi[row], u_swap[row]};
      int jet_begin[3];
      if (walk(draws, decay.first, norm, 1.0 / lambda, z[row].c, buf, jet_begin, z[row])) {
        boost_all(buf, jet_begin[2] - 2, z[row]);
        if (pool.n_leaves + (jet_begin[2] + 3) / 4 * 4 > Capacity) flush(pool, streams, x);
        append(buf, jet_begin, row, decay.second < swap_probability, pool);
      } else {
        // Small buffers first; the rare event that overflows them reruns with the node cap's.
        z[row].complete =
            rerun(draws, decay, norm, 1.0 / lambda, z[row].c, x + row * n_observables_shower, z[row]);
      }
    }
    flush(pool, streams, x);
  }

  // The decay angle's rejection from candidate block first on.
  KOKKOS_INLINE_FUNCTION static double decay_angle(const rng::StreamBlocks& draws, double kappa,
                                                   std::uint32_t first) {
    double c = 0.0;
    const DecayAngle angle{asymmetry(kappa)};
    // Two candidates per block, from 32-bit uniforms (c then has 2^-31 resolution).
    for (std::uint32_t block = first;; ++block) {
      const UniformQuad u = uniform_quad(draws, block);
      if (angle.candidate({u.u0, u.u1}, c) || angle.candidate({u.u2, u.u3}, c)) break;
    }
    return c;
  }

  // An event beyond the small buffers, alone with the node cap's; false (and a NaN row) beyond the cap. Not
  // inlined: its buffers (~280 kB) then take stack only while it runs, not in every chunk's frame.
  NSBI_NOINLINE KOKKOS_FUNCTION bool rerun(const rng::StreamBlocks& draws, const rng::UniformPair& decay,
                                           double norm, double inv_lambda, double c, double* x,
                                           ParticleChainLatent& z) const {
    Buffers<max_leaves, stack_capacity> buf;
    Pool<1, max_leaves> pool;
    int jet_begin[3];
    if (!walk(draws, decay.first, norm, inv_lambda, c, buf, jet_begin, z)) {
      for (int d = 0; d < n_observables_shower; ++d) x[d] = std::numeric_limits<double>::quiet_NaN();
      return false;
    }
    boost_all(buf, jet_begin[2] - 2, z);
    append(buf, jet_begin, 0, decay.second < swap_probability, pool);
    const EventStream stream(draws);
    flush(pool, &stream, x);
    return true;
  }

  // The two jets' shower trees: buf's splittings (their parents and the parents' masses) and leaves (leaf k
  // is node buf.leaf[k], jet j's leaves [jet_begin[j], jet_begin[j + 1])), the partons' momenta, and z's
  // leaves and n_draws; false when the buffers' leaves or pending nodes ran out. The tree's shape follows
  // from the masses alone, so the walk (scalar, data-dependent branches) carries one mass per node; the
  // kinematics (boost) then run over the splittings in walk order without a branch.
  // u_phi: the decay azimuth's uniform; norm = 1 - e^{-lambda r_max}.
  template <class B>
  KOKKOS_INLINE_FUNCTION static bool walk(const rng::StreamBlocks& draws, double u_phi, double norm,
                                          double inv_lambda, double c, B& buf, int* jet_begin,
                                          ParticleChainLatent& z) {
    const kernel_math::SinCos phi = kernel_math::sin_cos_turns(u_phi);
    const double sin_theta = kernel_math::sqrt((1.0 - c) * (1.0 + c));
    const double axis[3] = {sin_theta * phi.cos, sin_theta * phi.sin, c};

    // The walk: jet j's leaves are [jet_begin[j], jet_begin[j + 1]) of buf.leaf.
    jet_begin[0] = 0;
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
        if (n_splittings == B::splittings || depth + 2 > B::pending) return false;
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

    z.n_draws = 2.0 * n_splittings;
    return true;
  }

  // Splitting j's children in the parent's rest frame, boosted by its velocity: E = (E_P e* + P.k) / m and
  // k_lab = k + P ((P.k) / (m (E_P + m)) + e* / m), with k = +-p* n; every 1/m cancels in units of m. A
  // parent precedes its children in walk order.
  template <class B>
  KOKKOS_FORCEINLINE_FUNCTION static void boost(B& buf, int j) {
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
  }

  // The kinematics of an event's n splittings, and its R = the sum of their r in walk order.
  template <class B>
  KOKKOS_INLINE_FUNCTION static void boost_all(B& buf, int n, ParticleChainLatent& z) {
    double r_sum = 0.0;
    for (int j = 0; j < n; ++j) {
      boost(buf, j);
      r_sum += buf.r[j];
    }
    z.r_sum = r_sum;
  }

  // Appends an event's leaves to the pool (room checked by the caller).
  template <class B, class P>
  KOKKOS_INLINE_FUNCTION static void append(const B& buf, const int* jet_begin, int row, bool swap, P& pool) {
    const int base = pool.n_leaves;
    const int event = pool.n_events++;
    const int n = jet_begin[2];
    const int n_padded = (n + 3) / 4 * 4;
    pool.event_row[event] = row;
    pool.swap[event] = swap;
    for (int j = 0; j < 3; ++j) pool.jet_begin[event][j] = base + jet_begin[j];
    for (int k = 0; k < n_padded; ++k) {
      const int node = k < n ? buf.leaf[k] : 0;
      pool.e[base + k] = buf.e[node];
      pool.px[base + k] = buf.px[node];
      pool.py[base + k] = buf.py[node];
      pool.pz[base + k] = buf.pz[node];
      pool.owner[base + k] = 2 * event + (k >= jet_begin[1]);
    }
    // The event's detector blocks: normals 3k .. 3k + 2 of its leaf k lie at 3 (base + k) in the pool.
    const int first_block = 3 * base / 4;
    for (int b = 0; b < 3 * n_padded / 4; ++b) {
      pool.block_row[first_block + b] = row;
      pool.block_number[first_block + b] = detector_block + static_cast<std::uint32_t>(b);
    }
    pool.n_leaves = base + n_padded;
  }

  // The detector and the jets of the pool's events, into their rows of x; empties the pool.
  template <class P>
  KOKKOS_INLINE_FUNCTION void flush(P& pool, const EventStream* streams, double* x) const {
    if (pool.n_events == 0) return;
    // Padding to whole SIMD widths (no scalar remainder): copies of the pool's first leaf and block.
    const int n_padded = (pool.n_leaves + simd_width - 1) / simd_width * simd_width;
    for (int k = pool.n_leaves; k < n_padded; ++k) {
      pool.e[k] = pool.e[0];
      pool.px[k] = pool.px[0];
      pool.py[k] = pool.py[0];
      pool.pz[k] = pool.pz[0];
      pool.owner[k] = 0;
    }
    const int n_blocks = (3 * n_padded / 4 + simd_width - 1) / simd_width * simd_width;
    for (int b = 3 * pool.n_leaves / 4; b < n_blocks; ++b) {
      pool.block_row[b] = pool.block_row[0];
      pool.block_number[b] = pool.block_number[0];
    }

    // The detector's normals, four per block (two Box–Muller pairs).
    NSBI_SIMD_LOOP
    for (int b = 0; b < n_blocks; ++b) {
      const UniformQuad u = uniform_quad(streams[pool.block_row[b]].draws, pool.block_number[b]);
      const rng::NormalPair first = normal_pair(u.u0, u.u1);
      const rng::NormalPair second = normal_pair(u.u2, u.u3);
      pool.normal[4 * b] = first.first;
      pool.normal[4 * b + 1] = first.second;
      pool.normal[4 * b + 2] = second.first;
      pool.normal[4 * b + 3] = second.second;
    }

    // The detector, leaf by leaf; a lost leaf gets energy 0 (its normals are drawn and ignored, which keeps
    // the loop free of branches).
    NSBI_SIMD_LOOP
    for (int k = 0; k < n_padded; ++k) {
      const double e = pool.e[k];  // > 0: a leaf's energy is at least its mass
      const double lx = pool.px[k], ly = pool.py[k], lz = pool.pz[k];
      const double sigma_e = kernel_math::sqrt(stochastic_term2 / e + constant_term2);
      const double smeared = e * (1.0 + sigma_e * pool.normal[3 * k]);
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
      const double d_polar = angle_resolution * pool.normal[3 * k + 1];
      const double d_azimuthal = angle_resolution * pool.normal[3 * k + 2];
      const double dt_sin = kernel_math::detail::kernel_sin(d_polar, 0.0);
      const double dt_cos = kernel_math::detail::kernel_cos(d_polar, 0.0);
      const double dp_sin = kernel_math::detail::kernel_sin(d_azimuthal, 0.0);
      const double dp_cos = kernel_math::detail::kernel_cos(d_azimuthal, 0.0);
      const double sin_t2 = sin_t * dt_cos + cos_t * dt_sin;
      pool.le[k] = kept ? smeared : 0.0;
      pool.lx[k] = sin_t2 * (cos_p * dp_cos - sin_p * dp_sin);
      pool.ly[k] = sin_t2 * (sin_p * dp_cos + cos_p * dp_sin);
      pool.lz[k] = cos_t * dt_cos - sin_t * dt_sin;
    }

    const double* le = pool.le;
    const double* lx = pool.lx;
    const double* ly = pool.ly;
    const double* lz = pool.lz;
    // The jets before the label swap: sums in walk order, then every constituent's angle to its jet in one
    // vectorised loop.
    double jet_e[2 * P::events], jet_lead[2 * P::events];
    double jet_px[2 * P::events], jet_py[2 * P::events], jet_pz[2 * P::events], jet_inv_p[2 * P::events];
    int jet_n[2 * P::events];
    for (int jet = 0; jet < 2 * pool.n_events; ++jet) {
      double e = 0.0, px = 0.0, py = 0.0, pz = 0.0, lead = 0.0;
      int n = 0;
      for (int i = pool.jet_begin[jet / 2][jet % 2]; i < pool.jet_begin[jet / 2][jet % 2 + 1]; ++i) {
        e += le[i];
        px += le[i] * lx[i];
        py += le[i] * ly[i];
        pz += le[i] * lz[i];
        lead = le[i] > lead ? le[i] : lead;
        n += le[i] > 0.0;
      }
      const double p = kernel_math::sqrt(px * px + py * py + pz * pz);
      jet_e[jet] = e;
      jet_px[jet] = px;
      jet_py[jet] = py;
      jet_pz[jet] = pz;
      jet_inv_p[jet] = 1.0 / (p > 0.0 ? p : 1.0);
      jet_lead[jet] = lead;
      jet_n[jet] = n;
    }
    NSBI_SIMD_LOOP
    for (int i = 0; i < n_padded; ++i) {
      const int jet = pool.owner[i];
      const double cos_angle =
          (lx[i] * jet_px[jet] + ly[i] * jet_py[jet] + lz[i] * jet_pz[jet]) * jet_inv_p[jet];
      pool.angle[i] = kernel_math::acos(cos_angle > 1.0 ? 1.0 : (cos_angle < -1.0 ? -1.0 : cos_angle));
    }
    for (int event = 0; event < pool.n_events; ++event) {
      const int row = pool.event_row[event];
      double* x_row = x + row * n_observables_shower;
      const bool swap = pool.swap[event];
      const int* jet_begin = pool.jet_begin[event];
      for (int j = 0; j < 2; ++j) {
        const int jet = swap ? 1 - j : j;  // j: the label after the swap
        double width = 0.0;
        for (int i = jet_begin[jet]; i < jet_begin[jet + 1]; ++i) width += le[i] * pool.angle[i];
        const int g = 2 * event + jet;
        const double e = jet_e[g], px = jet_px[g], py = jet_py[g], pz = jet_pz[g];
        const double p2 = px * px + py * py + pz * pz;
        const double mass2 = e * e - p2;
        double* out = x_row + 2 + 4 * j;
        out[0] = mass2 > 0.0 ? kernel_math::sqrt(mass2) : 0.0;
        out[1] = static_cast<double>(jet_n[g]);
        out[2] = e > 0.0 ? jet_lead[g] / e : 0.0;
        out[3] = e > 0.0 ? width / e : 0.0;
        if (j == 0) x_row[0] = pz * jet_inv_p[g];
      }
      const int g0 = 2 * event, g1 = 2 * event + 1;
      const double e = jet_e[g0] + jet_e[g1];
      const double px = jet_px[g0] + jet_px[g1], py = jet_py[g0] + jet_py[g1], pz = jet_pz[g0] + jet_pz[g1];
      const double mass2 = e * e - (px * px + py * py + pz * pz);
      x_row[1] = mass2 > 0.0 ? kernel_math::sqrt(mass2) : 0.0;
    }
    pool.n_events = 0;
    pool.n_leaves = 0;
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
