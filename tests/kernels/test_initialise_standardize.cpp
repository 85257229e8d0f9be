// Weight initialisation (bounds, biases, determinism, the documented stream mapping, moments) and input
// standardisation (statistics against direct sums, Chan's merge of two halves, the transform).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "nsbi/core/rng.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/standardize.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::FloatVector;
using nsbi::kernels::Activation;
using nsbi::kernels::MlpArchitecture;
using nsbi::test::to_host;

std::vector<float> initialised(const MlpArchitecture& arch, std::uint64_t seed) {
  FloatVector parameters("parameters", arch.n_parameters());
  nsbi::kernels::initialise_parameters(arch, seed, parameters);
  return to_host(parameters);
}

TEST(Initialise, BoundsAndZeroBiases) {
  for (Activation activation : {Activation::relu, Activation::tanh}) {
    const MlpArchitecture arch{4, {300, 200}, activation};
    const std::vector<float> p = initialised(arch, 42);
    for (std::size_t l = 0; l < arch.n_layers(); ++l) {
      const double n_in = static_cast<double>(arch.layer_inputs(l));
      const double n_out = static_cast<double>(arch.layer_outputs(l));
      const double bound =
          activation == Activation::relu ? std::sqrt(6.0 / n_in) : std::sqrt(6.0 / (n_in + n_out));
      EXPECT_DOUBLE_EQ(bound, nsbi::kernels::initialisation_bound(arch, l));
      const std::size_t n = arch.bias_offset(l) - arch.weight_offset(l);
      double sum = 0.0, sum2 = 0.0, largest = 0.0;
      for (std::size_t k = arch.weight_offset(l); k < arch.bias_offset(l); ++k) {
        const double w = p[k];
        sum += w;
        sum2 += w * w;
        largest = std::max(largest, std::fabs(w));
      }
      EXPECT_LE(largest, static_cast<float>(bound)) << "layer " << l;
      // Uniform on (-c, c): mean 0 (sd c / sqrt(3 n)), variance c^2 / 3 (sd of the sample mean of w^2:
      // c^2 sqrt(4 / 45 n)). 5 standard errors: a correct initialiser fails with probability ~1e-6.
      if (n >= 200) {
        EXPECT_NEAR(0.0, sum / n, 5.0 * bound / std::sqrt(3.0 * n)) << "layer " << l;
        EXPECT_NEAR(bound * bound / 3.0, sum2 / n, 5.0 * bound * bound * std::sqrt(4.0 / (45.0 * n)))
            << "layer " << l;
        EXPECT_GT(largest, 0.99 * bound) << "layer " << l;  // the whole range is used
      }
      for (std::size_t k = arch.bias_offset(l); k < arch.weight_offset(l + 1); ++k) EXPECT_EQ(0.0f, p[k]);
    }
  }
}

TEST(Initialise, SameSeedSameBitsAndTheDocumentedStream) {
  const MlpArchitecture arch{3, {16, 8}, Activation::silu};
  const std::vector<float> a = initialised(arch, 7);
  const std::vector<float> b = initialised(arch, 7);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  const std::vector<float> c = initialised(arch, 8);
  std::size_t equal = 0;
  for (std::size_t k = 0; k < arch.bias_offset(0); ++k) equal += a[k] == c[k];
  EXPECT_EQ(0u, equal);
  // Parameter k is bound (2u - 1), u the first uniform of the stream (seed, initialise, k): the contract
  // that makes initial weights independent of how they are computed; here W_1(2, 4), index 100.
  const std::size_t k = arch.weight_offset(1) + 2 * 16 + 4;
  ASSERT_EQ(100u, k);
  nsbi::rng::Stream stream(7, nsbi::rng::Purpose::initialise, k);
  const double bound = nsbi::kernels::initialisation_bound(arch, 1);
  EXPECT_EQ(static_cast<float>(bound * (2.0 * stream.uniform() - 1.0)), a[k]);
}

nsbi::Matrix matrix_of(const std::vector<double>& values, std::size_t rows, std::size_t cols) {
  nsbi::Matrix m = nsbi::make_matrix("rows", rows, cols);
  Kokkos::deep_copy(
      m, Kokkos::View<const double**, Kokkos::LayoutRight, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
             values.data(), rows, cols));
  return m;
}

// Three columns: a shifted normal-ish spread, a large offset with a small spread (where naive sums of
// squares lose digits), and a constant.
std::vector<double> sample_rows(std::size_t n) {
  std::vector<double> values;
  nsbi::rng::Stream stream(3, nsbi::rng::Purpose::simulate, 0);
  for (std::size_t i = 0; i < n; ++i) {
    values.push_back(2.0 + 3.0 * stream.normal());
    values.push_back(1e6 + 1e-3 * stream.uniform());
    values.push_back(0.1);
  }
  return values;
}

TEST(Standardize, StatisticsMatchDirectSumsAndMergeExactly) {
  const std::size_t n = 1001;
  const std::vector<double> values = sample_rows(n);
  const auto whole = nsbi::kernels::column_statistics(matrix_of(values, n, 3));
  EXPECT_EQ(n, whole.count);
  for (std::size_t j = 0; j < 3; ++j) {
    long double mean = 0.0L;
    for (std::size_t i = 0; i < n; ++i) mean += values[i * 3 + j];
    mean /= n;
    long double m2 = 0.0L;
    for (std::size_t i = 0; i < n; ++i) m2 += (values[i * 3 + j] - mean) * (values[i * 3 + j] - mean);
    // Sums of deviations (from the first row, then from the mean) in double: relative error ~n u = 1e-13.
    EXPECT_NEAR(static_cast<double>(mean), whole.mean[j], 1e-15 * std::fabs(static_cast<double>(mean))) << j;
    EXPECT_NEAR(static_cast<double>(m2), whole.m2[j], 1e-12 * static_cast<double>(m2)) << j;
  }
  // Two unequal halves merged (Chan's formula) give the whole's statistics to rounding. The merge is as
  // precise as the halves' means, each within a few ulp u(mean): the mean within 4 u, and M2 within its
  // term δ² n_a n_b / n evaluated with δ off by 2 u (δ = the difference of the halves' means).
  const std::size_t split = 377;
  auto first = nsbi::kernels::column_statistics(
      matrix_of(std::vector<double>(values.begin(), values.begin() + split * 3), split, 3));
  const auto second = nsbi::kernels::column_statistics(
      matrix_of(std::vector<double>(values.begin() + split * 3, values.end()), n - split, 3));
  const double weight = static_cast<double>(split) * static_cast<double>(n - split) / static_cast<double>(n);
  std::vector<double> delta;
  for (std::size_t j = 0; j < 3; ++j) delta.push_back(std::fabs(second.mean[j] - first.mean[j]));
  first.merge(second);
  EXPECT_EQ(whole.count, first.count);
  for (std::size_t j = 0; j < 3; ++j) {
    const double ulp = std::nextafter(std::fabs(whole.mean[j]), 1e300) - std::fabs(whole.mean[j]);
    EXPECT_NEAR(whole.mean[j], first.mean[j], 4.0 * ulp) << j;
    EXPECT_NEAR(whole.m2[j], first.m2[j], 1e-12 * whole.m2[j] + 2.0 * (2.0 * ulp) * delta[j] * weight) << j;
  }
  // Merging with an empty summary changes nothing.
  nsbi::kernels::ColumnStatistics empty;
  empty.merge(whole);
  EXPECT_EQ(whole.mean, empty.mean);
  empty.merge(nsbi::kernels::ColumnStatistics{});
  EXPECT_EQ(whole.m2, empty.m2);
}

TEST(Standardize, TransformCentresScalesAndKeepsConstantColumnsModerate) {
  const std::size_t n = 500;
  const std::vector<double> values = sample_rows(n);
  const auto statistics = nsbi::kernels::column_statistics(matrix_of(values, n, 3));
  const nsbi::kernels::Standardization standardization(statistics);
  const std::vector<double> scale = to_host(standardization.scale);
  EXPECT_EQ(1.0, scale[2]);  // the constant column is centred, not divided by ~0
  EXPECT_DOUBLE_EQ(statistics.standard_deviation()[0], scale[0]);
  nsbi::FloatMatrix whole("whole", n, 3);
  nsbi::kernels::standardize(standardization, matrix_of(values, n, 3), 0, whole);
  const std::vector<float> out = to_host(whole);
  for (std::size_t j = 0; j < 3; ++j) {
    double sum = 0.0, sum2 = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += out[i * 3 + j];
      sum2 += static_cast<double>(out[i * 3 + j]) * out[i * 3 + j];
    }
    // Exact but for the float rounding of each value (relative 6e-8) and the mean's own rounding (half an
    // ulp of 1e6 is 6e-11, over the second column's scale 3e-4: 2e-7).
    EXPECT_NEAR(0.0, sum / n, 1e-6) << j;
    EXPECT_NEAR(j == 2 ? 0.0 : 1.0, sum2 / n, 1e-6) << j;
  }
  // Blocks of columns (x, then θ) written separately give the same matrix.
  std::vector<double> x_block, theta_block;
  for (std::size_t i = 0; i < n; ++i) {
    x_block.push_back(values[i * 3]);
    theta_block.push_back(values[i * 3 + 1]);
    theta_block.push_back(values[i * 3 + 2]);
  }
  nsbi::FloatMatrix blocks("blocks", n, 3);
  nsbi::kernels::standardize(standardization, matrix_of(x_block, n, 1), 0, blocks);
  nsbi::kernels::standardize(standardization, matrix_of(theta_block, n, 2), 1, blocks);
  EXPECT_EQ(out, to_host(blocks));
}

}  // namespace
