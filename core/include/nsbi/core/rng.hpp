#pragma once
// The one random number generator of nsbi (DESIGN.md "Determinism"): counter-based Philox-4x32-10, so that
// the stream of a sample is a pure function of (campaign seed, purpose, global sample index) and a dataset or
// a toy does not depend on which rank, or how many ranks, produced it.
//
// Everything here is header-only and kernel-safe: no heap, no virtuals, no exceptions. Preconditions on
// distribution parameters (finite, in range) are the caller's: simulators validate them when configured.

#include <Kokkos_Array.hpp>
#include <Kokkos_Macros.hpp>
#include <Kokkos_MathematicalFunctions.hpp>
#include <cstdint>

namespace nsbi::rng {

namespace detail {

constexpr double pi = 3.141592653589793;
constexpr double two_pi = 6.283185307179586;

// Every transcendental call goes through these wrappers, so a device port changes one place only.
KOKKOS_INLINE_FUNCTION double sqrt(double x) { return Kokkos::Experimental::sqrt(x); }
KOKKOS_INLINE_FUNCTION double log(double x) { return Kokkos::Experimental::log(x); }
KOKKOS_INLINE_FUNCTION double exp(double x) { return Kokkos::Experimental::exp(x); }
KOKKOS_INLINE_FUNCTION double sin(double x) { return Kokkos::Experimental::sin(x); }
KOKKOS_INLINE_FUNCTION double cos(double x) { return Kokkos::Experimental::cos(x); }
KOKKOS_INLINE_FUNCTION double acos(double x) { return Kokkos::Experimental::acos(x); }
KOKKOS_INLINE_FUNCTION double fabs(double x) { return Kokkos::Experimental::fabs(x); }
KOKKOS_INLINE_FUNCTION double floor(double x) { return Kokkos::Experimental::floor(x); }
KOKKOS_INLINE_FUNCTION double fmod(double x, double y) { return Kokkos::Experimental::fmod(x, y); }
KOKKOS_INLINE_FUNCTION double lgamma(double x) { return Kokkos::Experimental::lgamma(x); }

// Philox-4x32 multipliers and Weyl key increments (Salmon et al. 2011).
constexpr uint32_t philox_m0 = 0xD2511F53u;
constexpr uint32_t philox_m1 = 0xCD9E8D57u;
constexpr uint32_t philox_w0 = 0x9E3779B9u;
constexpr uint32_t philox_w1 = 0xBB67AE85u;

KOKKOS_INLINE_FUNCTION Kokkos::Array<uint32_t, 4> philox_round(const Kokkos::Array<uint32_t, 4>& ctr,
                                                               const Kokkos::Array<uint32_t, 2>& key) {
  // One 32x32->64 multiply gives both the high and the low half.
  const uint64_t product0 = static_cast<uint64_t>(philox_m0) * ctr[0];
  const uint64_t product1 = static_cast<uint64_t>(philox_m1) * ctr[2];
  return {{static_cast<uint32_t>(product1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(product1),
           static_cast<uint32_t>(product0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(product0)}};
}

// The key schedule adds the Weyl constants before every round but the first.
KOKKOS_INLINE_FUNCTION Kokkos::Array<uint32_t, 4> philox_bumped_round(const Kokkos::Array<uint32_t, 4>& ctr,
                                                                      Kokkos::Array<uint32_t, 2>& key) {
  key[0] += philox_w0;
  key[1] += philox_w1;
  return philox_round(ctr, key);
}

}  // namespace detail

/// Philox-4x32-10: encrypts the 128-bit counter `ctr` under the 64-bit key `key` with 10 rounds.
KOKKOS_INLINE_FUNCTION Kokkos::Array<uint32_t, 4> philox4x32_10(Kokkos::Array<uint32_t, 4> ctr,
                                                                Kokkos::Array<uint32_t, 2> key) {
  // The rounds are written out: compilers do not reliably unroll the loop, and unrolled is ~30% faster.
  ctr = detail::philox_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  ctr = detail::philox_bumped_round(ctr, key);
  return ctr;
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
  split = 7
};

/// Maps 64 random bits to the open interval (0,1) with 53-bit resolution: the top 53 bits k give k * 2^-53,
/// and k = 0 gives 2^-54 instead of 0 (every value is exact, so 1 can never be reached by rounding).
KOKKOS_INLINE_FUNCTION double uniform_from_bits(uint64_t bits) {
  const uint64_t k = bits >> 11;
  return k == 0 ? 0x1p-54 : static_cast<double>(k) * 0x1p-53;
}

/// The random stream of one sample. Philox key = seed (low word first); counter = (index low 32 bits,
/// index high 32 bits, purpose, draw block). Each Philox call yields 4 words, consumed in order; a stream
/// holds 2^32 blocks (2^34 words) before the block counter wraps. Copies continue identically.
class Stream {
 public:
  KOKKOS_INLINE_FUNCTION Stream(uint64_t seed, Purpose purpose, uint64_t index)
      : key_{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}},
        counter_{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                  static_cast<uint32_t>(purpose), 0u}} {}

  KOKKOS_INLINE_FUNCTION uint32_t next_u32() {
    if (position_ == 4) {
      buffer_ = philox4x32_10(counter_, key_);
      ++counter_[3];
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

  /// Standard normal by Box–Muller. Each pair costs one log, one sqrt and one sin/cos of the same angle;
  /// the second value of the pair is kept here and returned by the next call. normal(stream) is the same.
  KOKKOS_INLINE_FUNCTION double normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    const double radius = detail::sqrt(-2.0 * detail::log(uniform()));
    const double angle = detail::two_pi * uniform();
    spare_normal_ = radius * detail::sin(angle);
    has_spare_normal_ = true;
    return radius * detail::cos(angle);
  }

 private:
  Kokkos::Array<uint32_t, 2> key_;
  Kokkos::Array<uint32_t, 4> counter_;
  Kokkos::Array<uint32_t, 4> buffer_{};
  uint32_t position_ = 4;  // 4: buffer exhausted, the next word needs a new Philox block
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

/// Wraps an angle into [-pi, pi), pi being the double nearest to it; angles already there are returned
/// unchanged. phi must be finite. Every step is exact: fmod is, and the shift by 2 pi is by Sterbenz' lemma.
KOKKOS_INLINE_FUNCTION double wrap_angle(double phi) {
  if (phi >= -detail::pi && phi < detail::pi) return phi;
  const double reduced = detail::fmod(phi, detail::two_pi);  // in (-2 pi, 2 pi)
  if (reduced >= detail::pi) return reduced - detail::two_pi;
  if (reduced < -detail::pi) return reduced + detail::two_pi;
  return reduced;
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

namespace detail {

/// Poisson by sequential inversion of the CDF: one uniform per draw, about mean + 1 steps. The pmf > 0 guard
/// ends the search if the accumulated CDF falls short of u by rounding.
KOKKOS_INLINE_FUNCTION uint64_t poisson_inversion(Stream& stream, double mean) {
  const double u = stream.uniform();
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

/// PTRS, transformed rejection with squeeze (Hörmann 1993, "The transformed rejection method for generating
/// Poisson random variables"), valid for mean >= 10; about 1.1-1.3 uniform pairs per draw.
KOKKOS_INLINE_FUNCTION uint64_t poisson_ptrs(Stream& stream, double mean) {
  const double log_mean = log(mean);
  const double b = 0.931 + 2.53 * sqrt(mean);
  const double a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = stream.uniform() - 0.5;
    const double v = stream.uniform();
    const double us = 0.5 - fabs(u);
    const double k = floor((2.0 * a / us + b) * u + mean + 0.43);
    // In the squeeze region (us >= 0.07) k >= 0 holds for every mean >= 10.
    if (us >= 0.07 && v <= v_r) return static_cast<uint64_t>(k);
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (log(v * inv_alpha / (a / (us * us) + b)) <= -mean + k * log_mean - lgamma(k + 1.0))
      return static_cast<uint64_t>(k);
  }
}

}  // namespace detail

/// Poisson with any finite mean >= 0: exact inversion below 10, PTRS from 10 up.
KOKKOS_INLINE_FUNCTION uint64_t poisson(Stream& stream, double mean) {
  return mean < 10.0 ? detail::poisson_inversion(stream, mean) : detail::poisson_ptrs(stream, mean);
}

/// Von Mises on the circle, density exp(kappa cos(x - mu)) / (2 pi I0(kappa)), wrapped to [-pi, pi).
/// Best & Fisher (1979) rejection. kappa < 1e-8 draws uniformly (the density differs from uniform by a
/// factor within exp(+-1e-8)); kappa > 1e6 draws the wrapped normal N(mu, 1/kappa), whose distribution
/// differs by O(1/kappa) and where Best–Fisher's acos(f) near 1 would lose precision.
KOKKOS_INLINE_FUNCTION double von_mises(Stream& stream, double mu, double kappa) {
  if (kappa < 1e-8) return wrap_angle(mu + detail::pi * (2.0 * stream.uniform() - 1.0));
  if (kappa > 1e6) return wrap_angle(mu + stream.normal() / detail::sqrt(kappa));
  const double tau = 1.0 + detail::sqrt(1.0 + 4.0 * kappa * kappa);
  // Best–Fisher's rho = (tau - sqrt(2 tau)) / (2 kappa), rewritten without cancellation at small kappa.
  const double rho = 2.0 * kappa / (tau + detail::sqrt(2.0 * tau));
  const double r = (1.0 + rho * rho) / (2.0 * rho);
  double f = 0.0;
  for (;;) {
    const double z = detail::cos(detail::pi * stream.uniform());
    f = (1.0 + r * z) / (r + z);
    // |f| <= 1 exactly, but rounding may push it past 1, where acos would give NaN.
    f = f > 1.0 ? 1.0 : (f < -1.0 ? -1.0 : f);
    const double c = kappa * (r - f);
    const double u = stream.uniform();
    if (c * (2.0 - c) > u || detail::log(c / u) + 1.0 - c >= 0.0) break;
  }
  const double theta = detail::acos(f);
  return wrap_angle(stream.uniform() < 0.5 ? mu - theta : mu + theta);
}

/// A direction uniform on the unit sphere S^2: cos(polar angle) uniform on (-1,1) (Archimedes), azimuth
/// uniform on (0, 2 pi).
KOKKOS_INLINE_FUNCTION void sphere_direction(Stream& stream, double out[3]) {
  const double cos_theta = 2.0 * stream.uniform() - 1.0;
  const double sin_theta = detail::sqrt((1.0 - cos_theta) * (1.0 + cos_theta));
  const double phi = detail::two_pi * stream.uniform();
  out[0] = sin_theta * detail::cos(phi);
  out[1] = sin_theta * detail::sin(phi);
  out[2] = cos_theta;
}

}  // namespace nsbi::rng
