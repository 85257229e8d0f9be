#pragma once
// The one random number generator of nsbi: counter-based Philox-4x32-10 (docs/development.md, "Rules"), so
// that the stream of a sample is a pure function of (campaign seed, purpose, global sample index) and a
// dataset or a toy does not depend on which rank, or how many ranks, produced it.
//
// Everything here is header-only and kernel-safe: no heap, no virtuals, no exceptions. Preconditions on
// distribution parameters (finite, in range) are the caller's: simulators validate them when configured.

#include <Kokkos_Array.hpp>
#include <Kokkos_Macros.hpp>
#include <Kokkos_MathematicalFunctions.hpp>
#include <cstdint>
#include <utility>

#include "nsbi/core/kernel_math.hpp"

namespace nsbi::rng {

namespace detail {

constexpr double pi = 3.141592653589793;
constexpr double two_pi = 6.283185307179586;

// Every transcendental call goes through these wrappers, so a device port changes one place only. log, exp,
// lgamma, sin/cos and acos are nsbi's own (kernel_math.hpp: the same bits in SIMD lanes, scalar code and on
// a GPU); sqrt is correctly rounded everywhere, and fabs, floor and fmod are exact.
KOKKOS_FORCEINLINE_FUNCTION double sqrt(double x) { return kernel_math::sqrt(x); }
KOKKOS_FORCEINLINE_FUNCTION double log(double x) { return kernel_math::log(x); }
KOKKOS_FORCEINLINE_FUNCTION double exp(double x) { return kernel_math::exp(x); }
KOKKOS_FORCEINLINE_FUNCTION double acos(double x) { return kernel_math::acos(x); }
KOKKOS_INLINE_FUNCTION double fabs(double x) { return Kokkos::Experimental::fabs(x); }
KOKKOS_INLINE_FUNCTION double floor(double x) { return Kokkos::Experimental::floor(x); }
KOKKOS_INLINE_FUNCTION double fmod(double x, double y) { return Kokkos::Experimental::fmod(x, y); }
KOKKOS_FORCEINLINE_FUNCTION double lgamma(double x) { return kernel_math::lgamma(x); }

// Philox-4x32 multipliers and Weyl key increments (Salmon et al. 2011).
constexpr uint32_t philox_m0 = 0xD2511F53u;
constexpr uint32_t philox_m1 = 0xCD9E8D57u;
constexpr uint32_t philox_w0 = 0x9E3779B9u;
constexpr uint32_t philox_w1 = 0xBB67AE85u;

// A block as four scalars: the rounds then need nothing inlined (Kokkos::Array's operator[] is only
// `inline`, which GCC stops honouring in large kernels, and a call there stops vectorisation). Each 32-bit
// word is held in 64 bits, so that SIMD code keeps one word per 64-bit lane next to the 64-bit products
// instead of packing and unpacking 32-bit lanes every round (3x faster with AVX-512).
struct PhiloxWords {
  uint64_t w0, w1, w2, w3;  // each < 2^32
};

KOKKOS_FORCEINLINE_FUNCTION PhiloxWords philox_round(const PhiloxWords& ctr, uint64_t key0, uint64_t key1) {
  // One 32x32->64 multiply gives both the high and the low half.
  const uint64_t product0 = philox_m0 * ctr.w0;
  const uint64_t product1 = philox_m1 * ctr.w2;
  constexpr uint64_t low_half = 0xffffffffu;
  return {(product1 >> 32) ^ ctr.w1 ^ key0, product1 & low_half, (product0 >> 32) ^ ctr.w3 ^ key1,
          product0 & low_half};
}

// The key schedule adds the Weyl constants before every round but the first.
KOKKOS_FORCEINLINE_FUNCTION PhiloxWords philox_bumped_round(const PhiloxWords& ctr, uint32_t& key0,
                                                            uint32_t& key1) {
  key0 += philox_w0;  // modulo 2^32
  key1 += philox_w1;
  return philox_round(ctr, key0, key1);
}

KOKKOS_FORCEINLINE_FUNCTION PhiloxWords philox4x32_10(PhiloxWords ctr, uint32_t key0, uint32_t key1) {
  // The rounds are written out: compilers do not reliably unroll the loop, and unrolled is ~30% faster.
  ctr = philox_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  ctr = philox_bumped_round(ctr, key0, key1);
  return ctr;
}

}  // namespace detail

/// Philox-4x32-10: encrypts the 128-bit counter `ctr` under the 64-bit key `key` with 10 rounds.
KOKKOS_INLINE_FUNCTION Kokkos::Array<uint32_t, 4> philox4x32_10(const Kokkos::Array<uint32_t, 4>& ctr,
                                                                const Kokkos::Array<uint32_t, 2>& key) {
  const detail::PhiloxWords out = detail::philox4x32_10({ctr[0], ctr[1], ctr[2], ctr[3]}, key[0], key[1]);
  return {{static_cast<uint32_t>(out.w0), static_cast<uint32_t>(out.w1), static_cast<uint32_t>(out.w2),
           static_cast<uint32_t>(out.w3)}};
}

/// Purposes separate independent uses of the same seed. Later issues append values, never renumber:
/// renumbering would silently change every stored dataset's random streams.
enum class Purpose : uint32_t {
  proposal = 1,
  simulate = 2,
  toy = 3,
  shuffle = 4,
  initialise = 5,
  bootstrap = 6,
  split = 7,
  posterior = 8,
  mcmc = 9
};

/// Maps 64 random bits to the open interval (0,1) with 53-bit resolution: the top 53 bits k give k * 2^-53,
/// and k = 0 gives 2^-54 instead of 0 (every value is exact, so 1 can never be reached by rounding).
KOKKOS_FORCEINLINE_FUNCTION double uniform_from_bits(uint64_t bits) {
  // (2k or 1) * 2^-54 with integer steps only: a floating-point condition would stop GCC vectorising.
  const uint64_t k = bits >> 11;
  const uint64_t twice_k_or_one = (k << 1) | static_cast<uint64_t>(k == 0);  // < 2^54, exact as a double
  return static_cast<double>(static_cast<int64_t>(twice_k_or_one)) * 0x1p-54;
}

/// Two uniforms on (0,1): what two consecutive Stream::uniform() calls return when they start a block.
struct UniformPair {
  double first;
  double second;
};

/// Random access to the Philox blocks of one stream: Philox key = seed (low word first), counter = (index
/// low 32 bits, index high 32 bits, purpose, block). Block k holds words 4k .. 4k + 3 of Stream(seed,
/// purpose, index). Vectorised kernels compute the blocks they need by number, with no buffer and no branch,
/// and document which block each draw of a row comes from.
class StreamBlocks {
 public:
  KOKKOS_FORCEINLINE_FUNCTION StreamBlocks(uint64_t seed, Purpose purpose, uint64_t index)
      : key0_(static_cast<uint32_t>(seed)),
        key1_(static_cast<uint32_t>(seed >> 32)),
        index_low_(static_cast<uint32_t>(index)),
        index_high_(static_cast<uint32_t>(index >> 32)),
        purpose_(static_cast<uint32_t>(purpose)) {}

  KOKKOS_INLINE_FUNCTION Kokkos::Array<uint32_t, 4> words(uint32_t block) const {
    const detail::PhiloxWords w = block_words(block);
    return {{static_cast<uint32_t>(w.w0), static_cast<uint32_t>(w.w1), static_cast<uint32_t>(w.w2),
             static_cast<uint32_t>(w.w3)}};
  }

  /// The block's two uniforms: words 0-1 (the first word in the low half) and words 2-3.
  KOKKOS_FORCEINLINE_FUNCTION UniformPair uniforms(uint32_t block) const {
    const detail::PhiloxWords w = block_words(block);
    return {uniform_from_bits(w.w0 | (w.w1 << 32)), uniform_from_bits(w.w2 | (w.w3 << 32))};
  }

 private:
  KOKKOS_FORCEINLINE_FUNCTION detail::PhiloxWords block_words(uint32_t block) const {
    return detail::philox4x32_10({index_low_, index_high_, purpose_, block}, key0_, key1_);
  }

  uint32_t key0_;
  uint32_t key1_;
  uint32_t index_low_;
  uint32_t index_high_;
  uint32_t purpose_;
};

/// Two independent standard normals by Box–Muller: sqrt(-2 log u_radius) (cos, sin)(2 pi u_angle).
struct NormalPair {
  double first;
  double second;
};

KOKKOS_FORCEINLINE_FUNCTION NormalPair normal_pair(double u_radius, double u_angle) {
  const double radius = detail::sqrt(-2.0 * detail::log(u_radius));
  const kernel_math::SinCos angle = kernel_math::sin_cos_turns(u_angle);
  return {radius * angle.cos, radius * angle.sin};
}

KOKKOS_FORCEINLINE_FUNCTION NormalPair normal_pair(const UniformPair& u) {
  return normal_pair(u.first, u.second);
}

/// The random stream of one sample, read word by word: the words of StreamBlocks(seed, purpose, index) in
/// order; a stream holds 2^32 blocks (2^34 words) before the block counter wraps. Copies continue
/// identically.
class Stream {
 public:
  KOKKOS_INLINE_FUNCTION Stream(uint64_t seed, Purpose purpose, uint64_t index)
      : blocks_(seed, purpose, index) {}

  KOKKOS_INLINE_FUNCTION uint32_t next_u32() {
    if (position_ == 4) {
      buffer_ = blocks_.words(next_block_++);
      position_ = 0;
    }
    return buffer_[position_++];
  }

  /// Two consecutive words, the first one in the low half.
  KOKKOS_INLINE_FUNCTION uint64_t next_u64() {
    const uint64_t low = next_u32();
    return low | (static_cast<uint64_t>(next_u32()) << 32);
  }

  /// In the open interval (0,1), 53-bit resolution (see uniform_from_bits); consumes two words.
  KOKKOS_INLINE_FUNCTION double uniform() { return uniform_from_bits(next_u64()); }

  /// lo + (hi - lo) * uniform(): rounding may return lo or hi exactly.
  KOKKOS_INLINE_FUNCTION double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Standard normal: normal_pair of the next two uniforms, whose second value is kept here and returned by
  /// the next call. normal(stream) is the same.
  KOKKOS_INLINE_FUNCTION double normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    const double u_radius = uniform();
    const double u_angle = uniform();
    const NormalPair pair = normal_pair(u_radius, u_angle);
    spare_normal_ = pair.second;
    has_spare_normal_ = true;
    return pair.first;
  }

 private:
  StreamBlocks blocks_;
  uint32_t next_block_ = 0;
  Kokkos::Array<uint32_t, 4> buffer_{};
  uint32_t position_ = 4;  // 4: buffer exhausted, the next word needs a new Philox block
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

/// The high 64 bits of the 128-bit product a · b, with 32-bit halves (no compiler extension needed).
KOKKOS_INLINE_FUNCTION uint64_t multiply_high(uint64_t a, uint64_t b) {
  constexpr uint64_t low = 0xffffffffu;
  const uint64_t lo_lo = (a & low) * (b & low);
  const uint64_t hi_lo = (a >> 32) * (b & low);
  const uint64_t lo_hi = (a & low) * (b >> 32);
  const uint64_t cross = (lo_lo >> 32) + (hi_lo & low) + lo_hi;  // < 2^64: cannot wrap
  return (hi_lo >> 32) + (cross >> 32) + (a >> 32) * (b >> 32);
}

/// Shuffles n elements by Fisher–Yates from `stream`: for i = n, ..., 2, j uniform in [0, i) as the high
/// half of next_u64() · i (Lemire's map without its rejection step: one word pair per swap, so a shuffle's
/// draws are fixed; the bias, below i / 2^64, is invisible), then swap(i − 1, j) unless j = i − 1.
template <class Swap>
void fisher_yates(Stream& stream, uint64_t n, Swap&& swap) {
  for (uint64_t i = n; i > 1; --i) {
    const uint64_t j = multiply_high(stream.next_u64(), i);
    if (j != i - 1) swap(i - 1, j);
  }
}

/// Wraps an angle into [-pi, pi), pi being the double nearest to it; angles already there are returned
/// unchanged. phi must be finite. Every step is exact: fmod is, and the shift by 2 pi is by Sterbenz' lemma.
KOKKOS_INLINE_FUNCTION double wrap_angle(double phi) {
  if (phi >= -detail::pi && phi < detail::pi) return phi;
  const double reduced = detail::fmod(phi, detail::two_pi);  // in (-2 pi, 2 pi)
  if (reduced >= detail::pi) return reduced - detail::two_pi;
  if (reduced < -detail::pi) return reduced + detail::two_pi;
  return reduced;
}

/// wrap_angle for phi in [-3 pi, 3 pi), such as the sum of two wrapped angles: the same result, without
/// branches or fmod (one exact shift by 2 pi), so that it vectorises.
KOKKOS_FORCEINLINE_FUNCTION double wrap_angle_sum(double phi) {
  return phi >= detail::pi ? phi - detail::two_pi : (phi < -detail::pi ? phi + detail::two_pi : phi);
}

/// Standard normal (Box–Muller, see Stream::normal).
KOKKOS_INLINE_FUNCTION double normal(Stream& stream) { return stream.normal(); }

KOKKOS_INLINE_FUNCTION double normal(Stream& stream, double mean, double sigma) {
  return mean + sigma * stream.normal();
}

/// Exponential with the given rate > 0 (mean 1/rate), by inversion.
KOKKOS_INLINE_FUNCTION double exponential(Stream& stream, double rate) {
  return -detail::log(stream.uniform()) / rate;
}

/// Gamma(shape, scale), mean shape * scale, for any shape > 0: Marsaglia & Tsang (2000) squeeze-rejection
/// for shape >= 1; for shape < 1, Gamma(shape) = Gamma(shape + 1) * U^(1/shape). For very small shapes the
/// result may underflow to 0.
KOKKOS_INLINE_FUNCTION double gamma(Stream& stream, double shape, double scale) {
  const bool boosted = shape < 1.0;
  const double d = (boosted ? shape + 1.0 : shape) - 1.0 / 3.0;
  const double c = 1.0 / detail::sqrt(9.0 * d);
  double draw = 0.0;
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = stream.normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = stream.uniform();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || detail::log(u) < 0.5 * x2 + d * (1.0 - v + detail::log(v))) {
      draw = d * v;
      break;
    }
  }
  if (boosted) draw *= detail::exp(detail::log(stream.uniform()) / shape);
  return draw * scale;
}

/// Gamma(2, scale) from two uniforms: the sum of two exponentials, -scale log(u1 u2). Exact and branch-free,
/// unlike the rejection in gamma(); u1 u2 >= 2^-108 cannot underflow.
KOKKOS_FORCEINLINE_FUNCTION double gamma2(double u1, double u2, double scale) {
  return -scale * detail::log(u1 * u2);
}

KOKKOS_FORCEINLINE_FUNCTION double gamma2(const UniformPair& u, double scale) {
  return gamma2(u.first, u.second, scale);
}

/// Rejection samplers in kernels take candidate k from block first_block + k of the row's stream, so that
/// candidate k is a pure function of k, and come in two forms with the same result. A vectorised pass
/// evaluates exactly max_candidates of them without branches (every SIMD lane does the same work) and may
/// run out; a scalar pass with unlimited_candidates stops at the first accepted one and finishes the rows
/// that ran out.
constexpr int unlimited_candidates = 0;

namespace detail {

template <class Sampler>
KOKKOS_FORCEINLINE_FUNCTION void try_candidate(const StreamBlocks& draws, uint32_t block,
                                               const Sampler& sampler, bool& found, double& value) {
  double v = 0.0;
  const bool accepted = sampler.candidate(draws.uniforms(block), v);
  // Bitwise, not short-circuit: && and || would make the candidate's comparisons conditional, and GCC does
  // not if-convert floating-point comparisons (they may trap), which stops vectorisation.
  value = accepted & !found ? v : value;
  found = found | accepted;
}

// The bounded form, unrolled by a fold expression: GCC vectorises a loop body only without inner loops.
template <class Sampler, uint32_t... k>
KOKKOS_FORCEINLINE_FUNCTION bool first_accepted_of(const StreamBlocks& draws, uint32_t first_block,
                                                   const Sampler& sampler, double& value,
                                                   std::integer_sequence<uint32_t, k...>) {
  bool found = false;
  (try_candidate(draws, first_block + k, sampler, found, value), ...);
  return found;
}

}  // namespace detail

/// Sets `value` to the first accepted candidate of `sampler`, whose `bool candidate(const UniformPair& u,
/// double& v) const` says whether the candidate made from u is accepted and sets v. Returns false (value
/// unchanged) if none of max_candidates was.
template <int max_candidates, class Sampler>
KOKKOS_FORCEINLINE_FUNCTION bool first_accepted(const StreamBlocks& draws, uint32_t first_block,
                                                const Sampler& sampler, double& value) {
  static_assert(max_candidates >= 0, "max_candidates is a count, or unlimited_candidates");
  if constexpr (max_candidates == unlimited_candidates) {
    for (uint32_t block = first_block;; ++block)
      if (sampler.candidate(draws.uniforms(block), value)) return true;
  } else {
    return detail::first_accepted_of(draws, first_block, sampler, value,
                                     std::make_integer_sequence<uint32_t, max_candidates>());
  }
}

/// A Poisson(mean) candidate for mean >= 10 from two uniforms: Hörmann's PTRS (1993, "The transformed
/// rejection method for generating Poisson random variables", transformed rejection with squeeze; about
/// 1.1-1.3 candidates per draw), the squeeze and the exact test both evaluated, so that it runs without
/// branches in SIMD lanes.
class PoissonPtrs {
 public:
  KOKKOS_INLINE_FUNCTION explicit PoissonPtrs(double mean) : mean_(mean), log_mean_(detail::log(mean)) {
    b_ = 0.931 + 2.53 * detail::sqrt(mean);
    a_ = -0.059 + 0.02483 * b_;
    inv_alpha_ = 1.1239 + 1.1328 / (b_ - 3.4);
    v_r_ = 0.9277 - 3.6224 / (b_ - 2.0);
  }

  /// The candidate from uv: floor((2a/us + b) u + mean + 0.43), clamped to [-1, 2^50] (any candidate outside
  /// is rejected) for the rounding trick. Integer selects throughout (see kernel_math::detail::select).
  KOKKOS_FORCEINLINE_FUNCTION double value(const UniformPair& uv) const {
    using kernel_math::detail::select;
    const double u = uv.first - 0.5;
    const double us = distance_to_edge(uv);
    const double unbounded = (2.0 * a_ / us + b_) * u + mean_ + 0.43;
    const double clamped = select(unbounded < -1.0, -1.0, select(unbounded > 0x1p50, 0x1p50, unbounded));
    constexpr double round_shift = 0x1.8p52;
    const double nearest = (clamped + round_shift) - round_shift;
    return nearest - select(nearest > clamped, 1.0, 0.0);
  }

  /// Whether the squeeze accepts the candidate from uv (about 86 % of the candidates at large means), without
  /// the exact test's logarithms.
  KOKKOS_FORCEINLINE_FUNCTION bool squeezed(const UniformPair& uv) const {
    return (distance_to_edge(uv) >= 0.07) & (uv.second <= v_r_);
  }

  /// Whether the candidate from uv is accepted, by the squeeze or the exact test; sets k to it.
  KOKKOS_FORCEINLINE_FUNCTION bool candidate(const UniformPair& uv, double& k) const {
    using kernel_math::detail::select;
    k = value(uv);
    const bool squeeze = squeezed(uv);
    const double v = uv.second;
    const double us = distance_to_edge(uv);
    const double kk = select(k < 0.0, 0.0, k);
    // The exact test ln(v / (alpha (a/us^2 + b))) <= -mean + k ln mean - ln k!, with ln k! from Stirling's
    // series at z = k + 9 shifted down by the product (k + 1) ... (k + 8) (absolute error below 1e-13; not
    // kernel_math::lgamma, whose double-double terms cost 7x here and stop the loop vectorising). The
    // product's logarithm joins the left side's, and one division gives both 1/z and 1/((a + b us^2)
    // product): two logarithms and two divisions per candidate.
    const double z = kk + 9.0;
    const double us2 = us * us;
    const double denominator = a_ + b_ * us2;
    const double product =
        (kk + 1.0) * (kk + 2.0) * (kk + 3.0) * (kk + 4.0) * (kk + 5.0) * (kk + 6.0) * (kk + 7.0) * (kk + 8.0);
    const double d = 1.0 / (z * denominator * product);
    const double inv_z = denominator * product * d;
    const double inv_z2 = inv_z * inv_z;
    const double series =
        inv_z *
        (1.0 / 12 + inv_z2 * (-1.0 / 360 + inv_z2 * (1.0 / 1260 + inv_z2 * (-1.0 / 1680 + inv_z2 / 1188))));
    constexpr double half_log_two_pi = 0.91893853320467274178;
    const double log_stirling = (z - 0.5) * detail::log(z) - z + half_log_two_pi + series;
    const bool exact =
        (k >= 0.0) & !((us < 0.013) & (v > us)) &
        (detail::log(v * inv_alpha_ * us2 * (z * d)) <= -mean_ + kk * log_mean_ - log_stirling);
    return squeeze | exact;
  }

 private:
  /// PTRS's us = 0.5 - |u - 0.5| of the first uniform (an integer select: see kernel_math::detail::select).
  KOKKOS_FORCEINLINE_FUNCTION static double distance_to_edge(const UniformPair& uv) {
    const double u = uv.first - 0.5;
    return 0.5 - kernel_math::detail::select(u < 0.0, -u, u);
  }

  double mean_, log_mean_, a_, b_, inv_alpha_, v_r_;
};

namespace detail {

/// Poisson(mean) by inversion of the CDF at the uniform u: about mean + 1 steps. The pmf > 0 guard ends the
/// search if the accumulated CDF falls short of u by rounding.
KOKKOS_INLINE_FUNCTION uint64_t poisson_inversion(double u, double mean) {
  double pmf = exp(-mean);
  double cdf = pmf;
  uint64_t k = 0;
  while (u > cdf && pmf > 0.0) {
    ++k;
    pmf *= mean / static_cast<double>(k);
    cdf += pmf;
  }
  return k;
}

}  // namespace detail

/// Poisson with any finite mean >= 0: inversion from one uniform below 10, PTRS candidates (two uniforms
/// each) from 10 up.
KOKKOS_INLINE_FUNCTION uint64_t poisson(Stream& stream, double mean) {
  if (mean < 10.0) return detail::poisson_inversion(stream.uniform(), mean);
  const PoissonPtrs sampler(mean);
  double k = 0.0;
  for (;;) {
    const double u = stream.uniform();
    if (sampler.candidate({u, stream.uniform()}, k)) return static_cast<uint64_t>(k);
  }
}

/// The same in kernels: inversion from the first uniform of block first_block below 10, else PTRS
/// candidate k from block first_block + k.
KOKKOS_INLINE_FUNCTION uint64_t poisson(const StreamBlocks& draws, uint32_t first_block, double mean) {
  if (mean < 10.0) return detail::poisson_inversion(draws.uniforms(first_block).first, mean);
  double k = 0.0;
  first_accepted<unlimited_candidates>(draws, first_block, PoissonPtrs(mean), k);
  return static_cast<uint64_t>(k);
}

/// Best & Fisher (1979) rejection for the von Mises distribution, density exp(kappa cos(x - mu)) /
/// (2 pi I0(kappa)), as pure steps: a candidate from two uniforms (accepted with probability 1 at small
/// kappa, 0.74 at 2.5, 0.66 at large kappa), then the angle from the accepted candidate and one more uniform
/// for the side of mu.
class VonMisesBestFisher {
 public:
  /// 1e-8 <= kappa <= 1e6 (von_mises() below handles the rest).
  KOKKOS_INLINE_FUNCTION explicit VonMisesBestFisher(double kappa) : kappa_(kappa) {
    const double tau = 1.0 + detail::sqrt(1.0 + 4.0 * kappa * kappa);
    // Best–Fisher's rho = (tau - sqrt(2 tau)) / (2 kappa), rewritten without cancellation at small kappa.
    const double rho = 2.0 * kappa / (tau + detail::sqrt(2.0 * tau));
    r_ = (1.0 + rho * rho) / (2.0 * rho);
  }

  /// Whether the candidate from u = (u_angle, u_accept) is accepted; its cos(x - mu) goes to cos_theta.
  KOKKOS_FORCEINLINE_FUNCTION bool candidate(const UniformPair& u, double& cos_theta) const {
    const double u_accept = u.second;
    const double z = kernel_math::sin_cos_turns(0.5 * u.first).cos;  // cos(pi u_angle)
    const double f = (1.0 + r_ * z) / (r_ + z);                      // r > 1 >= |z|: no division by zero
    // |f| <= 1 exactly, but rounding may push it past 1, where acos would give NaN.
    cos_theta = f > 1.0 ? 1.0 : (f < -1.0 ? -1.0 : f);
    const double c = kappa_ * (r_ - cos_theta);  // > 0
    // The squeeze, then the exact test; both evaluated (|, not ||), which keeps the code branch-free.
    const bool squeezed = c * (2.0 - c) > u_accept;
    return squeezed | (detail::log(c / u_accept) + 1.0 - c >= 0.0);
  }

  /// mu - acos(cos_theta) if u_side < 1/2, else mu + acos(cos_theta); not wrapped.
  KOKKOS_FORCEINLINE_FUNCTION static double angle(double mu, double cos_theta, double u_side) {
    const double theta = detail::acos(cos_theta);
    return u_side < 0.5 ? mu - theta : mu + theta;
  }

 private:
  double kappa_;
  double r_;
};

/// Von Mises on the circle, density exp(kappa cos(x - mu)) / (2 pi I0(kappa)), wrapped to [-pi, pi).
/// VonMisesBestFisher: candidates (two uniforms each) until one is accepted, then one uniform for the side.
/// kappa < 1e-8 draws uniformly (the density differs from uniform by a factor within exp(+-1e-8)); kappa >
/// 1e6 draws the wrapped normal N(mu, 1/kappa), whose distribution differs by O(1/kappa) and where
/// Best–Fisher's acos(f) near 1 would lose precision.
KOKKOS_INLINE_FUNCTION double von_mises(Stream& stream, double mu, double kappa) {
  if (kappa < 1e-8) return wrap_angle(mu + detail::pi * (2.0 * stream.uniform() - 1.0));
  if (kappa > 1e6) return wrap_angle(mu + stream.normal() / detail::sqrt(kappa));
  const VonMisesBestFisher sampler(kappa);
  double cos_theta = 0.0;
  for (;;) {
    const double u_angle = stream.uniform();
    if (sampler.candidate({u_angle, stream.uniform()}, cos_theta)) break;
  }
  return wrap_angle(VonMisesBestFisher::angle(mu, cos_theta, stream.uniform()));
}

/// A direction uniform on the unit sphere S^2: cos(polar angle) uniform on (-1,1) (Archimedes), azimuth
/// uniform on (0, 2 pi).
KOKKOS_INLINE_FUNCTION void sphere_direction(Stream& stream, double out[3]) {
  const double cos_theta = 2.0 * stream.uniform() - 1.0;
  const double sin_theta = detail::sqrt((1.0 - cos_theta) * (1.0 + cos_theta));
  const kernel_math::SinCos azimuth = kernel_math::sin_cos_turns(stream.uniform());
  out[0] = sin_theta * azimuth.cos;
  out[1] = sin_theta * azimuth.sin;
  out[2] = cos_theta;
}

}  // namespace nsbi::rng
