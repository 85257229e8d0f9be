#include "nsbi/kernels/pairwise_evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "gemm.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/kernels/activation.hpp"
#include "nsbi/kernels/threads.hpp"
#include "simd.hpp"

#if defined(__AVX512F__)
// GCC 12 warns about its own _mm512_undefined_* (self-initialised on purpose) wherever intrinsics that use
// them are inlined (GCC bug 105593); the warning's location is the header, so it is silenced there.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define NSBI_PAIRWISE_AVX512 1
#else
#define NSBI_PAIRWISE_AVX512 0
#endif

namespace nsbi::kernels {

static_assert(Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible,
              "nsbi::kernels::PairwiseEvaluator runs its GEMMs through oneDNN on host memory");

namespace {

using detail::Gemm;
using detail::Tag;
using dnnl::memory;

// ---------------------------------------------------------------------------------------------------------
// Row kernels: h = f(a + b) over one row of a layer, optionally followed by the output layer's dot product.
// They run on the pre-activations oneDNN has just written, or on A_i + B_k for the first layer.

#if NSBI_PAIRWISE_AVX512

// SiLU, z / (1 + exp(−z)), on four vectors. exp(−z) for z clamped to [−88, 87] (where 1 + e stays finite
// and e normal): −z 16 / ln 2 = n + f 16 / ln 2 with n an integer and |f| ≤ ln 2 / 32, exp(−z) =
// 2^(n >> 4) T[n & 15] exp(f), T the 16 values 2^(j / 16) in one register (a lane permute looks them up),
// exp(f) a cubic (error 1e-8), 2^(n >> 4) added to the exponent bits. Within 2e-7 of the exact SiLU for
// |z| ≤ 12, as float_math's is within a few ulp (the tests compare whole networks), in a fifth of its
// time: it uses FMA, which -ffp-contract=off keeps from float_math, and with float_math's a 3x64 SiLU
// network would spend longer in its 192 activations per row than in its two 64x64 GEMMs.
inline void silu4(__m512 (&z)[4]) {
  const __m512 minus_16_over_ln2 = _mm512_set1_ps(-0x1.715476p+4f);
  const __m512 round_shift = _mm512_set1_ps(0x1.8p23f);  // adding it rounds to an integer in the low bits
  const __m512 ln2_over_16 = _mm512_set1_ps(0x1.62e430p-5f);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 powers = _mm512_setr_ps(
      0x1.0p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
      0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
      0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f);  // 2^(j / 16)
  const __m512i exponent_bits = _mm512_set1_epi32(static_cast<int>(0xff800000u));
  for (int v = 0; v < 4; ++v) {
    const __m512 clamped = _mm512_min_ps(_mm512_max_ps(z[v], _mm512_set1_ps(-88.0f)), _mm512_set1_ps(87.0f));
    // The low bits of `shifted` hold n = round(−z 16 / ln 2), two's complement.
    const __m512 shifted = _mm512_fmadd_ps(clamped, minus_16_over_ln2, round_shift);
    const __m512 g = _mm512_fmadd_ps(_mm512_sub_ps(shifted, round_shift), ln2_over_16, clamped);  // g = −f
    // exp(−g) − 1 = g (−1 + g (1/2 − g / 6)).
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(-1.0f / 6.0f), g, _mm512_set1_ps(0.5f));
    q = _mm512_fmadd_ps(q, g, _mm512_set1_ps(-1.0f));
    const __m512 table = _mm512_permutexvar_ps(_mm512_castps_si512(shifted), powers);  // index: n & 15
    const __m512 mantissa = _mm512_fmadd_ps(_mm512_mul_ps(table, g), q, table);
    // (n << 19) keeps n >> 4 in the exponent field once the bits of n & 15 are masked off.
    const __m512i scale =
        _mm512_and_si512(_mm512_slli_epi32(_mm512_castps_si512(shifted), 19), exponent_bits);
    const __m512 e = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(mantissa), scale));
    z[v] = _mm512_div_ps(z[v], _mm512_add_ps(e, one));
  }
}

inline void relu4(__m512 (&z)[4]) {
  for (int v = 0; v < 4; ++v) z[v] = _mm512_max_ps(z[v], _mm512_setzero_ps());
}

// The activations with a vector kernel here; the others use float_math through the compiler's
// vectorisation, and oneDNN's post-ops in the GEMMs.
constexpr bool has_vector_kernel(Activation activation) {
  return activation == Activation::relu || activation == Activation::silu;
}

#else
constexpr bool has_vector_kernel(Activation) { return false; }
#endif  // NSBI_PAIRWISE_AVX512

// A run of n rows of one layer: row r is h_r = f(a_r + b_r) (f(a_r) without b) with x_r = x + r x_stride,
// plus skip_r in a residual layer (skip given), stored to h_r unless h is null, and, when w is given,
// logits[r] = w · h_r + bias (the output layer). a_stride 0 repeats one row: A_i against consecutive B_k.
struct Rows {
  std::size_t n = 0;
  std::size_t width = 0;
  const float* a = nullptr;
  std::size_t a_stride = 0;
  const float* b = nullptr;
  std::size_t b_stride = 0;
  float* h = nullptr;
  std::size_t h_stride = 0;
  const float* skip = nullptr;  // residual layers: the layer's input, [n, width] at stride width
  const float* w = nullptr;
  float bias = 0.0f;
  float* logits = nullptr;
};

#if NSBI_PAIRWISE_AVX512

// The lanes of columns [begin, begin + 16) that lie below width.
inline __mmask16 lane_mask(std::size_t begin, std::size_t width) {
  if (begin >= width) return 0;
  const std::size_t left = width - begin;
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

// Lane r of the result is the sum of the lanes of sums[r], for 16 rows at once: a transposing tree of
// 45 shuffles and additions instead of 16 horizontal sums of 8 dependent steps each.
inline __m512 sum_lanes(const __m512 (&sums)[16]) {
  __m512 pairs[8];  // 128-bit block q of pairs[i]: partial sums of rows 2i, 2i + 1 at lanes (0, 2), (1, 3)
  for (int i = 0; i < 8; ++i)
    pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(sums[2 * i], sums[2 * i + 1]),
                             _mm512_unpackhi_ps(sums[2 * i], sums[2 * i + 1]));
  __m512 quads[4];  // 128-bit block q of quads[i]: rows 4i .. 4i + 3, block q's partial sums
  for (int i = 0; i < 4; ++i)
    quads[i] = _mm512_add_ps(_mm512_shuffle_ps(pairs[2 * i], pairs[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(pairs[2 * i], pairs[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 halves[2];  // blocks: rows 8i .. 8i + 3 (blocks 0 + 1, then 2 + 3), rows 8i + 4 .. 8i + 7 (same)
  for (int i = 0; i < 2; ++i)
    halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// What a vector kernel does with a row, flags of h = f(a + b): f applied (not for the output layer after
// oneDNN's activation), b added, h stored, w · h summed, the skip added after f.
enum RowKernel : unsigned { apply = 1, add = 2, store = 4, dot = 8, residual = 16 };

// Columns [column, column + 64) of row r. With `masked`, the lanes outside `masks` load as 0 (f(0) = 0)
// and are not stored: the last columns of a row.
template <Activation A, unsigned K, bool masked>
inline void vector_group(const Rows& rows, std::size_t r, std::size_t column, const __mmask16 (&masks)[4],
                         __m512& sum) {
  const auto load = [&](const float* p, int v) {
    return masked ? _mm512_maskz_loadu_ps(masks[v], p + 16 * v) : _mm512_loadu_ps(p + 16 * v);
  };
  const float* a = rows.a + r * rows.a_stride + column;
  __m512 z[4];
  for (int v = 0; v < 4; ++v) z[v] = load(a, v);
  if constexpr ((K & add) != 0) {
    const float* b = rows.b + r * rows.b_stride + column;
    for (int v = 0; v < 4; ++v) z[v] = _mm512_add_ps(z[v], load(b, v));
  }
  if constexpr ((K & apply) != 0 && A == Activation::silu) silu4(z);
  if constexpr ((K & apply) != 0 && A == Activation::relu) relu4(z);
  if constexpr ((K & residual) != 0) {
    const float* skip = rows.skip + r * rows.width + column;
    for (int v = 0; v < 4; ++v) z[v] = _mm512_add_ps(z[v], load(skip, v));
  }
  if constexpr ((K & store) != 0) {
    float* h = rows.h + r * rows.h_stride + column;
    for (int v = 0; v < 4; ++v) {
      if constexpr (masked)
        _mm512_mask_storeu_ps(h + 16 * v, masks[v], z[v]);
      else
        _mm512_storeu_ps(h + 16 * v, z[v]);
    }
  }
  if constexpr ((K & dot) != 0)
    for (int v = 0; v < 4; ++v) sum = _mm512_fmadd_ps(z[v], load(rows.w + column, v), sum);
}

// Rows in groups of 64 columns, the last one masked; what a row does is fixed at compile time, so that the
// row loop carries no branches. The output layer's dot products are summed 16 rows at a time (sum_lanes).
template <Activation A, unsigned K>
void vector_rows(const Rows& rows) {
  const std::size_t full = rows.width / 64 * 64;
  __mmask16 tail[4];
  for (int v = 0; v < 4; ++v) tail[v] = lane_mask(full + 16 * static_cast<std::size_t>(v), rows.width);
  for (std::size_t first = 0; first < rows.n; first += 16) {
    const std::size_t count = std::min<std::size_t>(16, rows.n - first);
    __m512 sums[16];
    for (std::size_t q = 0; q < 16; ++q) sums[q] = _mm512_setzero_ps();
    for (std::size_t q = 0; q < count; ++q) {
      __m512 sum = _mm512_setzero_ps();
      for (std::size_t column = 0; column < full; column += 64)
        vector_group<A, K, false>(rows, first + q, column, tail, sum);
      if (full < rows.width) vector_group<A, K, true>(rows, first + q, full, tail, sum);
      sums[q] = sum;
    }
    if constexpr ((K & dot) != 0)
      _mm512_mask_storeu_ps(rows.logits + first, lane_mask(0, count),
                            _mm512_add_ps(sum_lanes(sums), _mm512_set1_ps(rows.bias)));
  }
}

// The kernel for rows with or without b, h and w.
template <Activation A, unsigned K>
void dispatch_rows(const Rows& rows) {
  if (rows.w == nullptr)
    vector_rows<A, K | store>(rows);
  else if (rows.h == nullptr)
    vector_rows<A, K | dot>(rows);
  else
    vector_rows<A, K | store | dot>(rows);
}

#endif  // NSBI_PAIRWISE_AVX512

// The rows through float_math's activate<A> (Mlp's), which the compiler vectorises; scratch [width] holds
// a row that is not stored.
template <Activation A>
void generic_rows(const Rows& rows, float* scratch) {
  for (std::size_t r = 0; r < rows.n; ++r) {
    const float* a = rows.a + r * rows.a_stride;
    float* h = rows.h != nullptr ? rows.h + r * rows.h_stride : scratch;
    if (rows.b == nullptr) {
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < rows.width; ++j) h[j] = activate<A>(a[j]);
    } else {
      const float* b = rows.b + r * rows.b_stride;
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < rows.width; ++j) h[j] = activate<A>(a[j] + b[j]);
    }
    if (rows.skip != nullptr) {
      const float* skip = rows.skip + r * rows.width;
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < rows.width; ++j) h[j] += skip[j];
    }
    if (rows.w != nullptr) {
      float dot = 0.0f;
      NSBI_SIMD_SUM(dot)
      for (std::size_t j = 0; j < rows.width; ++j) dot += rows.w[j] * h[j];
      rows.logits[r] = dot + rows.bias;
    }
  }
}

template <Activation A>
void activate_rows(const Rows& rows, float* scratch) {
#if NSBI_PAIRWISE_AVX512
  if constexpr (has_vector_kernel(A)) {
    NSBI_ASSERT(rows.skip == nullptr || rows.b == nullptr, "nsbi::kernels::PairwiseEvaluator: a skip with b");
    if (rows.skip != nullptr)
      dispatch_rows<A, apply | residual>(rows);
    else if (rows.b == nullptr)
      dispatch_rows<A, apply>(rows);
    else
      dispatch_rows<A, apply | add>(rows);
    return;
  }
#endif
  generic_rows<A>(rows, scratch);
}

// logits[r] = w · h_r + bias for rows whose activation oneDNN applied.
void output_rows(const Rows& rows) {
#if NSBI_PAIRWISE_AVX512
  vector_rows<Activation::relu, dot>(rows);
#else
  for (std::size_t r = 0; r < rows.n; ++r) {
    const float* h = rows.a + r * rows.a_stride;
    float dot = 0.0f;
    NSBI_SIMD_SUM(dot)
    for (std::size_t j = 0; j < rows.width; ++j) dot += rows.w[j] * h[j];
    rows.logits[r] = dot + rows.bias;
  }
#endif
}

// Whether a hidden layer past the first gets its activation from oneDNN as a matmul post-op (one pass over
// the layer) or from activate_rows after the matmul (a second pass over cached data, with a faster
// activation). The bias is always oneDNN's. Measured by benchmarks/bench_pairwise.cpp: oneDNN's relu costs
// nothing, its tanh and soft_relu beat float_math's, its swish loses to silu4. A residual network adds the
// skip after the activation, in the row kernels.
bool fused_post_op(const MlpArchitecture& arch) {
  return !arch.residual && (!has_vector_kernel(arch.activation) || arch.activation == Activation::relu);
}

dnnl::algorithm eltwise_algorithm(Activation activation) {
  switch (activation) {
    case Activation::relu:
      return dnnl::algorithm::eltwise_relu;  // alpha 0: max(z, 0)
    case Activation::silu:
      return dnnl::algorithm::eltwise_swish;  // alpha 1: z sigmoid(z)
    case Activation::tanh:
      return dnnl::algorithm::eltwise_tanh;
    case Activation::softplus:
      return dnnl::algorithm::eltwise_soft_relu;  // log(1 + exp(z)) (oneDNN 2.x ignores alpha)
  }
  NSBI_ASSERT(false, "unknown activation");
}

// The activation as a oneDNN post-op: alpha 1 for swish (z sigmoid(z)), otherwise unused.
detail::Eltwise eltwise(Activation activation) {
  return {eltwise_algorithm(activation), activation == Activation::silu ? 1.0f : 0.0f};
}

// The GEMMs of hidden layers 1 .. L−1 for passes of `rows` rows.
struct Plan {
  std::size_t rows = 0;
  // layers[l − 1] for hidden layer l: a_{l−1} W_l^T + b_l (then the activation, when fused), W_l [n, k]
  // row-major read as W_l^T [k, n] in "ba".
  std::vector<Gemm> layers;
};

// One member's first layer split into its x and θ parts, in double, standardisation folded in:
// pre-activation(o) = Σ_j x_weights(j, o) (x_j − mean_j) + Σ_j theta_weights(j, o) (θ_j − mean_{D+j}) + b(o).
// Column-major in o, so that the loops over units vectorise.
struct FirstLayer {
  std::vector<double> x_weights;      // [D][H0]: W(o, j) / scale_j
  std::vector<double> theta_weights;  // [P][H0]: W(o, D + j) / scale_{D+j}
  std::vector<double> bias;           // [H0]
};

}  // namespace

// Passes of `block` pairs in the row-major pair order p = i K + k: θ fastest, so that one A_i serves a run
// of θ points, the B_k rows stay in cache and out(i, k) is written in order. A last, shorter pass runs the
// GEMMs padded to a power of two. Layer 0, the SiLU and ReLU activations and the output layer run in the
// row kernels above; hidden layers 1 .. L−1 are oneDNN matmuls with the bias (and the other activations)
// as post-ops.
struct PairwiseEvaluator::Impl {
  explicit Impl(Precision precision) : gemm(Device::host, precision) {}
  MlpArchitecture arch;
  std::size_t n_observables = 0;
  std::size_t n_parameters = 0;
  std::size_t block = 0;  // rows per network pass
  // Outputs of layer 0: the first hidden width, or 1 (the logit itself) without hidden layers.
  std::size_t width0 = 0;
  std::size_t widest = 0;  // of the hidden layers
  std::vector<double> mean;
  std::vector<FirstLayer> first;        // per member
  std::vector<FloatVector> parameters;  // per member, the layout of mlp.hpp
  bool fused = true;                    // see fused_post_op
  std::uint64_t rows_evaluated = 0;

  detail::GemmContext gemm;
  int threads = 0;          // the GEMM thread count the plans were made for
  std::vector<Plan> plans;  // by rows, ascending: powers of two below block, then block
  Kokkos::View<char*, Kokkos::HostSpace> scratchpad;

  FloatMatrix theta_part;  // [capacity, width0] per member, stacked: B_k for the current θ points
  std::size_t theta_capacity = 0;
  std::vector<double> accumulator;  // [width0]: A_i or B_k in double
  FloatVector event_part;           // [width0]: A_i for the current event
  FloatVector row_scratch;          // [widest]: generic_rows' scratch
  FloatVector buffers[2];           // [block × widest] each: the hidden layers' activations, ping-pong
  FloatMatrix logits;               // [members, block]

  void make_plans();
  const Plan& plan_for(std::size_t rows) const;
  void prepare_theta(const ConstMatrix& theta);
  void compute_event_part(std::size_t member, const ConstMatrix& x, std::size_t i);
  template <Activation A>
  void run_member(std::size_t member, const ConstMatrix& x, std::size_t begin, std::size_t n,
                  std::size_t n_theta);
  void store(const Matrix& out, std::size_t begin, std::size_t n, std::size_t n_theta) const;
};

void PairwiseEvaluator::Impl::make_plans() {
  threads = gemm_threads();  // oneDNN sizes a primitive's work split for the thread count at its creation
  plans.clear();
  const std::size_t n_hidden = arch.hidden.size();
  if (n_hidden < 2) return;  // the first layer and the output layer need no GEMM
  // A pass of n < block rows (the last one of a call) runs the smallest plan of at least n rows, padded:
  // at most twice the work of that pass, and a bounded set of primitives, all made here so that
  // evaluations never create one.
  std::vector<std::size_t> sizes;
  for (std::size_t rows = 16; rows < block; rows *= 2) sizes.push_back(rows);
  sizes.push_back(block);
  for (std::size_t rows : sizes) {
    Plan plan;
    plan.rows = rows;
    for (std::size_t l = 1; l < n_hidden; ++l)
      plan.layers.emplace_back(
          gemm, static_cast<memory::dim>(rows), static_cast<memory::dim>(arch.hidden[l - 1]),
          static_cast<memory::dim>(arch.hidden[l]), Tag::ab, Tag::ba, /*with_bias=*/true,
          fused ? std::optional<detail::Eltwise>(eltwise(arch.activation)) : std::nullopt);
    plans.push_back(std::move(plan));
  }
  std::vector<const Gemm*> gemms;
  for (const Plan& plan : plans)
    for (const Gemm& layer : plan.layers) gemms.push_back(&layer);
  detail::share_scratchpad(gemms, scratchpad, "nsbi::kernels::PairwiseEvaluator::scratchpad");
}

const Plan& PairwiseEvaluator::Impl::plan_for(std::size_t rows) const {
  for (const Plan& plan : plans)
    if (plan.rows >= rows) return plan;
  NSBI_ASSERT(false, "nsbi::kernels::PairwiseEvaluator: a pass larger than the block");
}

// B_k = W_θ θ'_k + b for every member and θ point, rounded to float once.
void PairwiseEvaluator::Impl::prepare_theta(const ConstMatrix& theta) {
  const std::size_t n_theta = theta.extent(0);
  const std::size_t n_members = first.size();
  if (n_theta > theta_capacity) {
    theta_part = FloatMatrix();  // release before allocating the larger one
    theta_part =
        make_float_matrix("nsbi::kernels::PairwiseEvaluator::theta_part", n_members * n_theta, width0);
    theta_capacity = n_theta;
  }
  double* acc = accumulator.data();
  for (std::size_t m = 0; m < n_members; ++m) {
    const FirstLayer& layer = first[m];
    for (std::size_t k = 0; k < n_theta; ++k) {
      std::copy(layer.bias.begin(), layer.bias.end(), acc);
      for (std::size_t j = 0; j < n_parameters; ++j) {
        const double centred = theta(k, j) - mean[n_observables + j];
        const double* w = layer.theta_weights.data() + j * width0;
        NSBI_SIMD_LOOP
        for (std::size_t o = 0; o < width0; ++o) acc[o] += w[o] * centred;
      }
      float* row = &theta_part(m * theta_capacity + k, 0);
      for (std::size_t o = 0; o < width0; ++o) row[o] = static_cast<float>(acc[o]);
    }
  }
}

// A_i = W_x x'_i into event_part.
void PairwiseEvaluator::Impl::compute_event_part(std::size_t member, const ConstMatrix& x, std::size_t i) {
  const FirstLayer& layer = first[member];
  double* acc = accumulator.data();
  std::fill(acc, acc + width0, 0.0);
  for (std::size_t j = 0; j < n_observables; ++j) {
    const double centred = x(i, j) - mean[j];
    const double* w = layer.x_weights.data() + j * width0;
    NSBI_SIMD_LOOP
    for (std::size_t o = 0; o < width0; ++o) acc[o] += w[o] * centred;
  }
  float* a = event_part.data();
  for (std::size_t o = 0; o < width0; ++o) a[o] = static_cast<float>(acc[o]);
}

// logits(member, r) for the pairs begin + r, r < n, of the row-major pair index p = i K + k.
template <Activation A>
void PairwiseEvaluator::Impl::run_member(std::size_t member, const ConstMatrix& x, std::size_t begin,
                                         std::size_t n, std::size_t n_theta) {
  const std::size_t n_hidden = arch.hidden.size();
  const float* parameters_m = parameters[member].data();
  const float* output_weights = parameters_m + arch.weight_offset(n_hidden);
  const float output_bias = parameters_m[arch.bias_offset(n_hidden)];
  float* logit = &logits(member, 0);
  const float* theta_rows = &theta_part(member * theta_capacity, 0);
  float* h0 = buffers[0].data();
  const float* a = event_part.data();

  // Layer 0 for the pairs in θ-fastest order: one A_i per run of θ points, B_k rows from cache.
  std::size_t i = begin / n_theta;
  std::size_t k = begin % n_theta;
  for (std::size_t r = 0; r < n;) {
    compute_event_part(member, x, i);
    const std::size_t run = std::min(n - r, n_theta - k);
    if (n_hidden == 0) {
      for (std::size_t q = 0; q < run; ++q) logit[r + q] = a[0] + theta_rows[k + q];
    } else {
      Rows rows;
      rows.n = run;
      rows.width = width0;
      rows.a = a;
      rows.b = theta_rows + k * width0;
      rows.b_stride = width0;
      if (n_hidden == 1) {
        rows.w = output_weights;
        rows.bias = output_bias;
        rows.logits = logit + r;
      } else {
        rows.h = h0 + r * width0;
        rows.h_stride = width0;
      }
      activate_rows<A>(rows, row_scratch.data());
    }
    r += run;
    k = 0;
    ++i;
  }
  if (n_hidden < 2) return;

  // Hidden layers 1 .. L−1 on the padded pass; the activation passes and the output layer touch the n rows.
  const Plan& plan = plan_for(n);
  for (std::size_t l = 1; l < n_hidden; ++l) {
    const float* src = buffers[(l - 1) % 2].data();
    float* dst = buffers[l % 2].data();
    plan.layers[l - 1].run(gemm, src, parameters_m + arch.weight_offset(l), dst,
                           parameters_m + arch.bias_offset(l));
    gemm.wait();
    const bool last = l + 1 == n_hidden;
    if (fused && !last) continue;
    Rows rows;
    rows.n = n;
    rows.width = arch.hidden[l];
    rows.a = dst;
    rows.a_stride = rows.width;
    if (last) {
      rows.w = output_weights;
      rows.bias = output_bias;
      rows.logits = logit;
    } else {
      rows.h = dst;
      rows.h_stride = rows.width;
    }
    if (arch.skips(l)) rows.skip = src;
    if (fused)
      output_rows(rows);
    else
      activate_rows<A>(rows, row_scratch.data());
  }
}

// out(i, k) for the pairs of the pass: the member's logit, or the ensemble's log mean_m exp(logit_m) as
// max_m + log mean_m exp(logit_m − max_m) (LikelihoodRatioEstimator's EnsembleLogRatio).
void PairwiseEvaluator::Impl::store(const Matrix& out, std::size_t begin, std::size_t n,
                                    std::size_t n_theta) const {
  const std::size_t n_members = first.size();
  std::size_t i = begin / n_theta;
  std::size_t k = begin % n_theta;
  for (std::size_t r = 0; r < n; ++r) {
    if (n_members == 1) {
      out(i, k) = static_cast<double>(logits(0, r));
    } else {
      double largest = logits(0, r);
      for (std::size_t m = 1; m < n_members; ++m)
        largest = std::max(largest, static_cast<double>(logits(m, r)));
      double sum = 0.0;
      for (std::size_t m = 0; m < n_members; ++m)
        sum += std::exp(static_cast<double>(logits(m, r)) - largest);
      out(i, k) = largest + std::log(sum / static_cast<double>(n_members));
    }
    if (++k == n_theta) {
      k = 0;
      ++i;
    }
  }
}

PairwiseEvaluator::PairwiseEvaluator(const StandardizedEnsemble& record, std::size_t block_pairs,
                                     Precision precision)
    : impl_(std::make_unique<Impl>(precision)) {
  const std::size_t n_inputs = record.architecture.n_inputs;
  bool consistent = record.n_observables <= n_inputs && record.standardization_mean.size() == n_inputs &&
                    record.standardization_scale.size() == n_inputs && !record.members.empty();
  for (const std::vector<float>& member : record.members)
    consistent = consistent && member.size() == record.architecture.n_parameters();
  NSBI_ASSERT(consistent, "nsbi::kernels::PairwiseEvaluator: inconsistent ensemble (sizes)");
  if (block_pairs == 0) throw ConfigError("nsbi::kernels::PairwiseEvaluator: block_pairs must be positive");
  Impl& s = *impl_;
  s.arch = record.architecture;
  s.n_observables = record.n_observables;
  s.n_parameters = n_inputs - record.n_observables;
  s.block = block_pairs;
  s.width0 = s.arch.layer_outputs(0);
  s.widest = 1;
  for (std::size_t width : s.arch.hidden) s.widest = std::max(s.widest, width);
  s.mean = record.standardization_mean;
  s.fused = fused_post_op(s.arch);

  for (const std::vector<float>& member : record.members) {
    FirstLayer layer;
    layer.x_weights.resize(s.n_observables * s.width0);
    layer.theta_weights.resize(s.n_parameters * s.width0);
    layer.bias.resize(s.width0);
    const float* w = member.data() + s.arch.weight_offset(0);
    const float* b = member.data() + s.arch.bias_offset(0);
    for (std::size_t o = 0; o < s.width0; ++o) {
      for (std::size_t j = 0; j < n_inputs; ++j) {
        const double folded = static_cast<double>(w[o * n_inputs + j]) / record.standardization_scale[j];
        if (j < s.n_observables)
          layer.x_weights[j * s.width0 + o] = folded;
        else
          layer.theta_weights[(j - s.n_observables) * s.width0 + o] = folded;
      }
      layer.bias[o] = static_cast<double>(b[o]);
    }
    s.first.push_back(std::move(layer));
    FloatVector parameters = make_float_vector("nsbi::kernels::PairwiseEvaluator::parameters", member.size());
    Kokkos::deep_copy(parameters, Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                                      member.data(), member.size()));
    s.parameters.push_back(parameters);
  }

  s.accumulator.resize(s.width0);
  s.event_part = make_float_vector("nsbi::kernels::PairwiseEvaluator::event_part", s.width0);
  s.row_scratch = make_float_vector("nsbi::kernels::PairwiseEvaluator::row_scratch", s.widest);
  if (s.arch.hidden.size() >= 2) {  // with fewer, layer 0 goes straight to the logits
    // Zero-filled: the padding rows of a short pass go through the GEMMs and must hold finite values.
    for (FloatVector& buffer : s.buffers)
      buffer = FloatVector("nsbi::kernels::PairwiseEvaluator::activations", s.block * s.widest);
  }
  s.logits =
      FloatMatrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::kernels::PairwiseEvaluator::logits"),
                  record.members.size(), s.block);
  s.make_plans();
}

std::string PairwiseEvaluator::gemm_implementations() const { return impl_->gemm.implementations(); }

PairwiseEvaluator::~PairwiseEvaluator() = default;
PairwiseEvaluator::PairwiseEvaluator(PairwiseEvaluator&&) noexcept = default;
PairwiseEvaluator& PairwiseEvaluator::operator=(PairwiseEvaluator&&) noexcept = default;

std::size_t PairwiseEvaluator::n_observables() const { return impl_->n_observables; }
std::size_t PairwiseEvaluator::n_parameters() const { return impl_->n_parameters; }
std::uint64_t PairwiseEvaluator::rows_evaluated() const { return impl_->rows_evaluated; }

void PairwiseEvaluator::evaluate(const ExecutionSpace& space, const ConstMatrix& x, const ConstMatrix& theta,
                                 const Matrix& out) {
  Impl& s = *impl_;
  NSBI_ASSERT(x.extent(1) == s.n_observables && theta.extent(1) == s.n_parameters,
              "nsbi::kernels::PairwiseEvaluator::evaluate: x and theta need the model's observable and "
              "parameter columns");
  NSBI_ASSERT(out.extent(0) == x.extent(0) && out.extent(1) == theta.extent(0),
              "nsbi::kernels::PairwiseEvaluator::evaluate: out must be [events, theta points]");
  const std::size_t n_events = x.extent(0);
  const std::size_t n_theta = theta.extent(0);
  if (n_events == 0 || n_theta == 0) return;
  space.fence();  // x and theta may come from a kernel still running
  if (s.threads != gemm_threads()) s.make_plans();
  s.prepare_theta(theta);
  const std::size_t n_pairs = n_events * n_theta;
  const std::size_t n_members = s.first.size();
  for (std::size_t begin = 0; begin < n_pairs; begin += s.block) {
    const std::size_t n = std::min(s.block, n_pairs - begin);
    with_activation(s.arch.activation, [&](auto activation) {
      constexpr Activation A = decltype(activation)::value;
      for (std::size_t m = 0; m < n_members; ++m) s.run_member<A>(m, x, begin, n, n_theta);
    });
    s.store(out, begin, n, n_theta);
  }
  s.rows_evaluated += static_cast<std::uint64_t>(n_pairs) * n_members;
}

}  // namespace nsbi::kernels
