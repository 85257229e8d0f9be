#pragma once
// particle_chain (docs/simulators.md): theta -> parton decay -> binary shower -> detector -> x, with gold
// (the joint log ratio and joint score from each event's latent history z). The shower's recursion runs as a
// walk with a fixed-size explicit stack, so a kernel needs no heap and does bounded work. On the host a work
// item runs a chunk of events: their walks one by one, then the detector and the jets as loops over all their
// leaves (sample_chunk); an event's result has the same bits whichever events share its chunk.
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
/// depend on theta (docs/simulators.md, particle_chain, Gold). leaves and complete are diagnostics.
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

  // The row's stream, block by block:
  //   0: the decay azimuth phi = 2 pi u and the label swap (u < 0.2), two 53-bit uniforms;
  //   1: parton_only's Box–Muller pair (its first normal smears c);
  //   node_block + j: splitting j in depth-first order (jet 1 first, left child before right), four 24-bit
  //     float uniforms: u for r_L, u for r_R, and the direction n (cos theta = 2u - 1, azimuth 2 pi u);
  //   detector_block + b: the detector's normals 4b .. 4b + 3, two Box–Muller pairs of 24-bit float
  //     uniforms; leaf k takes 3k (energy), 3k + 1 (polar angle), 3k + 2 (azimuthal angle), lost or not,
  //     the leaves counted in the order their splittings make them (splitting by splitting in the order
  //     above, its left child before its right; so jet 1's first);
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

  /// log p(x, z | theta_a) - log p(x, z | theta_b) (docs/simulators.md, particle_chain, Gold).
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

  /// score[p] = d log p(x, z | theta) / d theta_p (docs/simulators.md, particle_chain, Gold).
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

  /// parton_only's exact log p(x | kappa) (docs/simulators.md): the decay density convolved with
  /// N(0, sigma^2).
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

  // The shower's and the detector's draws are computed in single precision: their uniforms have 24 bits, the
  // detector's resolutions are >= 1% and 0.01 rad, and x is read as float32 in training. Four uniforms on
  // (0, 1) from one block, one per 32-bit word, exact in float as rng::uniform_from_bits makes them in
  // double: the word's top 24 bits k give k 2^-24, and k = 0 gives 2^-25 (so neither 0 nor 1: (w + 1/2)
  // 2^-32 would round to 1.0f). A Box–Muller normal from them stays below 5.9 in magnitude.
  struct UniformQuadF {
    float u0, u1, u2, u3;
  };

  KOKKOS_FORCEINLINE_FUNCTION static float uniform24(std::uint32_t word) {
    const std::uint32_t k = word >> 8;
    const std::uint32_t twice_k_or_one = (k << 1) | static_cast<std::uint32_t>(k == 0);  // < 2^25, even or 1
    return static_cast<float>(static_cast<std::int32_t>(twice_k_or_one)) * 0x1p-25f;
  }

  KOKKOS_FORCEINLINE_FUNCTION static UniformQuadF uniform_quad_f(const rng::StreamBlocks& draws,
                                                                 std::uint32_t block) {
    const Kokkos::Array<std::uint32_t, 4> w = draws.words(block);
    return {uniform24(w[0]), uniform24(w[1]), uniform24(w[2]), uniform24(w[3])};
  }

  struct NormalPairF {
    float first, second;
  };

  KOKKOS_FORCEINLINE_FUNCTION static NormalPairF normal_pair_f(float u_radius, float u_angle) {
    const float radius = kernel_math::sqrtf(-2.0f * kernel_math::logf(u_radius));
    const kernel_math::SinCosF angle = kernel_math::sin_cos_turnsf(u_angle);
    return {radius * angle.cos, radius * angle.sin};
  }

  // One event's walk for at most Leaves leaves. An event first runs with small buffers (which stay in L1) and
  // only one that overflows them reruns with the node cap's: the same draws, so the same result.
  static constexpr int small_leaves = 128;
  static constexpr int split_chunk = 16;  // splittings' draws are prepared this many at a time
  static constexpr int simd_width = 16;   // floats per AVX-512 register
  // The leaves a chunk's events share in the vector stages; an event that does not fit flushes those before
  // it. Each event's leaves start at a multiple of 4, so that its detector normals 3k .. 3k + 2 start at a
  // whole Philox block (4 normals).
  static constexpr int chunk_pool_leaves = 512;

  template <int Leaves>
  struct Buffers {
    static constexpr int splittings = Leaves - 2;
    static constexpr int nodes = 2 + 2 * splittings;
    static constexpr int prepared = splittings + split_chunk;
    // Splitting j (depth-first order): what its draws give in units of the parent's mass m = sqrt(t) (the
    // splitting is scale-free: m_L = a m, m_R = b m, p* = p m, E*_L,R = e_L,R m), r = r_L + r_R and q = p n
    // (n the direction); its parent node and the parent's mass.
    double r[prepared], a[prepared], b[prepared], e_left[prepared], e_right[prepared];
    double qx[prepared], qy[prepared], qz[prepared];
    int parent[splittings];
    double parent_m[splittings];
    // Lab momenta of the nodes: 0 and 1 the jets' partons, 2 + 2j and 3 + 2j splitting j's children.
    // (E, px, py, pz) of node i at p4[i]: the boost's four components are one 256-bit vector.
    alignas(32) double p4[nodes][4];
    int leaf[Leaves + 1];  // leaf k's node (+ 1: a walk's step stores past the last)
    // The walk's pending nodes: at most one per splitting, from slot 1 on (see walk).
    int pending_node[splittings + 1];
    double pending_m[splittings + 1];
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
  // results are never read. The detector runs in float (see UniformQuadF): the leaves' momenta are rounded
  // to float here, the jets' sums are taken in double.
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
    float e[padded], px[padded], py[padded], pz[padded];
    int block_row[blocks];  // the detector block's event (its stream) and number
    std::uint32_t block_number[blocks];
    float normal[4 * blocks];
    // The constituents: smeared energy (0: lost), unit direction, and angle to their jet.
    float le[padded], lx[padded], ly[padded], lz[padded], angle[padded];
    float axis_x[padded], axis_y[padded], axis_z[padded];  // the unit axis of the leaf's jet
  };

  // The r draws' inverse CDF, r = -ln(1 - u (1 - e^{-lambda r_max})) / lambda, as r = -(ln(alpha + beta u) +
  // gamma) / lambda with an event's constants in float: alpha = 1, beta = -(1 - e^{-lambda r_max}), gamma = 0
  // on particle_chain's domain (lambda >= 0.5); for lambda < 0 the factor e^{-lambda r_max} - 1 > 1 moves
  // into gamma, so that the arguments stay finite in float at any lambda (the tests reach the node cap with
  // lambda = -600).
  struct RateDraw {
    float alpha, beta, gamma, inv_lambda;
  };

  KOKKOS_INLINE_FUNCTION static RateDraw rate_draw(double lambda) {
    // For x >= 1/2, 1 - e^{-x} >= 0.39 loses at most 2 bits of a double to cancellation, far below the float
    // it is rounded to: exp there (less than half expm1's time), expm1 below.
    const double x = lambda * r_max;
    const double norm = x >= 0.5 ? 1.0 - Kokkos::Experimental::exp(-x) : -Kokkos::Experimental::expm1(-x);
    const float inv_lambda = static_cast<float>(1.0 / lambda);
    if (norm >= -1.0) return {1.0f, static_cast<float>(-norm), 0.0f, inv_lambda};
    return {static_cast<float>(-1.0 / norm), 1.0f, static_cast<float>(kernel_math::log(-norm)), inv_lambda};
  }

  // Splitting j's draws (block node_block + j) into out's arrays, in float (see UniformQuadF); the walk and
  // the kinematics take them as doubles.
  template <class B>
  KOKKOS_FORCEINLINE_FUNCTION static void prepare_splitting(const rng::StreamBlocks& draws, int j,
                                                            const RateDraw& rate, B& out) {
    const UniformQuadF u = uniform_quad_f(draws, node_block + static_cast<std::uint32_t>(j));
    // The event and R (gold) take the very same r: the float values, exact as doubles.
    const float r_left = -(kernel_math::logf(rate.alpha + rate.beta * u.u0) + rate.gamma) * rate.inv_lambda;
    const float r_right = -(kernel_math::logf(rate.alpha + rate.beta * u.u1) + rate.gamma) * rate.inv_lambda;
    out.r[j] = static_cast<double>(r_left) + static_cast<double>(r_right);
    // t_L = r_L t and t_R = r_R (sqrt(t) - sqrt(t_L))^2, as masses over sqrt(t).
    const float a = kernel_math::sqrtf(r_left);
    const float b = kernel_math::sqrtf(r_right) * (1.0f - a);
    out.a[j] = a;
    out.b[j] = b;
    // Källén K(1, a^2, b^2) = (1 - (a + b)^2)(1 - (a - b)^2), >= 0 up to rounding.
    const float k1 = 1.0f - (a + b) * (a + b);
    const float k2 = 1.0f - (a - b) * (a - b);
    // A select on the bits: GCC would otherwise move sqrtf into a branch that stops vectorisation.
    const float p = 0.5f * kernel_math::sqrtf(kernel_math::detail::select(k1 > 0.0f, k1 * k2, 0.0f));
    out.e_left[j] = 0.5f * (1.0f + a * a - b * b);
    out.e_right[j] = 0.5f * (1.0f - a * a + b * b);
    const float cos_n = 2.0f * u.u2 - 1.0f;
    const float sin_n = kernel_math::sqrtf((1.0f - cos_n) * (1.0f + cos_n));
    const kernel_math::SinCosF azimuth = kernel_math::sin_cos_turnsf(u.u3);
    // p* n in units of m, exact in double (a product of two floats).
    out.qx[j] = static_cast<double>(p) * static_cast<double>(sin_n * azimuth.cos);
    out.qy[j] = static_cast<double>(p) * static_cast<double>(sin_n * azimuth.sin);
    out.qz[j] = static_cast<double>(p) * static_cast<double>(cos_n);
  }

  template <class B>
  KOKKOS_FORCEINLINE_FUNCTION static void prepare_splittings(const rng::StreamBlocks& draws, int first,
                                                             const RateDraw& rate, B& out) {
    NSBI_SIMD_LOOP
    for (int q = 0; q < split_chunk; ++q) prepare_splitting(draws, first + q, rate, out);
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
    using B = Buffers<small_leaves>;
    B buf;
    Pool<Events, Capacity> pool;
    for (int row = 0; row < count; ++row) {
      const rng::StreamBlocks& draws = streams[row].draws;
      const double lambda = lambda_of(theta + row * stride);
      const RateDraw rate = rate_draw(lambda);
      const rng::UniformPair decay{u_phi[row], u_swap[row]};
      int jet_begin[3];
      if (walk(draws, decay.first, rate, z[row].c, buf, jet_begin, z[row])) {
        boost_all(buf, jet_begin, z[row]);
        if (pool.n_leaves + (jet_begin[2] + 3) / 4 * 4 > Capacity) flush(pool, streams, x);
        append(buf, jet_begin, row, decay.second < swap_probability, pool);
      } else {
        // Small buffers first; the rare event that overflows them reruns with the node cap's.
        z[row].complete = rerun(draws, decay, rate, z[row].c, x + row * n_observables_shower, z[row]);
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
  // inlined: its buffers (~240 kB) then take stack only while it runs, not in every chunk's frame.
  NSBI_NOINLINE KOKKOS_FUNCTION bool rerun(const rng::StreamBlocks& draws, const rng::UniformPair& decay,
                                           const RateDraw& rate, double c, double* x,
                                           ParticleChainLatent& z) const {
    Buffers<max_leaves> buf;
    Pool<1, max_leaves> pool;
    int jet_begin[3];
    if (!walk(draws, decay.first, rate, c, buf, jet_begin, z)) {
      for (int d = 0; d < n_observables_shower; ++d) x[d] = std::numeric_limits<double>::quiet_NaN();
      return false;
    }
    boost_all(buf, jet_begin, z);
    append(buf, jet_begin, 0, decay.second < swap_probability, pool);
    const EventStream stream(draws);
    flush(pool, &stream, x);
    return true;
  }

#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
  // A node's mass in a vector register: GCC then selects masses with a blend, where for a scalar double it
  // may branch.
  typedef double Mass __attribute__((vector_size(16)));
  typedef long long MassMask __attribute__((vector_size(16)));
  KOKKOS_FORCEINLINE_FUNCTION static Mass mass(double m) { return Mass{m, m}; }
  KOKKOS_FORCEINLINE_FUNCTION static double value(const Mass& m) { return m[0]; }
  // m where m splits (m > sqrt(t_cut)), otherwise `otherwise`.
  KOKKOS_FORCEINLINE_FUNCTION static Mass select_mass(const Mass& m, const Mass& otherwise) {
    const MassMask leaf = m <= mass(shower_cutoff_mass);
    return reinterpret_cast<Mass>((reinterpret_cast<MassMask>(otherwise) & leaf) |
                                  (reinterpret_cast<MassMask>(m) & ~leaf));
  }
#else
  typedef double Mass;
  KOKKOS_FORCEINLINE_FUNCTION static Mass mass(double m) { return m; }
  KOKKOS_FORCEINLINE_FUNCTION static double value(const Mass& m) { return m; }
  KOKKOS_FORCEINLINE_FUNCTION static Mass select_mass(const Mass& m, const Mass& otherwise) {
    return m <= shower_cutoff_mass ? otherwise : m;
  }
#endif

  // The two jets' shower trees, depth-first over their splittings (jet 1 first, left child before right):
  // buf's splittings (their parents and the parents' masses) and leaves (leaf k is node buf.leaf[k], recorded
  // by the splitting that makes it, left before right; jet j's leaves [jet_begin[j], jet_begin[j + 1])), the
  // partons' momenta, and z's leaves and n_draws; false when the buffers' splittings ran out. The tree's
  // shape follows from the masses alone, so the walk carries one mass per node; the kinematics (boost) then
  // run over the splittings in walk order without a branch.
  // u_phi: the decay azimuth's uniform; rate: the r draws' constants.
  template <class B>
  KOKKOS_INLINE_FUNCTION static bool walk(const rng::StreamBlocks& draws, double u_phi, const RateDraw& rate,
                                          double c, B& buf, int* jet_begin, ParticleChainLatent& z) {
    const kernel_math::SinCos phi = kernel_math::sin_cos_turns(u_phi);
    const double sin_theta = kernel_math::sqrt((1.0 - c) * (1.0 + c));
    const double axis[3] = {sin_theta * phi.cos, sin_theta * phi.sin, c};

    // The walk: jet j's leaves are [jet_begin[j], jet_begin[j + 1]) of buf.leaf.
    jet_begin[0] = 0;
    int n_leaves = 0;
    int n_splittings = 0;
    int next_check = 0;  // where the next splittings' draws are due, or the cap
    buf.pending_node[0] = 0;
    buf.pending_m[0] = 0.0;
    for (int jet = 0; jet < 2; ++jet) {
      const double sign = jet == 0 ? 1.0 : -1.0;
      buf.p4[jet][0] = jet_energy;
      buf.p4[jet][1] = sign * jet_momentum * axis[0];
      buf.p4[jet][2] = sign * jet_momentum * axis[1];
      buf.p4[jet][3] = sign * jet_momentum * axis[2];
      // The walk visits the splittings only: a splitting records its children that are leaves at once (left
      // before right) and goes on to its left child if that splits, else to its right child if that splits,
      // else to the last pending node; a right child that splits while the left one does too is pending.
      // Which case applies is close to a coin flip, so there is no branch on it: the stores of all cases
      // are made (each into a slot the others leave unused) and selects pick the next node.
      int node = jet;
      Mass m = mass(jet_mass);
      int depth = 0;  // pending nodes
      for (;;) {
        // n_leaves <= n_splittings + 2 at the end: capping the splittings caps the leaves at Leaves.
        if (n_splittings == next_check) {
          if (n_splittings == B::splittings) return false;
          prepare_splittings(draws, n_splittings, rate, buf);
          next_check =
              n_splittings + split_chunk < B::splittings ? n_splittings + split_chunk : B::splittings;
        }
        const int j = n_splittings++;
        const double m_node = value(m);
        buf.parent[j] = node;
        buf.parent_m[j] = m_node;
        const Mass m_left = mass(buf.a[j]) * m;
        const Mass m_right = mass(buf.b[j]) * m;
        // m <= 2.5 is m^2 <= t_cut exactly (2.5 is sqrt(6.25), and no other double squares to 6.25).
        const int left_leaf = value(m_left) <= shower_cutoff_mass;
        const int right_leaf = value(m_right) <= shower_cutoff_mass;
        const int left = 2 + 2 * j, right = 3 + 2 * j;
        buf.leaf[n_leaves] = left;
        n_leaves += left_leaf;
        buf.leaf[n_leaves] = right;
        n_leaves += right_leaf;
        // Pending node d at slot d + 1: the last one is at slot depth (slot 0, read when none is pending, is
        // a placeholder never used).
        buf.pending_node[depth + 1] = right;
        buf.pending_m[depth + 1] = value(m_right);
        const int popped = buf.pending_node[depth];
        const Mass popped_m = mass(buf.pending_m[depth]);
        const int both_leaves = left_leaf & right_leaf;
        if (both_leaves & static_cast<int>(depth == 0)) break;
        const int left_mask = left_leaf - 1;    // all ones: the left child splits
        const int right_mask = right_leaf - 1;  // all ones: the right child splits
        node = (left & left_mask) | (((right & right_mask) | (popped & ~right_mask)) & ~left_mask);
        m = select_mass(m_left, select_mass(m_right, popped_m));
        depth += (left_mask & right_mask & 1) - both_leaves;
      }
      jet_begin[jet + 1] = n_leaves;
      z.leaves[jet] = n_leaves - jet_begin[jet];
    }

    z.n_draws = 2.0 * n_splittings;
    return true;
  }

  // Splitting j's children in the parent's rest frame, boosted by its velocity: E = (E_P e* + P.k) / m and
  // k_lab = k + P ((P.k) / (m (E_P + m)) + e* / m), with k = +-p* n; every 1/m cancels in units of m. As
  // vectors (E, p): left = (P e*_L + shift) + P along, right = (P e*_R - shift) - P along, with shift =
  // (P.q, m q), q = p* n / m and along = (0, g, g, g), g = (P.q) / (E_P + m): the division's result enters
  // last, so the chain from a parent to its children is short. A parent precedes its children in walk order.
  template <class B>
  KOKKOS_FORCEINLINE_FUNCTION static void boost(B& buf, int j) {
    const int parent = buf.parent[j];
    const double m = buf.parent_m[j];
    const double* parent_p4 = buf.p4[parent];
    const double e = parent_p4[0], px = parent_p4[1], py = parent_p4[2], pz = parent_p4[3];
    const double qx = buf.qx[j], qy = buf.qy[j], qz = buf.qz[j];
    const double pn = px * qx + py * qy + pz * qz;  // (P.k) / m for the left child
    const double g = pn * (1.0 / (e + m));
    const double e_left = buf.e_left[j], e_right = buf.e_right[j];
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
    // The four components as one 256-bit vector (GCC's vector extension).
    typedef double V4 __attribute__((vector_size(32)));
    const V4 parent_v = {e, px, py, pz};
    const V4 shift = {pn, m * qx, m * qy, m * qz};
    const V4 along = {0.0, g, g, g};
    const V4 left = (parent_v * V4{e_left, e_left, e_left, e_left} + shift) + parent_v * along;
    const V4 right = (parent_v * V4{e_right, e_right, e_right, e_right} - shift) - parent_v * along;
    std::memcpy(buf.p4[2 + 2 * j], &left, sizeof left);
    std::memcpy(buf.p4[3 + 2 * j], &right, sizeof right);
#else
    const double parent_v[4] = {e, px, py, pz};  // loaded before the children's stores (no aliasing)
    const double shift[4] = {pn, m * qx, m * qy, m * qz};
    const double along[4] = {0.0, g, g, g};
    double* left = buf.p4[2 + 2 * j];
    double* right = buf.p4[3 + 2 * j];
    for (int c = 0; c < 4; ++c) {
      left[c] = (parent_v[c] * e_left + shift[c]) + parent_v[c] * along[c];
      right[c] = (parent_v[c] * e_right - shift[c]) - parent_v[c] * along[c];
    }
#endif
  }

  // The kinematics of an event's splittings, and its R = the sum of their r in walk order. The two jets'
  // trees are independent: their boosts run interleaved, two chains of dependent boosts instead of one (jet
  // j's leaves [jet_begin[j], jet_begin[j + 1]) come from one splitting fewer).
  template <class B>
  KOKKOS_INLINE_FUNCTION static void boost_all(B& buf, const int* jet_begin, ParticleChainLatent& z) {
    const int n_first = jet_begin[1] - 1;
    const int n_second = jet_begin[2] - jet_begin[1] - 1;
    const int n_both = n_first < n_second ? n_first : n_second;
    for (int t = 0; t < n_both; ++t) {
      boost(buf, t);
      boost(buf, n_first + t);
    }
    for (int j = n_both; j < n_first; ++j) boost(buf, j);
    for (int j = n_first + n_both; j < n_first + n_second; ++j) boost(buf, j);
    double r_sum = 0.0;
    for (int j = 0; j < n_first + n_second; ++j) r_sum += buf.r[j];
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
      pool.e[base + k] = static_cast<float>(buf.p4[node][0]);
      pool.px[base + k] = static_cast<float>(buf.p4[node][1]);
      pool.py[base + k] = static_cast<float>(buf.p4[node][2]);
      pool.pz[base + k] = static_cast<float>(buf.p4[node][3]);
    }
    // The event's detector blocks: normals 3k .. 3k + 2 of its leaf k lie at 3 (base + k) in the pool.
    const int first_block = 3 * base / 4;
    for (int b = 0; b < 3 * n_padded / 4; ++b) {
      pool.block_row[first_block + b] = row;
      pool.block_number[first_block + b] = detector_block + static_cast<std::uint32_t>(b);
    }
    pool.n_leaves = base + n_padded;
  }

  // A jet's (E, p) as sums of its leaves' E (1, l) (a product of two floats is exact in double), in the
  // leaves' order, even and odd positions in two chains (h = 0, 1); and its leading constituent's energy and
  // its number of constituents (leaves not lost).
  KOKKOS_FORCEINLINE_FUNCTION static void jet_sums(const float* le, const float* lx, const float* ly,
                                                   const float* lz, int begin, int end, double* e, double* px,
                                                   double* py, double* pz, float& lead, int& n) {
    lead = 0.0f;
    n = 0;
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
    // The four components as one 256-bit vector (GCC's vector extension): a quarter of the scalar code.
    typedef double V4 __attribute__((vector_size(32)));
    V4 sum[2] = {{0.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0}};
    for (int i = begin; i < end; i += 2) {
      for (int h = 0; h < 2 && i + h < end; ++h) {  // an odd jet's last leaf in chain 0
        const float w = le[i + h];
        lead = w > lead ? w : lead;
        n += w > 0.0f;
        const double wd = w;
        const V4 weight = {wd, wd, wd, wd};
        const V4 direction = {1.0, static_cast<double>(lx[i + h]), static_cast<double>(ly[i + h]),
                              static_cast<double>(lz[i + h])};
        sum[h] += weight * direction;
      }
    }
    for (int h = 0; h < 2; ++h) {
      e[h] = sum[h][0];
      px[h] = sum[h][1];
      py[h] = sum[h][2];
      pz[h] = sum[h][3];
    }
#else
    for (int h = 0; h < 2; ++h) e[h] = px[h] = py[h] = pz[h] = 0.0;
    for (int i = begin; i < end; ++i) {
      const int h = (i - begin) & 1;
      const float w = le[i];
      lead = w > lead ? w : lead;
      n += w > 0.0f;
      e[h] += w;
      px[h] += static_cast<double>(w) * static_cast<double>(lx[i]);
      py[h] += static_cast<double>(w) * static_cast<double>(ly[i]);
      pz[h] += static_cast<double>(w) * static_cast<double>(lz[i]);
    }
#endif
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
    }
    const int n_blocks = (3 * n_padded / 4 + simd_width - 1) / simd_width * simd_width;
    for (int b = 3 * pool.n_leaves / 4; b < n_blocks; ++b) {
      pool.block_row[b] = pool.block_row[0];
      pool.block_number[b] = pool.block_number[0];
    }

    // The detector's normals, four per block (two Box–Muller pairs).
    NSBI_SIMD_LOOP
    for (int b = 0; b < n_blocks; ++b) {
      const UniformQuadF u = uniform_quad_f(streams[pool.block_row[b]].draws, pool.block_number[b]);
      const NormalPairF first = normal_pair_f(u.u0, u.u1);
      const NormalPairF second = normal_pair_f(u.u2, u.u3);
      pool.normal[4 * b] = first.first;
      pool.normal[4 * b + 1] = first.second;
      pool.normal[4 * b + 2] = second.first;
      pool.normal[4 * b + 3] = second.second;
    }

    // The detector, leaf by leaf; a lost leaf gets energy 0 (its normals are drawn and ignored, which keeps
    // the loop free of branches).
    NSBI_SIMD_LOOP
    for (int k = 0; k < n_padded; ++k) {
      const float e = pool.e[k];  // > 0: a leaf's energy is at least its mass
      const float lx = pool.px[k], ly = pool.py[k], lz = pool.pz[k];
      const float sigma_e =
          kernel_math::sqrtf(static_cast<float>(stochastic_term2) / e + static_cast<float>(constant_term2));
      const float smeared = e * (1.0f + sigma_e * pool.normal[3 * k]);
      const bool kept = (e >= static_cast<float>(min_energy)) & (smeared > 0.0f);
      const float rho = kernel_math::sqrtf(lx * lx + ly * ly);
      const float p = kernel_math::sqrtf(rho * rho + lz * lz);
      // Guarded divisions: both sides of a select are evaluated in SIMD lanes, so no 0/0 either.
      const float inv_p = 1.0f / (p > 0.0f ? p : 1.0f);
      const float inv_rho = 1.0f / (rho > 0.0f ? rho : 1.0f);
      const float cos_t = p > 0.0f ? lz * inv_p : 1.0f;
      const float sin_t = rho * inv_p;
      const float cos_p = rho > 0.0f ? lx * inv_rho : 1.0f;
      const float sin_p = ly * inv_rho;
      // Angle sums by rotation; the smearing angles are below 0.06 (a normal from 24-bit uniforms is below
      // 5.9), well inside the range of the sin and cos kernels (|x| <= pi/4), so no argument reduction.
      const float d_polar = static_cast<float>(angle_resolution) * pool.normal[3 * k + 1];
      const float d_azimuthal = static_cast<float>(angle_resolution) * pool.normal[3 * k + 2];
      const float dt_sin = kernel_math::detail::kernel_sinf(d_polar);
      const float dt_cos = kernel_math::detail::kernel_cosf(d_polar);
      const float dp_sin = kernel_math::detail::kernel_sinf(d_azimuthal);
      const float dp_cos = kernel_math::detail::kernel_cosf(d_azimuthal);
      const float sin_t2 = sin_t * dt_cos + cos_t * dt_sin;
      pool.le[k] = kept ? smeared : 0.0f;
      pool.lx[k] = sin_t2 * (cos_p * dp_cos - sin_p * dp_sin);
      pool.ly[k] = sin_t2 * (sin_p * dp_cos + cos_p * dp_sin);
      pool.lz[k] = cos_t * dt_cos - sin_t * dt_sin;
    }

    const float* le = pool.le;
    const float* lx = pool.lx;
    const float* ly = pool.ly;
    const float* lz = pool.lz;
    // The jets before the label swap: sums in double (a product of two floats is exact in double), over the
    // jet's leaves in their order, even and odd positions apart (two chains of additions, not one), then
    // every constituent's angle to its jet in one vectorised float loop, the jet's axis copied to its leaves
    // first (the event's padding leaves take jet 2's).
    double jet_e[2 * P::events], jet_lead[2 * P::events];
    double jet_px[2 * P::events], jet_py[2 * P::events], jet_pz[2 * P::events], jet_inv_p[2 * P::events];
    int jet_n[2 * P::events];
    float* axis_x = pool.axis_x;
    float* axis_y = pool.axis_y;
    float* axis_z = pool.axis_z;
    for (int jet = 0; jet < 2 * pool.n_events; ++jet) {
      const int event = jet / 2;
      const int begin = pool.jet_begin[event][jet % 2];
      const int end = pool.jet_begin[event][jet % 2 + 1];
      double e[2], px[2], py[2], pz[2];
      float lead;
      int n;
      jet_sums(le, lx, ly, lz, begin, end, e, px, py, pz, lead, n);
      const double sum_px = px[0] + px[1], sum_py = py[0] + py[1], sum_pz = pz[0] + pz[1];
      const double p = kernel_math::sqrt(sum_px * sum_px + sum_py * sum_py + sum_pz * sum_pz);
      const double inv_p = 1.0 / (p > 0.0 ? p : 1.0);
      jet_e[jet] = e[0] + e[1];
      jet_px[jet] = sum_px;
      jet_py[jet] = sum_py;
      jet_pz[jet] = sum_pz;
      jet_inv_p[jet] = inv_p;
      jet_lead[jet] = lead;
      jet_n[jet] = n;
      const float ux = static_cast<float>(sum_px * inv_p);
      const float uy = static_cast<float>(sum_py * inv_p);
      const float uz = static_cast<float>(sum_pz * inv_p);
      const int fill_end =
          jet % 2 == 0 ? end : (event + 1 < pool.n_events ? pool.jet_begin[event + 1][0] : n_padded);
      for (int i = begin; i < fill_end; ++i) {
        axis_x[i] = ux;
        axis_y[i] = uy;
        axis_z[i] = uz;
      }
    }
    NSBI_SIMD_LOOP
    for (int i = 0; i < n_padded; ++i) {
      const float cos_angle = lx[i] * axis_x[i] + ly[i] * axis_y[i] + lz[i] * axis_z[i];
      pool.angle[i] = kernel_math::acosf(cos_angle > 1.0f ? 1.0f : (cos_angle < -1.0f ? -1.0f : cos_angle));
    }
    for (int event = 0; event < pool.n_events; ++event) {
      const int row = pool.event_row[event];
      double* x_row = x + row * n_observables_shower;
      const bool swap = pool.swap[event];
      const int* jet_begin = pool.jet_begin[event];
      for (int j = 0; j < 2; ++j) {
        const int jet = swap ? 1 - j : j;  // j: the label after the swap
        double width_sums[2] = {0.0, 0.0};
        for (int i = jet_begin[jet]; i < jet_begin[jet + 1]; ++i)
          width_sums[(i - jet_begin[jet]) & 1] +=
              static_cast<double>(le[i]) * static_cast<double>(pool.angle[i]);
        const double width = width_sums[0] + width_sums[1];
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
