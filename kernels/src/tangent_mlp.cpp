#include "nsbi/kernels/tangent_mlp.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "gemm.hpp"
#include "mlp_parts.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/kernel_math.hpp"
#include "nsbi/kernels/threads.hpp"
#include "simd.hpp"

namespace nsbi::kernels {

using detail::AddRows;
using detail::ColumnSums;
using detail::Gemm;
using detail::GemmContext;
using detail::HostSums;
using detail::output_layer;
using detail::OutputLayer;
using detail::RowPolicy;
using detail::store_sums;
using detail::Tag;
using dnnl::memory;

static_assert(
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible,
    "nsbi::kernels::TangentMlp runs its GEMMs through oneDNN on host memory; a device build needs cuBLAS");

namespace {

// Kernels loop over examples: example i owns primal row i and tangent rows B + i P + p of every stacked
// matrix, so that f'(z) and f''(z) of a row are evaluated once for its P tangents. The output layer (one
// output) is fused into the last hidden layer's kernels, as in mlp.cpp.

// One hidden layer forward for example i. On entry the primal row of z holds a W^T and its tangent rows hold
// ȧ_{l-1} W^T, except in the first layer, whose tangents W_0 d_p are the same for every example and come from
// direction_z [P, width]. Writes z + b, a = f(z + b), slope = f'(z + b), ż (first layer) and ȧ = f' ż; the
// last hidden layer also writes the logit and its tangents. A residual layer (never the first) adds its
// input's stacked rows: a = a_{l-1} + f(z + b), ȧ = ȧ_{l-1} + f' ż.
template <Activation A, bool first, bool last, bool residual>
struct TangentForward {
  std::size_t batch;
  std::size_t n_tangents;
  FloatMatrix z, a, slope;
  ConstFloatMatrix direction_z;
  ConstFloatVector bias;
  OutputLayer output;
  FloatVector logits;
  FloatMatrix tangents;
  ConstFloatMatrix skip;  // residual only: the stacked a_{l-1}

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i) const {
    const std::size_t n = bias.extent(0);
    float* z_row = &z(i, 0);
    float* a_row = &a(i, 0);
    float* d_row = &slope(i, 0);
    const float* b = bias.data();
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) {
      const float pre = z_row[j] + b[j];
      const float post = activate<A>(pre);
      z_row[j] = pre;
      a_row[j] = post;
      d_row[j] = activation_derivative<A>(pre, post);
    }
    if constexpr (residual) {
      const float* skip_row = &skip(i, 0);
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < n; ++j) a_row[j] += skip_row[j];
    }
    if constexpr (last) logits(i) = output.logit(a_row);
    for (std::size_t p = 0; p < n_tangents; ++p) {
      const std::size_t row = batch + i * n_tangents + p;
      float* tz_row = &z(row, 0);
      float* ta_row = &a(row, 0);
      if constexpr (first) {
        const float* dir_row = &direction_z(p, 0);
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < n; ++j) {
          tz_row[j] = dir_row[j];
          ta_row[j] = d_row[j] * dir_row[j];
        }
      } else if constexpr (residual) {
        const float* skip_row = &skip(row, 0);
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < n; ++j) ta_row[j] = d_row[j] * tz_row[j] + skip_row[j];
      } else {
        NSBI_SIMD_LOOP
        for (std::size_t j = 0; j < n; ++j) ta_row[j] = d_row[j] * tz_row[j];
      }
      if constexpr (last) tangents(i, p) = output.dot(ta_row);
    }
  }
};

// Logistic regression: s = w · x + b, ṡ_p = w · d_p.
struct LinearForward {
  ConstFloatMatrix inputs;
  ConstFloatMatrix directions;
  OutputLayer output;
  FloatVector logits;
  FloatMatrix tangents;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i) const {
    logits(i) = output.logit(&inputs(i, 0));
    for (std::size_t p = 0; p < directions.extent(0); ++p) tangents(i, p) = output.dot(&directions(p, 0));
  }
};

// One hidden layer of width n backward for example i (d = ∂L/∂). Turns da into dz in place in every row:
//   tangent rows: dż = f'(z) dȧ;  primal row: dz = f'(z) da + f''(z) Σ_p ż_p dȧ_p,
// and sums[0, n) = Σ_i dz_i = db (tangent rows have no bias). Below the last hidden layer da and dȧ come from
// the data-gradient GEMM. In the last one they are formed here from the logit's gradient c_i and the
// tangents' b_ip: da = c_i w_L, dȧ_p = b_ip w_L; and sums[n, 2n) = Σ_i (c_i a_i + Σ_p b_ip ȧ_ip) = dw_L,
// sums[2n] = Σ_i c_i = db_L. In the first layer, whose tangent rows come from the directions rather than a
// previous layer, sums[first_offset + p n + j] = Σ_i dż_ipj, from which dW_0 gets its tangent part.
// A residual layer writes dz and dż to `out` instead and keeps da and dȧ in `gradient` (the last one writes
// them there), for the skip's share of its input's gradient; its f'' is computed from z alone (a is not
// f(z)). Elsewhere `out` is `gradient`.
template <Activation A, bool first, bool last, bool residual>
struct TangentBackward : ColumnSums {
  std::size_t batch;
  std::size_t n_tangents;
  std::size_t width;
  std::size_t first_offset;
  FloatMatrix gradient;
  FloatMatrix out;
  ConstFloatMatrix z, a, slope;
  FloatMatrix curvature;  // f''(z) of the primal rows: scratch shared by all layers
  ConstFloatVector logit_gradients;
  ConstFloatMatrix tangent_gradients;
  ConstFloatVector output_weights;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, value_type sums) const {
    const std::size_t n = width;
    float* g_row = &gradient(i, 0);
    float* o_row = &out(i, 0);
    const float* z_row = &z(i, 0);
    const float* a_row = &a(i, 0);
    const float* d_row = &slope(i, 0);
    float* c_row = &curvature(i, 0);
    const float* w = output_weights.data();
    float c = 0.0f;
    if constexpr (last) c = logit_gradients(i);
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) {
      c_row[j] = activation_second_derivative<A>(z_row[j], residual ? activate<A>(z_row[j]) : a_row[j]);
      float da = 0.0f;
      if constexpr (last) {
        da = c * w[j];
        sums[n + j] += c * a_row[j];
        if constexpr (residual) g_row[j] = da;
      } else {
        da = g_row[j];
      }
      o_row[j] = d_row[j] * da;
    }
    for (std::size_t p = 0; p < n_tangents; ++p) {
      const std::size_t row = batch + i * n_tangents + p;
      float* tg_row = &gradient(row, 0);
      float* to_row = &out(row, 0);
      const float* tz_row = &z(row, 0);
      float b = 0.0f;
      if constexpr (last) b = tangent_gradients(i, p);
      const float* ta_row = &a(row, 0);
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < n; ++j) {
        float dta = 0.0f;
        if constexpr (last) {
          dta = b * w[j];
          sums[n + j] += b * ta_row[j];
          if constexpr (residual) tg_row[j] = dta;
        } else {
          dta = tg_row[j];
        }
        o_row[j] += c_row[j] * tz_row[j] * dta;
        const float dtz = d_row[j] * dta;
        to_row[j] = dtz;
        if constexpr (first) sums[first_offset + p * n + j] += dtz;
      }
    }
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) sums[j] += o_row[j];
    if constexpr (last) sums[2 * n] += c;
  }
};

// Logistic regression's backward: sums[0, n) = Σ_i (c_i x_i + Σ_p b_ip d_p) = dw_L, sums[n] = Σ_i c_i.
struct LinearBackward : ColumnSums {
  ConstFloatMatrix inputs;
  ConstFloatMatrix directions;
  ConstFloatVector logit_gradients;
  ConstFloatMatrix tangent_gradients;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, value_type sums) const {
    const std::size_t n = inputs.extent(1);
    const float c = logit_gradients(i);
    const float* x_row = &inputs(i, 0);
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) sums[j] += c * x_row[j];
    for (std::size_t p = 0; p < directions.extent(0); ++p) {
      const float b = tangent_gradients(i, p);
      const float* d_row = &directions(p, 0);
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < n; ++j) sums[j] += b * d_row[j];
    }
    sums[n] += c;
  }
};

// Buffers and primitives for one (batch size, P). Hidden layer l keeps the stacked z_l and ż_l, a_l and ȧ_l,
// their gradients (turned from ∂/∂a into ∂/∂z in place during backward, or written to pre_gradient in a
// residual layer), and f'(z_l) of the primal rows.
struct Plan {
  std::size_t batch = 0;
  std::size_t n_tangents = 0;
  std::vector<FloatMatrix> pre, post, post_gradient, slope;
  std::vector<FloatMatrix> pre_gradient;  // residual layers only (empty views elsewhere)
  FloatMatrix curvature;                  // [B, max width]
  FloatMatrix direction_z;                // D W_0^T [P, width_0]
  std::vector<Gemm> forward;      // layer 0: X W_0^T (B rows); then stacked a_{l-1} W_l^T (B (1 + P) rows)
  std::vector<Gemm> weight_grad;  // dZ_l^T a_{l-1}, dZ read transposed ("ba"); layer 0: primal rows only
  std::vector<Gemm> data_grad;    // dZ_l W_l for l >= 1
  std::vector<Gemm> direction;    // D W_0^T
  HostSums sums;
  Kokkos::View<char*, Kokkos::HostSpace> scratchpad;
  ConstFloatMatrix inputs, directions;  // of the last forward pass
};

}  // namespace

struct TangentMlp::Impl {
  Impl(Device device, Precision precision) : gemm(device, precision) {}
  GemmContext gemm;
  int threads = 0;
  std::map<std::pair<std::size_t, std::size_t>, Plan> plans;  // by (batch size, P)
  Plan* last_forward = nullptr;

  Plan& plan_for(const MlpArchitecture& arch, std::size_t batch, std::size_t n_tangents);
};

Plan& TangentMlp::Impl::plan_for(const MlpArchitecture& arch, std::size_t batch, std::size_t n_tangents) {
  if (threads != gemm_threads()) {
    // oneDNN sizes a primitive's work split for the thread count at its creation.
    plans.clear();
    last_forward = nullptr;
    threads = gemm_threads();
  }
  const auto key = std::make_pair(batch, n_tangents);
  const auto found = plans.find(key);
  if (found != plans.end()) return found->second;

  Plan& plan = plans[key];
  plan.batch = batch;
  plan.n_tangents = n_tangents;
  const std::size_t n_hidden = arch.hidden.size();
  const std::size_t rows = batch * (1 + n_tangents);
  std::size_t sums = arch.n_inputs + 1;
  std::size_t max_width = 1;
  for (std::size_t l = 0; l < n_hidden; ++l) {
    const std::size_t width = arch.hidden[l];
    max_width = std::max(max_width, width);
    sums = std::max(sums, width + (l + 1 == n_hidden ? width + 1 : 0) + (l == 0 ? n_tangents * width : 0));
    const std::string layer = std::to_string(l);
    plan.pre.push_back(make_float_matrix("nsbi::kernels::TangentMlp::z" + layer, rows, width));
    plan.post.push_back(make_float_matrix("nsbi::kernels::TangentMlp::a" + layer, rows, width));
    plan.post_gradient.push_back(make_float_matrix("nsbi::kernels::TangentMlp::grad_a" + layer, rows, width));
    plan.pre_gradient.push_back(
        arch.skips(l) ? make_float_matrix("nsbi::kernels::TangentMlp::grad_z" + layer, rows, width)
                      : FloatMatrix());
    plan.slope.push_back(make_float_matrix("nsbi::kernels::TangentMlp::slope" + layer, batch, width));
    const auto n_in = static_cast<memory::dim>(arch.layer_inputs(l));
    const auto n_out = static_cast<memory::dim>(width);
    const auto m = static_cast<memory::dim>(l == 0 ? batch : rows);
    plan.forward.emplace_back(gemm, m, n_in, n_out, Tag::ab, Tag::ba);
    plan.weight_grad.emplace_back(gemm, n_out, m, n_in, Tag::ba, Tag::ab);
    if (l > 0)
      plan.data_grad.emplace_back(gemm, static_cast<memory::dim>(rows), n_out, n_in, Tag::ab, Tag::ab);
  }
  if (n_hidden > 0) {
    plan.curvature = make_float_matrix("nsbi::kernels::TangentMlp::curvature", batch, max_width);
    plan.direction_z =
        make_float_matrix("nsbi::kernels::TangentMlp::direction_z", n_tangents, arch.hidden[0]);
    plan.direction.emplace_back(gemm, static_cast<memory::dim>(n_tangents),
                                static_cast<memory::dim>(arch.n_inputs),
                                static_cast<memory::dim>(arch.hidden[0]), Tag::ab, Tag::ba);
  }
  plan.sums = HostSums("nsbi::kernels::TangentMlp::sums", sums);
  std::vector<const Gemm*> all;
  for (const auto* gemms : {&plan.forward, &plan.weight_grad, &plan.data_grad, &plan.direction})
    for (const Gemm& g : *gemms) all.push_back(&g);
  detail::share_scratchpad(all, plan.scratchpad, "nsbi::kernels::TangentMlp::scratchpad");
  return plan;
}

TangentMlp::TangentMlp(MlpArchitecture architecture, Device device, Precision precision)
    : architecture_(std::move(architecture)), impl_(std::make_unique<Impl>(device, precision)) {
  architecture_.validate();
  if (architecture_.activation == Activation::relu && !architecture_.hidden.empty())
    throw ConfigError("nsbi::kernels::TangentMlp: activation '" + activation_name(architecture_.activation) +
                      "' cannot train a score term (its second derivative is zero almost everywhere and "
                      "undefined at 0); use tanh, silu or softplus");
}

std::string TangentMlp::gemm_implementations() const { return impl_->gemm.implementations(); }

TangentMlp::~TangentMlp() = default;
TangentMlp::TangentMlp(TangentMlp&&) noexcept = default;
TangentMlp& TangentMlp::operator=(TangentMlp&&) noexcept = default;

namespace {

// Calls body(first, last) with compile-time booleans.
template <class Body>
void with_position(bool first, bool last, Body&& body) {
  using True = std::true_type;
  using False = std::false_type;
  if (first && last) return body(True{}, True{});
  if (first) return body(True{}, False{});
  if (last) return body(False{}, True{});
  return body(False{}, False{});
}

}  // namespace

void TangentMlp::forward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                         const ConstFloatMatrix& inputs, const ConstFloatMatrix& directions,
                         const FloatVector& logits, const FloatMatrix& tangents) {
  const MlpArchitecture& arch = architecture_;
  const std::size_t batch = inputs.extent(0);
  const std::size_t n_tangents = directions.extent(0);
  NSBI_ASSERT(batch > 0 && logits.extent(0) == batch && tangents.extent(0) == batch,
              "nsbi::kernels::TangentMlp::forward: inputs, logits and tangents differ in rows");
  NSBI_ASSERT(inputs.extent(1) == arch.n_inputs && inputs.span_is_contiguous(),
              "nsbi::kernels::TangentMlp::forward: inputs must be a contiguous [B, n_inputs] matrix");
  NSBI_ASSERT(n_tangents > 0 && directions.extent(1) == arch.n_inputs && directions.span_is_contiguous() &&
                  tangents.extent(1) == n_tangents,
              "nsbi::kernels::TangentMlp::forward: directions must be a contiguous [P >= 1, n_inputs] matrix "
              "and tangents [B, P]");
  NSBI_ASSERT(parameters.extent(0) == arch.n_parameters(),
              "nsbi::kernels::TangentMlp::forward: wrong parameter count");
  Plan& plan = impl_->plan_for(arch, batch, n_tangents);
  const std::size_t n_hidden = arch.hidden.size();
  const OutputLayer output = output_layer(arch, parameters);
  const RowPolicy examples(space, 0, batch);
  if (n_hidden == 0)
    Kokkos::parallel_for("nsbi::kernels::TangentMlp::linear_forward", examples,
                         LinearForward{inputs, directions, output, logits, tangents});
  space.fence();  // oneDNN reads the inputs, which may come from a kernel still running
  if (n_hidden > 0)
    plan.direction[0].run(impl_->gemm, directions.data(), parameters.data() + arch.weight_offset(0),
                          plan.direction_z.data());
  for (std::size_t l = 0; l < n_hidden; ++l) {
    const float* src = l == 0 ? inputs.data() : plan.post[l - 1].data();
    plan.forward[l].run(impl_->gemm, src, parameters.data() + arch.weight_offset(l), plan.pre[l].data());
    impl_->gemm.wait();
    const auto bias =
        Kokkos::subview(parameters, std::make_pair(arch.bias_offset(l), arch.weight_offset(l + 1)));
    const ConstFloatMatrix skip = arch.skips(l) ? ConstFloatMatrix(plan.post[l - 1]) : ConstFloatMatrix();
    with_activation_and_skip(arch.activation, arch.skips(l), [&](auto activation, auto residual) {
      constexpr Activation A = decltype(activation)::value;
      with_position(l == 0, l + 1 == n_hidden, [&](auto first, auto last) {
        Kokkos::parallel_for(
            "nsbi::kernels::TangentMlp::forward_layer", examples,
            TangentForward<A, decltype(first)::value, decltype(last)::value, decltype(residual)::value>{
                batch, n_tangents, plan.pre[l], plan.post[l], plan.slope[l], plan.direction_z, bias, output,
                logits, tangents, skip});
      });
    });
    space.fence();
  }
  plan.inputs = inputs;
  plan.directions = directions;
  impl_->last_forward = &plan;
}

void TangentMlp::backward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                          const ConstFloatVector& logit_gradients, const ConstFloatMatrix& tangent_gradients,
                          const FloatVector& gradients) {
  const MlpArchitecture& arch = architecture_;
  Plan* plan_pointer = impl_->last_forward;
  NSBI_ASSERT(plan_pointer && impl_->threads == gemm_threads(),
              "nsbi::kernels::TangentMlp::backward: no forward pass with the current thread count before it");
  Plan& plan = *plan_pointer;
  const std::size_t batch = plan.batch;
  const std::size_t n_tangents = plan.n_tangents;
  NSBI_ASSERT(
      logit_gradients.extent(0) == batch && tangent_gradients.extent(0) == batch &&
          tangent_gradients.extent(1) == n_tangents,
      "nsbi::kernels::TangentMlp::backward: logit and tangent gradients must be [B] and [B, P] of the "
      "forward pass");
  NSBI_ASSERT(gradients.extent(0) == arch.n_parameters() && parameters.extent(0) == arch.n_parameters(),
              "nsbi::kernels::TangentMlp::backward: wrong parameter count");
  const std::size_t n_hidden = arch.hidden.size();
  const RowPolicy examples(space, 0, batch);
  const OutputLayer output = output_layer(arch, parameters);
  float* g = gradients.data();
  const std::size_t output_weights = arch.weight_offset(n_hidden);
  const std::size_t output_bias = arch.bias_offset(n_hidden);
  space.fence();  // the gradients may come from a kernel still running

  if (n_hidden == 0) {
    const std::size_t n = arch.n_inputs;
    const HostSums sums = Kokkos::subview(plan.sums, std::make_pair(std::size_t{0}, n + 1));
    Kokkos::parallel_reduce(
        "nsbi::kernels::TangentMlp::linear_backward", examples,
        LinearBackward{{n + 1}, plan.inputs, plan.directions, logit_gradients, tangent_gradients}, sums);
    store_sums(sums, 0, n, g + output_weights);
    store_sums(sums, n, 1, g + output_bias);
    return;
  }

  for (std::size_t l = n_hidden; l-- > 0;) {
    const std::size_t width = arch.hidden[l];
    const bool first = l == 0;
    const bool last = l + 1 == n_hidden;
    const std::size_t first_offset = last ? 2 * width + 1 : width;
    const std::size_t n_sums = first_offset + (first ? n_tangents * width : 0);
    const HostSums sums = Kokkos::subview(plan.sums, std::make_pair(std::size_t{0}, n_sums));
    const bool skips = arch.skips(l);
    const FloatMatrix& da = plan.post_gradient[l];
    const FloatMatrix& dz = skips ? plan.pre_gradient[l] : da;
    with_activation_and_skip(arch.activation, skips, [&](auto activation, auto residual) {
      constexpr Activation A = decltype(activation)::value;
      with_position(first, last, [&](auto first_c, auto last_c) {
        Kokkos::parallel_reduce(
            "nsbi::kernels::TangentMlp::backward_layer", examples,
            TangentBackward<A, decltype(first_c)::value, decltype(last_c)::value, decltype(residual)::value>{
                {n_sums},
                batch,
                n_tangents,
                width,
                first_offset,
                da,
                dz,
                plan.pre[l],
                plan.post[l],
                plan.slope[l],
                plan.curvature,
                logit_gradients,
                tangent_gradients,
                output.weights},
            sums);
      });
    });
    space.fence();
    store_sums(sums, 0, width, g + arch.bias_offset(l));
    if (last) {
      store_sums(sums, width, width, g + output_weights);
      store_sums(sums, 2 * width, 1, g + output_bias);
    }
    const float* src = first ? plan.inputs.data() : plan.post[l - 1].data();
    plan.weight_grad[l].run(impl_->gemm, dz.data(), src, g + arch.weight_offset(l));
    if (!first)
      plan.data_grad[l - 1].run(impl_->gemm, dz.data(), parameters.data() + arch.weight_offset(l),
                                plan.post_gradient[l - 1].data());
    impl_->gemm.wait();  // the next kernel reads what the GEMMs wrote
    if (skips) {
      Kokkos::parallel_for("nsbi::kernels::TangentMlp::skip_gradient",
                           RowPolicy(space, 0, batch * (1 + n_tangents)),
                           AddRows{plan.post_gradient[l - 1], da});
      space.fence();
    }
    if (first) {
      // The tangent rows of layer 0 are W_0 d_p: dW_0 += Σ_p (Σ_i dż_ip) d_p^T, in double on top of the
      // GEMM's primal part (P × width × n_inputs: negligible next to the GEMMs).
      const std::size_t n_in = arch.n_inputs;
      const auto directions = Kokkos::create_mirror_view(plan.directions);
      Kokkos::deep_copy(directions, plan.directions);
      float* w0 = g + arch.weight_offset(0);
      for (std::size_t o = 0; o < width; ++o)
        for (std::size_t k = 0; k < n_in; ++k) {
          double sum = w0[o * n_in + k];
          for (std::size_t p = 0; p < n_tangents; ++p)
            sum += sums(first_offset + p * width + o) * static_cast<double>(directions(p, k));
          w0[o * n_in + k] = static_cast<float>(sum);
        }
    }
  }
}

}  // namespace nsbi::kernels
