#include "nsbi/kernels/loss.hpp"

#include <cmath>

#include "nsbi/core/error.hpp"
#include "nsbi/kernels/float_math.hpp"

namespace nsbi::kernels {

namespace {

// The loss of a chunk of samples, whose gradients it writes. A chunk's loop is one SIMD reduction (OpenMP
// simd may reorder the sum inside a chunk, deterministically for a given build); chunks sum in double.
template <bool weighted>
struct BceChunk {
  static constexpr std::size_t size = 64;
  ConstFloatVector logits;
  ConstFloatVector labels;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  float inverse_batch;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t chunk, double& sum) const {
    const std::size_t first = chunk * size;
    const std::size_t last = first + size < logits.extent(0) ? first + size : logits.extent(0);
    const float* s_chunk = logits.data();
    const float* y_chunk = labels.data();
    float* g_chunk = logit_gradients.data();
    double partial = 0.0;
#if defined(NSBI_HAS_OPENMP_SIMD) && !defined(__CUDA_ARCH__)
#pragma omp simd reduction(+ : partial)
#endif
    for (std::size_t i = first; i < last; ++i) {
      const float s = s_chunk[i];
      const float y = y_chunk[i];
      float w = 1.0f;
      if constexpr (weighted) w = weights.data()[i];
      // exp only ever sees -|s|: e in (0, 1], nothing overflows. σ(s) - y is formed from the small tail
      // σ(-|s|), so that a confident right answer keeps its tiny gradient instead of rounding 1 - 1 to 0.
      const float e = float_math::exp_nonpositive(s >= 0.0f ? -s : s);
      const float tail = e / (1.0f + e);
      const float residual = s >= 0.0f ? (1.0f - y) - tail : tail - y;
      partial += static_cast<double>(w * (((s > 0.0f ? s : 0.0f) - s * y) + float_math::log1p_unit(e)));
      g_chunk[i] = w * residual * inverse_batch;
    }
    sum += partial;
  }
};

template <bool weighted>
double bce_sum(const ExecutionSpace& space, const BceChunk<weighted>& chunk) {
  const std::size_t n_chunks =
      (chunk.logits.extent(0) + BceChunk<weighted>::size - 1) / BceChunk<weighted>::size;
  double sum = 0.0;
  Kokkos::parallel_reduce(
      "nsbi::kernels::bce_with_logits",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>(space, 0, n_chunks), chunk, sum);
  return sum;
}

}  // namespace

double bce_with_logits(const ExecutionSpace& space, const ConstFloatVector& logits,
                       const ConstFloatVector& labels, const ConstFloatVector& weights, double global_batch,
                       const FloatVector& logit_gradients) {
  const std::size_t n = logits.extent(0);
  NSBI_ASSERT(labels.extent(0) == n && logit_gradients.extent(0) == n,
              "nsbi::kernels::bce_with_logits: logits, labels and gradients differ in length");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n,
              "nsbi::kernels::bce_with_logits: weights and logits differ in length");
  NSBI_ASSERT(global_batch > 0.0, "nsbi::kernels::bce_with_logits: the global batch must be positive");
  const auto inverse_batch = static_cast<float>(1.0 / global_batch);
  const double sum =
      weights.data() != nullptr
          ? bce_sum(space, BceChunk<true>{logits, labels, weights, logit_gradients, inverse_batch})
          : bce_sum(space, BceChunk<false>{logits, labels, weights, logit_gradients, inverse_batch});
  return sum / global_batch;
}

namespace {

using ExamplePolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>;

// (e^{ℓ} − e^{s})² = e^{2s} m² with m = expm1(ℓ − s), and its derivative in s, −2 e^{2s} m, each formed as
// exp(2s + log of the rest): no ∞ − ∞ or ∞ · 0 for large |s|, and no cancellation when ℓ ≈ s. (The class-1
// term is the same with s, ℓ negated, and its derivative's sign flipped.)
KOKKOS_INLINE_FUNCTION void ratio_regression(double s, double l, double& loss, double& derivative) {
  const double m = std::expm1(l - s);
  const double log_m = std::log(std::fabs(m));  // −∞ when m = 0, giving 0 below
  loss = std::exp(2.0 * s + 2.0 * log_m);
  derivative = m == 0.0 ? 0.0 : std::copysign(2.0 * std::exp(2.0 * s + log_m), -m);
}

struct Rolr {
  ConstFloatVector logits;
  ConstFloatVector labels;
  ConstFloatVector joint_log_r;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  double inverse_batch;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, double& sum) const {
    const double w = weights.data() != nullptr ? weights(i) : 1.0;
    if (w == 0.0) {
      logit_gradients(i) = 0.0f;
      return;
    }
    const double s = logits(i);
    const double l = joint_log_r(i);
    const double y = labels(i);
    double loss = 0.0;
    double derivative = 0.0;
    if (y != 1.0) {  // reference class: regress r
      double term, d;
      ratio_regression(s, l, term, d);
      loss += (1.0 - y) * term;
      derivative += (1.0 - y) * d;
    }
    if (y != 0.0) {  // numerator class: regress 1/r
      double term, d;
      ratio_regression(-s, -l, term, d);
      loss += y * term;
      derivative -= y * d;
    }
    logit_gradients(i) = static_cast<float>(w * derivative * inverse_batch);
    sum += w * loss;
  }
};

struct AliceLabels {
  ConstFloatVector joint_log_r;
  FloatVector labels;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i) const {
    const double l = joint_log_r(i);
    // σ(ℓ) with exp of −|ℓ| only, so that it never overflows.
    const double e = std::exp(-std::fabs(l));
    labels(i) = static_cast<float>(l >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
  }
};

struct ScoreMse {
  ConstFloatMatrix tangents;
  ConstFloatMatrix scores;
  ConstFloatVector weights;
  FloatMatrix tangent_gradients;
  double scale;  // α / score_rows

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, double& sum) const {
    const std::size_t n = tangents.extent(1);
    const double w = weights.data() != nullptr ? weights(i) : 1.0;
    if (w == 0.0) {
      for (std::size_t p = 0; p < n; ++p) tangent_gradients(i, p) = 0.0f;
      return;
    }
    double row = 0.0;
    for (std::size_t p = 0; p < n; ++p) {
      const double residual = static_cast<double>(tangents(i, p)) - static_cast<double>(scores(i, p));
      row += residual * residual;
      tangent_gradients(i, p) = static_cast<float>(2.0 * scale * w * residual);
    }
    sum += w * row;
  }
};

// log(e^{base} + Σ_{a in [first, last)} e^{c + s_a}) for the logits s_a = logits(a·n + i) of one example,
// with the largest exponent subtracted; base = −∞ leaves the plain log-sum-exp.
KOKKOS_INLINE_FUNCTION double log_sum_exp(const ConstFloatVector& logits, std::size_t n, std::size_t i,
                                          std::size_t first, std::size_t last, double c, double base) {
  double m = base;
  for (std::size_t a = first; a < last; ++a) m = std::fmax(m, c + static_cast<double>(logits(a * n + i)));
  double z = std::exp(base - m);
  for (std::size_t a = first; a < last; ++a) z += std::exp(c + static_cast<double>(logits(a * n + i)) - m);
  return m + std::log(z);
}

struct NreB {
  ConstFloatVector logits;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  std::size_t n;  // examples
  std::size_t k;  // candidates per example
  double inverse_examples;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, double& sum) const {
    const double w = weights.data() != nullptr ? weights(i) : 1.0;
    const double l = log_sum_exp(logits, n, i, 0, k, 0.0, -INFINITY);
    for (std::size_t a = 0; a < k; ++a) {
      const double p = std::exp(static_cast<double>(logits(a * n + i)) - l);
      logit_gradients(a * n + i) = static_cast<float>(w * (p - (a == 0 ? 1.0 : 0.0)) * inverse_examples);
    }
    sum += w * (l - static_cast<double>(logits(i)));
  }
};

struct NreC {
  ConstFloatVector logits;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  std::size_t n;       // examples
  std::size_t k;       // contrastive classes: K + 1 logits per example
  double c;            // log(γ/K)
  double dependent;    // γ/(1 + γ), the weight of the set holding x's own θ
  double independent;  // 1/(1 + γ)
  double inverse_examples;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, double& sum) const {
    const double w = weights.data() != nullptr ? weights(i) : 1.0;
    const double l_dependent = log_sum_exp(logits, n, i, 0, k, c, 0.0);        // candidates 0..K−1
    const double l_independent = log_sum_exp(logits, n, i, 1, k + 1, c, 0.0);  // candidates 1..K
    const double s0 = logits(i);
    for (std::size_t a = 0; a <= k; ++a) {
      const double e = c + static_cast<double>(logits(a * n + i));
      double g = a < k ? dependent * std::exp(e - l_dependent) : 0.0;
      if (a == 0) g -= dependent;
      if (a >= 1) g += independent * std::exp(e - l_independent);
      logit_gradients(a * n + i) = static_cast<float>(w * g * inverse_examples);
    }
    sum += w * (dependent * (l_dependent - c - s0) + independent * l_independent);
  }
};

struct SigmoidSum {
  ConstFloatVector logits;
  ConstFloatVector weights;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t j, double& sum) const {
    const double w = weights.data() != nullptr ? weights(j % weights.extent(0)) : 1.0;
    sum += w / (1.0 + std::exp(-static_cast<double>(logits(j))));
  }
};

struct SigmoidGradient {
  ConstFloatVector logits;
  ConstFloatVector weights;
  FloatVector logit_gradients;
  double scale;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t j) const {
    const double w = weights.data() != nullptr ? weights(j % weights.extent(0)) : 1.0;
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits(j))));
    logit_gradients(j) += static_cast<float>(scale * w * p * (1.0 - p));
  }
};

}  // namespace

double rolr(const ExecutionSpace& space, const ConstFloatVector& logits, const ConstFloatVector& labels,
            const ConstFloatVector& joint_log_r, const ConstFloatVector& weights, double global_batch,
            const FloatVector& logit_gradients) {
  const std::size_t n = logits.extent(0);
  NSBI_ASSERT(labels.extent(0) == n && joint_log_r.extent(0) == n && logit_gradients.extent(0) == n,
              "nsbi::kernels::rolr: logits, labels, joint log ratios and gradients differ in length");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n,
              "nsbi::kernels::rolr: weights and logits differ in length");
  NSBI_ASSERT(global_batch > 0.0, "nsbi::kernels::rolr: the global batch must be positive");
  double sum = 0.0;
  Kokkos::parallel_reduce("nsbi::kernels::rolr", ExamplePolicy(space, 0, n),
                          Rolr{logits, labels, joint_log_r, weights, logit_gradients, 1.0 / global_batch},
                          sum);
  return sum / global_batch;
}

void alice_labels(const ExecutionSpace& space, const ConstFloatVector& joint_log_r,
                  const FloatVector& labels) {
  NSBI_ASSERT(labels.extent(0) == joint_log_r.extent(0),
              "nsbi::kernels::alice_labels: joint log ratios and labels differ in length");
  Kokkos::parallel_for("nsbi::kernels::alice_labels", ExamplePolicy(space, 0, labels.extent(0)),
                       AliceLabels{joint_log_r, labels});
}

double score_mse(const ExecutionSpace& space, const ConstFloatMatrix& tangents,
                 const ConstFloatMatrix& scores, const ConstFloatVector& weights, double alpha,
                 double score_rows, const FloatMatrix& tangent_gradients) {
  const std::size_t n = tangents.extent(0);
  NSBI_ASSERT(scores.extent(0) == n && tangent_gradients.extent(0) == n &&
                  scores.extent(1) == tangents.extent(1) && tangent_gradients.extent(1) == tangents.extent(1),
              "nsbi::kernels::score_mse: tangents, scores and gradients differ in shape");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n,
              "nsbi::kernels::score_mse: weights and tangents differ in rows");
  NSBI_ASSERT(score_rows > 0.0, "nsbi::kernels::score_mse: the score row count must be positive");
  double sum = 0.0;
  Kokkos::parallel_reduce("nsbi::kernels::score_mse", ExamplePolicy(space, 0, n),
                          ScoreMse{tangents, scores, weights, tangent_gradients, alpha / score_rows}, sum);
  return alpha * sum / score_rows;
}

double nre_b(const ExecutionSpace& space, const ConstFloatVector& logits, std::size_t n_examples,
             std::size_t n_candidates, const ConstFloatVector& weights, double global_examples,
             const FloatVector& logit_gradients) {
  NSBI_ASSERT(n_candidates >= 1 && logits.extent(0) == n_examples * n_candidates &&
                  logit_gradients.extent(0) == logits.extent(0),
              "nsbi::kernels::nre_b: logits and gradients must hold K logits per example");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n_examples,
              "nsbi::kernels::nre_b: weights and examples differ in length");
  NSBI_ASSERT(global_examples > 0.0, "nsbi::kernels::nre_b: the global example count must be positive");
  double sum = 0.0;
  Kokkos::parallel_reduce(
      "nsbi::kernels::nre_b", ExamplePolicy(space, 0, n_examples),
      NreB{logits, weights, logit_gradients, n_examples, n_candidates, 1.0 / global_examples}, sum);
  return sum / global_examples;
}

double nre_c(const ExecutionSpace& space, const ConstFloatVector& logits, std::size_t n_examples,
             std::size_t n_classes, double gamma, const ConstFloatVector& weights, double global_examples,
             const FloatVector& logit_gradients) {
  NSBI_ASSERT(n_classes >= 1 && logits.extent(0) == n_examples * (n_classes + 1) &&
                  logit_gradients.extent(0) == logits.extent(0),
              "nsbi::kernels::nre_c: logits and gradients must hold K + 1 logits per example");
  NSBI_ASSERT(weights.data() == nullptr || weights.extent(0) == n_examples,
              "nsbi::kernels::nre_c: weights and examples differ in length");
  NSBI_ASSERT(gamma > 0.0 && global_examples > 0.0,
              "nsbi::kernels::nre_c: γ and the global example count must be positive");
  const NreC loss{logits,
                  weights,
                  logit_gradients,
                  n_examples,
                  n_classes,
                  std::log(gamma / static_cast<double>(n_classes)),
                  gamma / (1.0 + gamma),
                  1.0 / (1.0 + gamma),
                  1.0 / global_examples};
  double sum = 0.0;
  Kokkos::parallel_reduce("nsbi::kernels::nre_c", ExamplePolicy(space, 0, n_examples), loss, sum);
  return sum / global_examples;
}

double sigmoid_sum(const ExecutionSpace& space, const ConstFloatVector& logits,
                   const ConstFloatVector& weights) {
  NSBI_ASSERT(
      weights.data() == nullptr || (weights.extent(0) > 0 && logits.extent(0) % weights.extent(0) == 0),
      "nsbi::kernels::sigmoid_sum: the logits are not blocks of the weights' length");
  double sum = 0.0;
  Kokkos::parallel_reduce("nsbi::kernels::sigmoid_sum", ExamplePolicy(space, 0, logits.extent(0)),
                          SigmoidSum{logits, weights}, sum);
  return sum;
}

void add_sigmoid_gradient(const ExecutionSpace& space, const ConstFloatVector& logits,
                          const ConstFloatVector& weights, double scale, const FloatVector& logit_gradients) {
  NSBI_ASSERT(
      logit_gradients.extent(0) == logits.extent(0) &&
          (weights.data() == nullptr || (weights.extent(0) > 0 && logits.extent(0) % weights.extent(0) == 0)),
      "nsbi::kernels::add_sigmoid_gradient: logits, weights and gradients differ in length");
  Kokkos::parallel_for("nsbi::kernels::add_sigmoid_gradient", ExamplePolicy(space, 0, logits.extent(0)),
                       SigmoidGradient{logits, weights, logit_gradients, scale});
}

}  // namespace nsbi::kernels
