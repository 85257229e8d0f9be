// PairwiseEvaluator against LikelihoodRatioEstimator on the explicitly formed pairs (x_i, θ_k): networks with
// 0, 1 and 3 hidden layers (widths that are and are not multiples of the SIMD width), every activation, one
// member and an ensemble, shapes that leave short passes; repeated calls give the same bits, rows are
// counted, and a warm evaluation allocates nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "model_test_record.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/kernels/pairwise_evaluator.hpp"
#include "nsbi/kernels/threads.hpp"
#include "nsbi/training/model_file.hpp"
#include "test_helpers.hpp"

// ---------------------------------------------------------------------------------------------------------
// Counting allocations: this binary's malloc family forwards to glibc's and, while a test asks it to,
// counts calls and keeps the largest size. Sanitizer builds bring their own allocator, so there the
// allocation test is skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NSBI_TEST_COUNTS_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define NSBI_TEST_COUNTS_ALLOCATIONS 0
#endif
#endif
#if !defined(NSBI_TEST_COUNTS_ALLOCATIONS) && defined(__GLIBC__)
#define NSBI_TEST_COUNTS_ALLOCATIONS 1
#endif
#if !defined(NSBI_TEST_COUNTS_ALLOCATIONS)
#define NSBI_TEST_COUNTS_ALLOCATIONS 0
#endif

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
std::atomic<std::size_t> largest_allocation{0};

[[maybe_unused]] void count_allocation(std::size_t size) {
  if (!counting.load(std::memory_order_relaxed)) return;
  allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t largest = largest_allocation.load(std::memory_order_relaxed);
  while (size > largest && !largest_allocation.compare_exchange_weak(largest, size)) {
  }
}

void start_counting() {
  allocations = 0;
  largest_allocation = 0;
  counting = true;
}

}  // namespace

#if NSBI_TEST_COUNTS_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t size) {
  count_allocation(size);
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
  count_allocation(n * size);
  return __libc_calloc(n, size);
}
void* realloc(void* pointer, std::size_t size) {
  count_allocation(size);
  return __libc_realloc(pointer, size);
}
void* memalign(std::size_t alignment, std::size_t size) {
  count_allocation(size);
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  count_allocation(size);
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** pointer, std::size_t alignment, std::size_t size) {
  count_allocation(size);
  void* memory = __libc_memalign(alignment, size);
  if (memory == nullptr) return ENOMEM;
  *pointer = memory;
  return 0;
}
}
#endif

namespace {

using nsbi::kernels::Activation;
using nsbi::kernels::PairwiseEvaluator;
using nsbi::test::model_test_record;
using nsbi::training::LikelihoodRatioEstimator;
using nsbi::training::ModelRecord;

constexpr std::size_t n_observables = 3;  // model_test_record: x1, x2, m_jj; θ = (mu2, rho12)
constexpr std::size_t n_parameters = 2;

// Rows around the standardisation's mean, a few of its scales wide: inputs the network saw in training.
std::vector<double> random_rows(const ModelRecord& record, std::size_t first_column, std::size_t n_rows,
                                std::size_t n_columns, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.5);
  std::vector<double> values(n_rows * n_columns);
  for (std::size_t i = 0; i < n_rows; ++i)
    for (std::size_t j = 0; j < n_columns; ++j)
      values[i * n_columns + j] = record.standardization_mean[first_column + j] +
                                  record.standardization_scale[first_column + j] * normal(engine);
  return values;
}

// log r̂ for every pair through LikelihoodRatioEstimator: the pairs (x_i, θ_k) written out row by row.
std::vector<double> reference(const ModelRecord& record, const std::vector<double>& x,
                              const std::vector<double>& theta, std::size_t n_events, std::size_t n_theta) {
  const std::size_t n_pairs = n_events * n_theta;
  std::vector<double> pair_x(n_pairs * n_observables), pair_theta(n_pairs * n_parameters);
  for (std::size_t i = 0; i < n_events; ++i)
    for (std::size_t k = 0; k < n_theta; ++k) {
      const std::size_t p = i * n_theta + k;
      for (std::size_t j = 0; j < n_observables; ++j)
        pair_x[p * n_observables + j] = x[i * n_observables + j];
      for (std::size_t j = 0; j < n_parameters; ++j)
        pair_theta[p * n_parameters + j] = theta[k * n_parameters + j];
    }
  LikelihoodRatioEstimator estimator(record);
  const nsbi::Vector out("reference", n_pairs);
  estimator.log_ratio(nsbi::test::matrix(pair_x, n_pairs, n_observables),
                      nsbi::test::matrix(pair_theta, n_pairs, n_parameters), out);
  return nsbi::test::to_host(out);
}

std::vector<double> evaluate(PairwiseEvaluator& evaluator, const std::vector<double>& x,
                             const std::vector<double>& theta, std::size_t n_events, std::size_t n_theta) {
  const nsbi::Matrix out("out", n_events, n_theta);
  evaluator.evaluate(nsbi::test::matrix(x, n_events, n_observables),
                     nsbi::test::matrix(theta, n_theta, n_parameters), out);
  return nsbi::test::to_host(out);
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

struct Shape {
  std::size_t n_events;
  std::size_t n_theta;
};

struct Case {
  std::string name;
  std::vector<std::size_t> hidden;
  Activation activation;
  std::size_t n_members;
  bool residual = false;
};

std::string case_name(const testing::TestParamInfo<Case>& info) { return info.param.name; }
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class PairwiseAgainstEstimator : public testing::TestWithParam<Case> {};

// The same float32 network as the estimator's, except that the first layer's pre-activation is formed as
// A_i + B_k from double parts rounded to float (instead of a float dot product of rounded inputs), the
// SiLU may be a different few-ulp approximation, oneDNN's GEMMs block differently for another batch size,
// and tanh/softplus may be oneDNN's: each a few float32 ulp (~1e-7 relative) per unit, which the layers
// carry to the logit as ~1e-6 of its scale (at most 1.3e-6 (1 + |value|) seen over these cases). 2e-5
// (1 + |value|) leaves a margin of ten or more; a wrong pair, member, layer or bias is off by O(0.1).
TEST_P(PairwiseAgainstEstimator, MatchesLogRatioOnExplicitPairs) {
  const Case& c = GetParam();
  const ModelRecord record = model_test_record(c.hidden, c.activation, c.n_members, 101, c.residual);
  // A small block: several full passes and short last passes; N and K are not multiples of it.
  const std::size_t block = 64;
  PairwiseEvaluator evaluator(record.ensemble(), block);
  EXPECT_EQ(evaluator.n_observables(), n_observables);
  EXPECT_EQ(evaluator.n_parameters(), n_parameters);
  std::uint64_t rows = 0;
  unsigned seed = 7;
  for (const Shape shape :
       {Shape{13, 11}, Shape{1, 1}, Shape{50, 1}, Shape{1, 77}, Shape{3, 64}, Shape{9, 130}}) {
    const std::vector<double> x = random_rows(record, 0, shape.n_events, n_observables, ++seed);
    const std::vector<double> theta = random_rows(record, n_observables, shape.n_theta, n_parameters, ++seed);
    const std::vector<double> expected = reference(record, x, theta, shape.n_events, shape.n_theta);
    const std::vector<double> got = evaluate(evaluator, x, theta, shape.n_events, shape.n_theta);
    rows += shape.n_events * shape.n_theta * c.n_members;
    ASSERT_EQ(evaluator.rows_evaluated(), rows);
    for (std::size_t p = 0; p < got.size(); ++p)
      ASSERT_NEAR(got[p], expected[p], 2e-5 * (1.0 + std::fabs(expected[p])))
          << shape.n_events << " x " << shape.n_theta << ": event " << p / shape.n_theta << ", theta "
          << p % shape.n_theta;
    // The comparison means something only if the logits vary: not a network that outputs its bias.
    if (shape.n_events * shape.n_theta > 10) {
      double spread = 0.0;
      for (double v : expected) spread = std::max(spread, std::fabs(v - expected[0]));
      EXPECT_GT(spread, 1e-2) << shape.n_events << " x " << shape.n_theta;
    }
  }

  // The default block: one short pass for these sizes.
  PairwiseEvaluator default_block(record.ensemble());
  const std::vector<double> x = random_rows(record, 0, 40, n_observables, 1);
  const std::vector<double> theta = random_rows(record, n_observables, 21, n_parameters, 2);
  const std::vector<double> expected = reference(record, x, theta, 40, 21);
  const std::vector<double> got = evaluate(default_block, x, theta, 40, 21);
  for (std::size_t p = 0; p < got.size(); ++p)
    ASSERT_NEAR(got[p], expected[p], 2e-5 * (1.0 + std::fabs(expected[p]))) << "pair " << p;
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, PairwiseAgainstEstimator,
    testing::Values(
        Case{"logistic", {}, Activation::relu, 1}, Case{"logistic_ensemble", {}, Activation::tanh, 3},
        Case{"relu_1", {20}, Activation::relu, 1}, Case{"silu_1", {20}, Activation::silu, 1},
        Case{"tanh_1", {20}, Activation::tanh, 1}, Case{"softplus_1", {20}, Activation::softplus, 1},
        Case{"silu_1_wide", {70}, Activation::silu, 1}, Case{"relu_3", {64, 64, 64}, Activation::relu, 1},
        Case{"silu_3", {64, 64, 64}, Activation::silu, 1}, Case{"tanh_3", {64, 64, 64}, Activation::tanh, 1},
        Case{"softplus_3", {64, 64, 64}, Activation::softplus, 1},
        Case{"relu_3_odd", {70, 33, 17}, Activation::relu, 1},
        Case{"silu_3_odd", {70, 33, 17}, Activation::silu, 1},
        Case{"silu_3_wide", {130, 128, 64}, Activation::silu, 1},
        Case{"tanh_3_odd", {70, 33, 17}, Activation::tanh, 1},
        Case{"softplus_3_odd", {70, 33, 17}, Activation::softplus, 1},
        Case{"silu_3_ensemble", {32, 24, 40}, Activation::silu, 3},
        Case{"softplus_3_ensemble", {32, 24, 40}, Activation::softplus, 3},
        Case{"relu_4_residual", {64, 64, 64, 64}, Activation::relu, 1, true},
        Case{"silu_4_residual", {64, 64, 64, 64}, Activation::silu, 1, true},
        Case{"tanh_3_residual", {70, 70, 70}, Activation::tanh, 2, true},
        Case{"softplus_2_residual", {33, 33}, Activation::softplus, 1, true}),
    case_name);

// Logistic-regression members whose logits are exact in float32 (binary fractions with few bits,
// standardisation mean 0 and scale 1): the ensemble value is known in closed form, and it must not
// overflow where exp(logit) does.
TEST(PairwiseEvaluator, EnsembleIsLogMeanOfRatiosComputedStably) {
  ModelRecord record;
  record.observable_names = {"x"};
  record.parameter_names = {"theta"};
  record.parameter_min = {-1.0};
  record.parameter_max = {1.0};
  record.architecture = {2, {}, Activation::relu};
  record.standardization_mean = {0.0, 0.0};
  record.standardization_scale = {1.0, 1.0};
  record.members = {{0.5f, -1.0f, 1000.0f}, {1.5f, 0.75f, 1001.0f}, {-2.0f, 0.25f, 999.0f}};  // (w_x, w_θ, b)
  record.history.resize(3);
  const std::vector<double> x = {0.5, -3.0, 2.0};
  const std::vector<double> theta = {1.25, -1.0};
  PairwiseEvaluator evaluator(record.ensemble(), 4);
  const nsbi::Matrix out("out", 3, 2);
  evaluator.evaluate(nsbi::test::matrix(x, 3, 1), nsbi::test::matrix(theta, 2, 1), out);
  const std::vector<double> got = nsbi::test::to_host(out);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < 2; ++k) {
      std::vector<double> logits;
      for (const auto& m : record.members) logits.push_back(m[0] * x[i] + m[1] * theta[k] + m[2]);
      double sum = 0.0;
      for (double l : logits) sum += std::exp(l - 1000.0);
      // exp(l) overflows double; l − 1000 is exact. Only the order of double roundings differs.
      EXPECT_NEAR(got[i * 2 + k], 1000.0 + std::log(sum / 3.0), 1e-12) << "event " << i << ", theta " << k;
    }
}

TEST(PairwiseEvaluator, RepeatedCallsGiveTheSameBits) {
  const ModelRecord record = model_test_record({64, 64, 64}, Activation::silu, 3, 5);
  PairwiseEvaluator evaluator(record.ensemble(), 256);
  const std::vector<double> x = random_rows(record, 0, 37, n_observables, 11);
  const std::vector<double> theta = random_rows(record, n_observables, 29, n_parameters, 12);
  const std::vector<double> first = evaluate(evaluator, x, theta, 37, 29);
  EXPECT_TRUE(same_bits(evaluate(evaluator, x, theta, 37, 29), first));
  // Other shapes in between (more θ points: the θ buffer grows) leave no state behind.
  const std::vector<double> more_x = random_rows(record, 0, 5, n_observables, 13);
  const std::vector<double> more_theta = random_rows(record, n_observables, 300, n_parameters, 14);
  evaluate(evaluator, more_x, more_theta, 5, 300);
  evaluate(evaluator, x, std::vector<double>(theta.begin(), theta.begin() + 2 * n_parameters), 37, 2);
  EXPECT_TRUE(same_bits(evaluate(evaluator, x, theta, 37, 29), first));
  EXPECT_EQ(evaluator.rows_evaluated(), (3 * 37 * 29 + 5 * 300 + 37 * 2) * 3u);

  // A fresh evaluator, and one moved from this one, give the same bits.
  PairwiseEvaluator fresh(record.ensemble(), 256);
  EXPECT_TRUE(same_bits(evaluate(fresh, x, theta, 37, 29), first));
  PairwiseEvaluator moved(std::move(evaluator));
  EXPECT_TRUE(same_bits(evaluate(moved, x, theta, 37, 29), first));
}

// bf16 GEMM inputs in hidden layers 1 .. L−1 (layer 0 and the output stay in the row kernels): each product
// reads values rounded by at most 2^-9 relative, so the logits move by a few times 2^-9 ≈ 2e-3 of their
// terms' scale (1 + |value| here); 2e-2 (1 + |value|) bounds that with room for three layers, and a wrong
// layout or a missing layer is off by O(0.1). The rounding must show (above f32's 2e-5 (1 + |value|)
// somewhere), and the values repeat bitwise.
TEST(PairwiseEvaluator, Bf16StaysWithinItsRoundingOfF32) {
  if (!nsbi::kernels::unsupported_reason(nsbi::kernels::Precision::bf16).empty())
    GTEST_SKIP() << "no native bf16 here";
  const ModelRecord record = model_test_record({64, 64, 64}, Activation::silu, 2, 5);
  PairwiseEvaluator f32(record.ensemble(), 256);
  PairwiseEvaluator bf16(record.ensemble(), 256, nsbi::kernels::Precision::bf16);
  EXPECT_NE(bf16.gemm_implementations().find("bf16"), std::string::npos) << bf16.gemm_implementations();
  const std::vector<double> x = random_rows(record, 0, 41, n_observables, 21);
  const std::vector<double> theta = random_rows(record, n_observables, 23, n_parameters, 22);
  const std::vector<double> high = evaluate(f32, x, theta, 41, 23);
  const std::vector<double> low = evaluate(bf16, x, theta, 41, 23);
  double largest = 0.0;
  for (std::size_t p = 0; p < high.size(); ++p) {
    const double scaled = std::abs(low[p] - high[p]) / (1.0 + std::abs(high[p]));
    ASSERT_LT(scaled, 2e-2) << "pair " << p;
    largest = std::max(largest, scaled);
  }
  EXPECT_GT(largest, 2e-5);
  EXPECT_TRUE(same_bits(evaluate(bf16, x, theta, 41, 23), low));
}

// The GEMMs' primitives are made for a thread count: another one must still give the right values.
TEST(PairwiseEvaluator, FollowsTheGemmThreadCount) {
  const ModelRecord record = model_test_record({48, 48, 48}, Activation::tanh, 2, 9);
  PairwiseEvaluator evaluator(record.ensemble(), 128);
  const std::vector<double> x = random_rows(record, 0, 31, n_observables, 21);
  const std::vector<double> theta = random_rows(record, n_observables, 17, n_parameters, 22);
  const std::vector<double> expected = reference(record, x, theta, 31, 17);
  const int threads = nsbi::kernels::gemm_threads();
  for (int t : {1, 2}) {
    try {
      nsbi::kernels::set_gemm_threads(t);
    } catch (const nsbi::ConfigError&) {
      continue;  // a sequential oneDNN build accepts only 1
    }
    const std::vector<double> got = evaluate(evaluator, x, theta, 31, 17);
    for (std::size_t p = 0; p < got.size(); ++p)
      ASSERT_NEAR(got[p], expected[p], 2e-5 * (1.0 + std::fabs(expected[p]))) << t << " threads, pair " << p;
  }
  nsbi::kernels::set_gemm_threads(threads);
}

// After a warm-up call, evaluations with as many or fewer events and θ points reuse every buffer and
// primitive. oneDNN's matmul execute itself makes a few small allocations per call (its argument map),
// which no user of it can avoid: with GEMMs, no allocation may be larger than that bookkeeping (a buffer
// of the evaluator is at least a pass of activations, ≥ 16 KiB here); without them, none at all.
TEST(PairwiseEvaluator, WarmEvaluationAllocatesNothing) {
  if (!NSBI_TEST_COUNTS_ALLOCATIONS) GTEST_SKIP() << "allocations are not counted in this build";
  struct Network {
    std::vector<std::size_t> hidden;
    Activation activation;
  };
  for (const Network& network :
       {Network{{64}, Activation::silu}, Network{{}, Activation::relu},
        Network{{64, 40, 64}, Activation::silu}, Network{{64, 40, 64}, Activation::relu},
        Network{{64, 40, 64}, Activation::softplus}}) {
    const std::string name = std::to_string(network.hidden.size()) + " hidden layers, " +
                             nsbi::kernels::activation_name(network.activation);
    const ModelRecord record = model_test_record(network.hidden, network.activation, 2, 3);
    PairwiseEvaluator evaluator(record.ensemble(), 512);
    const std::vector<double> x = random_rows(record, 0, 45, n_observables, 31);
    const std::vector<double> theta = random_rows(record, n_observables, 41, n_parameters, 32);
    const nsbi::Matrix x_view = nsbi::test::matrix(x, 45, n_observables);
    const nsbi::Matrix theta_view = nsbi::test::matrix(theta, 41, n_parameters);
    const nsbi::Matrix out("out", 45, 41);
    const auto fewer_events = Kokkos::subview(x_view, std::make_pair(0, 7), Kokkos::ALL);
    const auto fewer_theta = Kokkos::subview(theta_view, std::make_pair(0, 40), Kokkos::ALL);
    const nsbi::Matrix small_out("small_out", 7, 40);
    evaluator.evaluate(x_view, theta_view, out);  // warm-up: the θ buffer for 41 points
    start_counting();
    evaluator.evaluate(x_view, theta_view, out);
    // Fewer events and θ points: other pass lengths, the same buffers and primitives.
    evaluator.evaluate(fewer_events, fewer_theta, small_out);
    counting = false;
    if (network.hidden.size() < 2)
      EXPECT_EQ(allocations.load(), 0) << name;
    else
      EXPECT_LT(largest_allocation.load(), 1024u) << name << ": " << allocations.load() << " allocations";
    // The counter does see allocations, and their sizes (so the checks above mean something).
    start_counting();
    const nsbi::Matrix fresh("fresh", 64, 64);
    counting = false;
    EXPECT_GT(allocations.load(), 0);
    EXPECT_GE(largest_allocation.load(), 64u * 64u * sizeof(double));
  }
}

}  // namespace
