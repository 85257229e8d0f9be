// Tests of the counter-based RNG: Philox known answers, the stream layout contract, determinism and
// independence of streams, and every sampler's moments and goodness of fit against its exact distribution.
// Seeds are fixed. Moments must lie within 5 standard errors (derived from the distribution's own moments;
// a correct sampler fails one such check with probability ~6e-7); goodness-of-fit tests need p > 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <type_traits>
#include <vector>

#include "nsbi/core/rng.hpp"
#include "statistics.hpp"

namespace {

namespace rng = nsbi::rng;
using nsbi::test::bessel_i0;
using nsbi::test::bessel_i1;
using nsbi::test::correlation;
using nsbi::test::ks_statistic_pvalue;
using nsbi::test::mean_standard_error;
using nsbi::test::sample_moments;
using nsbi::test::variance_standard_error;

constexpr double pi = 3.141592653589793;
constexpr double min_pvalue = 1e-4;

// Kernels capture streams by value, and the design keeps them small.
static_assert(std::is_trivially_copyable<rng::Stream>::value, "Stream must be copyable into kernels");
static_assert(sizeof(rng::Stream) <= 64,
              "Stream should stay small: key, counter, 4-word buffer, normal spare");
// Purpose values are part of every stored stream: renumbering one would change existing datasets.
static_assert(static_cast<std::uint32_t>(rng::Purpose::proposal) == 1 &&
                  static_cast<std::uint32_t>(rng::Purpose::simulate) == 2 &&
                  static_cast<std::uint32_t>(rng::Purpose::toy) == 3 &&
                  static_cast<std::uint32_t>(rng::Purpose::shuffle) == 4 &&
                  static_cast<std::uint32_t>(rng::Purpose::initialise) == 5 &&
                  static_cast<std::uint32_t>(rng::Purpose::bootstrap) == 6 &&
                  static_cast<std::uint32_t>(rng::Purpose::split) == 7,
              "Purpose values must never be renumbered");

// n draws, eight per stream of consecutive sample indices, the way a simulator uses the RNG: a few draws
// from each of many streams. This exercises independence both within and across streams.
template <class Draw>
auto draw_samples(std::size_t n, std::uint64_t seed, Draw draw) {
  std::vector<decltype(draw(std::declval<rng::Stream&>()))> out;
  out.reserve(n);
  for (std::uint64_t index = 0; out.size() < n; ++index) {
    rng::Stream stream(seed, rng::Purpose::simulate, index);
    for (int j = 0; j < 8 && out.size() < n; ++j) out.push_back(draw(stream));
  }
  return out;
}

// Sample mean and variance against the exact ones; mu4 is the exact fourth central moment.
template <class T>
void expect_moments(const std::vector<T>& samples, double mean, double variance, double mu4) {
  const auto moments = sample_moments(samples);
  EXPECT_NEAR(moments.mean, mean, 5.0 * mean_standard_error(variance, samples.size()));
  EXPECT_NEAR(moments.variance, variance, 5.0 * variance_standard_error(variance, mu4, samples.size()));
}

// ---------------------------------------------------------------------------------------------------------
// Philox and the stream layout

TEST(Philox, MatchesRandom123KnownAnswers) {
  using Ctr = Kokkos::Array<std::uint32_t, 4>;
  using Key = Kokkos::Array<std::uint32_t, 2>;
  struct Case {
    Ctr ctr;
    Key key;
    Ctr expected;
  };
  const Case cases[] = {
      {{{0u, 0u, 0u, 0u}}, {{0u, 0u}}, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       {{0xffffffffu, 0xffffffffu}},
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       {{0xa4093822u, 0x299f31d0u}},
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Case& c : cases) {
    const Ctr out = rng::philox4x32_10(c.ctr, c.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], c.expected[i]) << "word " << i;
  }
}

TEST(Stream, WordsAreThePhiloxBlocksOfTheDocumentedCounter) {
  // key = seed (low word first); counter = (index low, index high, purpose, block).
  const std::uint64_t seed = 0x0123456789abcdefull;
  const std::uint64_t index = 0xfedcba9876543210ull;
  rng::Stream stream(seed, rng::Purpose::toy, index);
  const Kokkos::Array<std::uint32_t, 2> key = {{0x89abcdefu, 0x01234567u}};
  for (std::uint32_t block = 0; block < 3; ++block) {
    const auto expected = rng::philox4x32_10({{0x76543210u, 0xfedcba98u, 3u, block}}, key);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(stream.next_u32(), expected[i]) << "block " << block << " word " << i;
  }
  // next_u64 takes the next two words, the first in the low half.
  const auto block3 = rng::philox4x32_10({{0x76543210u, 0xfedcba98u, 3u, 3u}}, key);
  EXPECT_EQ(stream.next_u64(), block3[0] | (static_cast<std::uint64_t>(block3[1]) << 32));
}

TEST(StreamBlocks, BlockKIsTheStreamsWordsFrom4K) {
  const rng::StreamBlocks blocks(0x0123456789abcdefull, rng::Purpose::toy, 0xfedcba9876543210ull);
  rng::Stream words(0x0123456789abcdefull, rng::Purpose::toy, 0xfedcba9876543210ull);
  rng::Stream uniforms = words;
  for (std::uint32_t block = 0; block < 5; ++block) {
    const auto w = blocks.words(block);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(w[i], words.next_u32()) << "block " << block << " word " << i;
    // The block's two uniforms are what two uniform() calls return from the start of the block.
    const rng::UniformPair pair = blocks.uniforms(block);
    EXPECT_EQ(pair.first, uniforms.uniform()) << "block " << block;
    EXPECT_EQ(pair.second, uniforms.uniform()) << "block " << block;
  }
}

TEST(Stream, SameArgumentsGiveTheSameSequenceAndCopiesContinueIt) {
  rng::Stream a(42, rng::Purpose::simulate, 7);
  rng::Stream b(42, rng::Purpose::simulate, 7);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next_u32(), b.next_u32()) << "draw " << i;
  // A copy taken mid-block, with a normal spare pending, continues exactly like the original.
  a.next_u32();
  rng::normal(a);
  rng::Stream copy = a;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(rng::normal(copy), rng::normal(a));
    ASSERT_EQ(copy.uniform(), a.uniform());
  }
}

TEST(Stream, EveryArgumentSeparatesStreams) {
  const auto first_words = [](std::uint64_t seed, rng::Purpose purpose, std::uint64_t index) {
    rng::Stream stream(seed, purpose, index);
    std::vector<std::uint32_t> words(8);
    for (auto& w : words) w = stream.next_u32();
    return words;
  };
  const auto reference = first_words(42, rng::Purpose::simulate, 5);
  // Includes changes in only the high 32 bits of the seed and of the index.
  const std::vector<std::vector<std::uint32_t>> others = {
      first_words(43, rng::Purpose::simulate, 5),
      first_words(42 + (1ull << 32), rng::Purpose::simulate, 5),
      first_words(42, rng::Purpose::toy, 5),
      first_words(42, rng::Purpose::simulate, 6),
      first_words(42, rng::Purpose::simulate, 5 + (1ull << 32)),
  };
  for (std::size_t k = 0; k < others.size(); ++k) {
    // Unrelated 32-bit words coincide with probability 2^-32 each.
    for (int i = 0; i < 8; ++i) EXPECT_NE(others[k][i], reference[i]) << "variant " << k << " word " << i;
  }
}

TEST(Stream, NeighbouringStreamsAndDrawsAreUncorrelated) {
  // Under independence the sample correlation of n pairs has standard error 1/sqrt(n).
  const std::size_t n = 100000;
  const double tolerance = 5.0 / std::sqrt(static_cast<double>(n));
  std::vector<double> base(n), next_index(n), next_seed(n), next_purpose(n), second_draw(n);
  for (std::size_t i = 0; i < n; ++i) {
    rng::Stream stream(1000, rng::Purpose::simulate, i);
    base[i] = stream.uniform();
    second_draw[i] = stream.uniform();
    next_index[i] = rng::Stream(1000, rng::Purpose::simulate, i + 1).uniform();
    next_seed[i] = rng::Stream(1001, rng::Purpose::simulate, i).uniform();
    next_purpose[i] = rng::Stream(1000, rng::Purpose::toy, i).uniform();
  }
  EXPECT_LT(std::fabs(correlation(base, next_index)), tolerance);
  EXPECT_LT(std::fabs(correlation(base, next_seed)), tolerance);
  EXPECT_LT(std::fabs(correlation(base, next_purpose)), tolerance);
  EXPECT_LT(std::fabs(correlation(base, second_draw)), tolerance);
}

// ---------------------------------------------------------------------------------------------------------
// Uniform

TEST(Uniform, BitMappingStaysInsideTheOpenInterval) {
  EXPECT_EQ(rng::uniform_from_bits(0), 0x1p-54);
  EXPECT_EQ(rng::uniform_from_bits((1ull << 11) - 1), 0x1p-54);  // the 11 discarded bits do not matter
  EXPECT_EQ(rng::uniform_from_bits(1ull << 11), 0x1p-53);        // resolution 2^-53
  EXPECT_EQ(rng::uniform_from_bits(~0ull), 1.0 - 0x1p-53);
  EXPECT_LT(rng::uniform_from_bits(~0ull), 1.0);
  EXPECT_EQ(rng::uniform_from_bits(1ull << 63), 0.5);
}

TEST(Uniform, OpenIntervalFullResolutionAndKolmogorovSmirnov) {
  const std::size_t n = 1000000;
  const auto u = draw_samples(n, 11, [](rng::Stream& s) { return s.uniform(); });
  std::size_t odd_numerators = 0;
  for (double x : u) {
    ASSERT_GT(x, 0.0);
    ASSERT_LT(x, 1.0);
    const double numerator = std::ldexp(x, 53);
    ASSERT_EQ(numerator, std::floor(numerator)) << "not on the 2^-53 grid";
    odd_numerators += static_cast<std::uint64_t>(numerator) & 1u;
  }
  // A generator with less than 53 bits of resolution (e.g. from one 32-bit word) gives only even numerators;
  // with full resolution the fraction of odd ones is binomial(n, 1/2): standard error 0.5/sqrt(n).
  EXPECT_NEAR(static_cast<double>(odd_numerators) / n, 0.5, 5.0 * 0.5 / std::sqrt(static_cast<double>(n)));
  expect_moments(u, 0.5, 1.0 / 12.0, 1.0 / 80.0);
  const auto ks = ks_statistic_pvalue(u, [](double x) { return x; });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

TEST(Uniform, ScaledToAnInterval) {
  const double lo = -3.0, hi = 5.0;
  const auto u = draw_samples(200000, 12, [&](rng::Stream& s) { return s.uniform(lo, hi); });
  for (double x : u) {
    ASSERT_GE(x, lo);
    ASSERT_LE(x, hi);
  }
  const double width = hi - lo;
  expect_moments(u, 0.5 * (lo + hi), width * width / 12.0, std::pow(width, 4) / 80.0);
  const auto ks = ks_statistic_pvalue(u, [&](double x) { return (x - lo) / width; });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

// ---------------------------------------------------------------------------------------------------------
// Normal and exponential

TEST(Normal, StandardMomentsAndKolmogorovSmirnov) {
  const auto z = draw_samples(1000000, 21, [](rng::Stream& s) { return rng::normal(s); });
  expect_moments(z, 0.0, 1.0, 3.0);
  const auto ks = ks_statistic_pvalue(z, nsbi::test::normal_cdf);
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

TEST(Normal, BoxMullerPairsAreIndependent) {
  // The two values of a pair share one radius and one angle: check linear and quadratic dependence.
  const std::size_t n = 200000;
  std::vector<double> first(n), second(n), first_sq(n), second_sq(n);
  for (std::size_t i = 0; i < n; ++i) {
    rng::Stream stream(22, rng::Purpose::simulate, i);
    first[i] = rng::normal(stream);
    second[i] = rng::normal(stream);
    first_sq[i] = first[i] * first[i];
    second_sq[i] = second[i] * second[i];
  }
  const double tolerance = 5.0 / std::sqrt(static_cast<double>(n));
  EXPECT_LT(std::fabs(correlation(first, second)), tolerance);
  EXPECT_LT(std::fabs(correlation(first_sq, second_sq)), tolerance);
  const auto ks = ks_statistic_pvalue(second, nsbi::test::normal_cdf);  // the spare alone is N(0,1)
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

TEST(Normal, LocationAndScale) {
  const double mean = -1.5, sigma = 0.25;
  const auto x = draw_samples(200000, 23, [&](rng::Stream& s) { return rng::normal(s, mean, sigma); });
  expect_moments(x, mean, sigma * sigma, 3.0 * std::pow(sigma, 4));
  const auto ks =
      ks_statistic_pvalue(x, [&](double v) { return nsbi::test::normal_cdf((v - mean) / sigma); });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

TEST(Exponential, MomentsAndKolmogorovSmirnov) {
  const double rate = 2.5;
  const auto x = draw_samples(200000, 31, [&](rng::Stream& s) { return rng::exponential(s, rate); });
  for (double v : x) ASSERT_GT(v, 0.0);
  expect_moments(x, 1.0 / rate, 1.0 / (rate * rate), 9.0 / std::pow(rate, 4));
  const auto ks = ks_statistic_pvalue(x, [&](double v) { return -std::expm1(-rate * v); });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

TEST(Normal, StreamNormalsAreNormalPairsOfItsUniforms) {
  // Kernels draw normal_pair from fixed blocks; Stream::normal must give the same pairs (its statistics
  // are tested above).
  rng::Stream stream(24, rng::Purpose::simulate, 3);
  const rng::StreamBlocks blocks(24, rng::Purpose::simulate, 3);
  for (std::uint32_t block = 0; block < 100; ++block) {
    const rng::NormalPair pair = rng::normal_pair(blocks.uniforms(block));
    ASSERT_EQ(rng::normal(stream), pair.first) << "block " << block;
    ASSERT_EQ(rng::normal(stream), pair.second) << "block " << block;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Gamma(2) from two uniforms

TEST(Gamma2, MomentsAndKolmogorovSmirnov) {
  const double scale = 1.7;
  const auto x = draw_samples(1000000, 42, [&](rng::Stream& s) {
    const double u1 = s.uniform();
    return rng::gamma2(u1, s.uniform(), scale);
  });
  for (double v : x) ASSERT_GT(v, 0.0);
  // Gamma(2, theta): variance 2 theta^2, fourth central moment 3 k (k + 2) theta^4 = 24 theta^4.
  expect_moments(x, 2.0 * scale, 2.0 * scale * scale, 24.0 * std::pow(scale, 4));
  const auto ks = ks_statistic_pvalue(x, [&](double v) { return nsbi::test::gamma_p(2.0, v / scale); });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
  // The extremes of the uniforms stay finite and positive.
  EXPECT_NEAR(rng::gamma2(0x1p-54, 0x1p-54, 1.0), 108.0 * std::log(2.0), 1e-13);
  EXPECT_GT(rng::gamma2(1.0 - 0x1p-53, 1.0 - 0x1p-53, 1.0), 0.0);
}

// ---------------------------------------------------------------------------------------------------------
// Rejection in kernels: a fixed number of candidates, finished by the unlimited form

// Accepts the candidate from u when u.first < 0.3, with value u.second.
struct ThirtyPercent {
  bool candidate(const rng::UniformPair& u, double& value) const {
    value = u.second;
    return u.first < 0.3;
  }
};

TEST(FirstAccepted, BoundedFormAgreesWithTheUnlimitedOneOrRunsOut) {
  const std::size_t n = 100000;
  std::size_t ran_out = 0;
  for (std::uint64_t index = 0; index < n; ++index) {
    const rng::StreamBlocks draws(43, rng::Purpose::simulate, index);
    double unlimited = -1.0;
    ASSERT_TRUE(rng::first_accepted<rng::unlimited_candidates>(draws, 2, ThirtyPercent{}, unlimited));
    // The unlimited form takes the first accepted block from block 2 on.
    std::uint32_t block = 2;
    while (draws.uniforms(block).first >= 0.3) ++block;
    ASSERT_EQ(unlimited, draws.uniforms(block).second);
    double bounded = -1.0;
    if (rng::first_accepted<3>(draws, 2, ThirtyPercent{}, bounded)) {
      ASSERT_EQ(bounded, unlimited);
    } else {
      ASSERT_EQ(bounded, -1.0) << "value changed although no candidate was accepted";
      ASSERT_GE(block, 5u);
      ++ran_out;
    }
  }
  // All three rejected with probability 0.7^3; binomial standard error.
  const double p = 0.343;
  EXPECT_NEAR(static_cast<double>(ran_out) / n, p, 5.0 * std::sqrt(p * (1 - p) / n));
}

// ---------------------------------------------------------------------------------------------------------
// Gamma: shape < 1 (boosted), = 1, and the Marsaglia–Tsang range

class GammaShape : public ::testing::TestWithParam<double> {};

TEST_P(GammaShape, MomentsAndKolmogorovSmirnov) {
  const double shape = GetParam(), scale = 1.7;
  const auto x = draw_samples(1000000, 41, [&](rng::Stream& s) { return rng::gamma(s, shape, scale); });
  for (double v : x) ASSERT_GT(v, 0.0);
  // Gamma(k, theta): variance k theta^2, fourth central moment 3 k (k + 2) theta^4.
  expect_moments(x, shape * scale, shape * scale * scale, 3.0 * shape * (shape + 2.0) * std::pow(scale, 4));
  const auto ks = ks_statistic_pvalue(x, [&](double v) { return nsbi::test::gamma_p(shape, v / scale); });
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

INSTANTIATE_TEST_SUITE_P(Rng, GammaShape, ::testing::Values(0.3, 1.0, 2.5, 10.0));

// ---------------------------------------------------------------------------------------------------------
// Poisson: inversion below 10, PTRS from 10 (both sides of the boundary)

class PoissonMean : public ::testing::TestWithParam<double> {};

TEST_P(PoissonMean, MomentsAndChiSquare) {
  const double mean = GetParam();
  const auto k = draw_samples(
      1000000, 51, [&](rng::Stream& s) { return static_cast<std::int64_t>(rng::poisson(s, mean)); });
  // Poisson(m): variance m, fourth central moment m (1 + 3 m).
  expect_moments(k, mean, mean, mean * (1.0 + 3.0 * mean));
  const auto gof =
      nsbi::test::chi2_discrete_gof(k, [&](std::int64_t j) { return nsbi::test::poisson_pmf(j, mean); });
  EXPECT_GT(gof.pvalue, min_pvalue) << "chi2 = " << gof.statistic;
}

INSTANTIATE_TEST_SUITE_P(Rng, PoissonMean, ::testing::Values(0.5, 4.0, 9.9, 10.0, 37.5, 1000.0));

TEST(Poisson, ZeroMeanGivesZero) {
  rng::Stream stream(52, rng::Purpose::simulate, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(rng::poisson(stream, 0.0), 0u);
}

// ---------------------------------------------------------------------------------------------------------
// Von Mises

struct VonMisesCase {
  double mu;
  double kappa;
};

void PrintTo(const VonMisesCase& c, std::ostream* out) { *out << "mu = " << c.mu << ", kappa = " << c.kappa; }

class VonMises : public ::testing::TestWithParam<VonMisesCase> {};

TEST_P(VonMises, MeanResultantAndKolmogorovSmirnov) {
  const double mu = GetParam().mu;  // not a structured binding: C++17 lambdas cannot capture those
  const double kappa = GetParam().kappa;
  const std::size_t n = 1000000;
  const auto x = draw_samples(n, 61, [&](rng::Stream& s) { return rng::von_mises(s, mu, kappa); });
  std::vector<double> cosines(n), sines(n);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_GE(x[i], -pi);
    ASSERT_LT(x[i], pi);
    cosines[i] = std::cos(x[i] - mu);
    sines[i] = std::sin(x[i] - mu);
  }
  // E[cos(x - mu)] = A = I1/I0, E[sin(x - mu)] = 0, E[cos 2(x - mu)] = I2/I0 = 1 - 2 A / kappa, which gives
  // the variances of the cosine and the sine.
  const double a = kappa == 0.0 ? 0.0 : bessel_i1(kappa) / bessel_i0(kappa);
  const double i2_over_i0 = kappa == 0.0 ? 0.0 : 1.0 - 2.0 * a / kappa;
  const double var_cos = 0.5 * (1.0 + i2_over_i0) - a * a;
  const double var_sin = 0.5 * (1.0 - i2_over_i0);
  EXPECT_NEAR(sample_moments(cosines).mean, a, 5.0 * mean_standard_error(var_cos, n));
  EXPECT_NEAR(sample_moments(sines).mean, 0.0, 5.0 * mean_standard_error(var_sin, n));
  // With mu = pi the mass sits at both ends of [-pi, pi): this checks the wrapping as well.
  const nsbi::test::TabulatedCdf cdf([&](double t) { return std::exp(kappa * (std::cos(t - mu) - 1.0)); },
                                     -pi, pi, 4000);
  const auto ks = ks_statistic_pvalue(x, cdf);
  EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
}

INSTANTIATE_TEST_SUITE_P(Rng, VonMises,
                         ::testing::Values(VonMisesCase{pi, 0.0}, VonMisesCase{pi, 0.5},
                                           VonMisesCase{pi, 2.5}, VonMisesCase{pi, 50.0},
                                           VonMisesCase{0.3, 0.0}, VonMisesCase{0.3, 0.5},
                                           VonMisesCase{0.3, 2.5}, VonMisesCase{0.3, 50.0}));

TEST(VonMises, LargeConcentrationIsNormalWithVarianceOneOverKappa) {
  // For large kappa, sqrt(kappa) (x - mu) is N(0,1) up to O(1/kappa) corrections, far below what 1e5 draws
  // resolve. 1e5 uses Best–Fisher, 1e7 the wrapped-normal branch; mu = pi puts the mass across the wrap.
  for (double kappa : {1e5, 1e7}) {
    SCOPED_TRACE(kappa);
    const auto x = draw_samples(100000, 62, [&](rng::Stream& s) { return rng::von_mises(s, pi, kappa); });
    std::vector<double> standardized(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      standardized[i] = rng::wrap_angle(x[i] - pi) * std::sqrt(kappa);
    expect_moments(standardized, 0.0, 1.0, 3.0);
    const auto ks = ks_statistic_pvalue(standardized, nsbi::test::normal_cdf);
    EXPECT_GT(ks.pvalue, min_pvalue) << "D = " << ks.statistic;
  }
}

TEST(WrapAngle, IntoHalfOpenIntervalPreservingTheAngle) {
  EXPECT_EQ(rng::wrap_angle(pi), -pi);
  EXPECT_EQ(rng::wrap_angle(-pi), -pi);
  EXPECT_EQ(rng::wrap_angle(2.0 * pi), 0.0);
  EXPECT_EQ(rng::wrap_angle(0.3), 0.3);  // in-range angles are returned unchanged
  EXPECT_EQ(rng::wrap_angle(1e-300), 1e-300);
  EXPECT_EQ(rng::wrap_angle(std::nextafter(pi, 0.0)), std::nextafter(pi, 0.0));
  EXPECT_EQ(rng::wrap_angle(std::nextafter(-pi, -4.0)), std::nextafter(pi, 0.0));  // exact shift by 2 pi
  rng::Stream stream(63, rng::Purpose::simulate, 0);
  for (int i = 0; i < 100000; ++i) {
    const double phi = stream.uniform(-1e4, 1e4);
    const double wrapped = rng::wrap_angle(phi);
    ASSERT_GE(wrapped, -pi);
    ASSERT_LT(wrapped, pi);
    // Reduction by the double 2 pi differs from the true one by < 1e4 / (2 pi) * 2.5e-16 ~ 4e-13.
    ASSERT_NEAR(std::cos(wrapped), std::cos(phi), 1e-12) << phi;
    ASSERT_NEAR(std::sin(wrapped), std::sin(phi), 1e-12) << phi;
  }
}

TEST(WrapAngleSum, EqualsWrapAngleOnItsDomain) {
  const double three_pi = 3.0 * pi;
  for (double phi : {-three_pi, -2.0 * pi, -pi, std::nextafter(-pi, -4.0), 0.0, std::nextafter(pi, 0.0), pi,
                     2.0 * pi, std::nextafter(three_pi, 0.0)})
    EXPECT_EQ(rng::wrap_angle_sum(phi), rng::wrap_angle(phi)) << phi;
  rng::Stream stream(64, rng::Purpose::simulate, 0);
  for (int i = 0; i < 100000; ++i) {
    const double phi = stream.uniform(-three_pi, three_pi);
    if (phi >= three_pi) continue;  // rounding may return the upper end
    ASSERT_EQ(rng::wrap_angle_sum(phi), rng::wrap_angle(phi)) << phi;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Sphere

TEST(SphereDirection, UnitVectorsUniformOnTheSphere) {
  const std::size_t n = 200000;
  std::vector<double> x(n), y(n), z(n), xx(n), xy(n), azimuth(n);
  for (std::size_t i = 0; i < n; ++i) {
    rng::Stream stream(71, rng::Purpose::simulate, i);
    double v[3];
    rng::sphere_direction(stream, v);
    ASSERT_NEAR(v[0] * v[0] + v[1] * v[1] + v[2] * v[2], 1.0, 1e-14);
    x[i] = v[0];
    y[i] = v[1];
    z[i] = v[2];
    xx[i] = v[0] * v[0];
    xy[i] = v[0] * v[1];
    azimuth[i] = std::atan2(v[1], v[0]);
  }
  // Each component has mean 0 and variance 1/3; E[x^2] = 1/3 with Var(x^2) = 1/5 - 1/9 = 4/45;
  // E[x y] = 0 with Var(x y) = E[x^2 y^2] = 1/15.
  for (const auto* component : {&x, &y, &z})
    EXPECT_NEAR(sample_moments(*component).mean, 0.0, 5.0 * mean_standard_error(1.0 / 3.0, n));
  EXPECT_NEAR(sample_moments(xx).mean, 1.0 / 3.0, 5.0 * mean_standard_error(4.0 / 45.0, n));
  EXPECT_NEAR(sample_moments(xy).mean, 0.0, 5.0 * mean_standard_error(1.0 / 15.0, n));
  // Archimedes: cos(polar angle) = z is uniform on (-1, 1); the azimuth is uniform on (-pi, pi].
  const auto ks_z = ks_statistic_pvalue(z, [](double t) { return 0.5 * (t + 1.0); });
  EXPECT_GT(ks_z.pvalue, min_pvalue) << "D = " << ks_z.statistic;
  const auto ks_azimuth = ks_statistic_pvalue(azimuth, [](double t) { return (t + pi) / (2.0 * pi); });
  EXPECT_GT(ks_azimuth.pvalue, min_pvalue) << "D = " << ks_azimuth.statistic;
}

}  // namespace
