#include "nsbi/kernels/mlp.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>

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

static_assert(Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible,
              "nsbi::kernels::Mlp runs its GEMMs through oneDNN on host memory; a device build needs cuBLAS");

std::size_t MlpArchitecture::layer_inputs(std::size_t layer) const {
  NSBI_ASSERT(layer < n_layers(), "layer index out of range");
  return layer == 0 ? n_inputs : hidden[layer - 1];
}

std::size_t MlpArchitecture::layer_outputs(std::size_t layer) const {
  NSBI_ASSERT(layer < n_layers(), "layer index out of range");
  return layer < hidden.size() ? hidden[layer] : 1;
}

std::size_t MlpArchitecture::weight_offset(std::size_t layer) const {
  NSBI_ASSERT(layer <= n_layers(), "layer index out of range");
  std::size_t offset = 0;
  for (std::size_t l = 0; l < layer; ++l) offset += (layer_inputs(l) + 1) * layer_outputs(l);
  return offset;
}

std::size_t MlpArchitecture::bias_offset(std::size_t layer) const {
  return weight_offset(layer) + layer_inputs(layer) * layer_outputs(layer);
}

std::size_t MlpArchitecture::n_parameters() const { return weight_offset(n_layers()); }

std::size_t MlpArchitecture::n_weights() const {
  std::size_t n = 0;
  for (std::size_t l = 0; l < n_layers(); ++l) n += layer_inputs(l) * layer_outputs(l);
  return n;
}

void MlpArchitecture::validate() const {
  if (n_inputs == 0)
    throw ConfigError("nsbi::kernels::MlpArchitecture: the network needs at least one input");
  for (std::size_t l = 0; l < hidden.size(); ++l)
    if (hidden[l] == 0)
      throw ConfigError("nsbi::kernels::MlpArchitecture: hidden layer " + std::to_string(l) + " has width 0");
  for (std::size_t l = 1; residual && l < hidden.size(); ++l)
    if (hidden[l] != hidden[0])
      throw ConfigError(
          "nsbi::kernels::MlpArchitecture: a residual network needs hidden layers of one width; "
          "layer " +
          std::to_string(l) + " has " + std::to_string(hidden[l]) + ", layer 0 " + std::to_string(hidden[0]));
}

namespace {

// Kernels loop over rows with the columns of a row in SIMD lanes (rows are contiguous). The output layer
// (one output: a GEMV, which oneDNN runs at a fraction of its GEMM speed) is fused into the kernels of the
// last hidden layer, or has its own kernels when there is no hidden layer.

// a = f(z + b) for one hidden layer, a = skip + f(z + b) for a residual one (skip: the layer's input). z
// holds X W^T on entry; it is overwritten with z + b when the derivative needs the pre-activation (always in
// a residual layer, where a is not f(z)), otherwise a and z are the same buffer. The last hidden layer also
// writes the logits.
template <Activation A, bool last, bool residual>
struct BiasActivation {
  FloatMatrix z;
  FloatMatrix a;
  ConstFloatVector bias;
  OutputLayer output;
  FloatVector logits;
  ConstFloatMatrix skip;  // residual only

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row) const {
    const std::size_t n = bias.extent(0);
    float* z_row = &z(row, 0);
    float* a_row = &a(row, 0);
    const float* b = bias.data();
    if constexpr (residual) {
      const float* skip_row = &skip(row, 0);
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < n; ++j) {
        const float pre = z_row[j] + b[j];
        z_row[j] = pre;
        a_row[j] = skip_row[j] + activate<A>(pre);
      }
    } else {
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < n; ++j) {
        const float pre = z_row[j] + b[j];
        if constexpr (needs_preactivation(A)) z_row[j] = pre;
        a_row[j] = activate<A>(pre);
      }
    }
    if constexpr (last) logits(row) = output.logit(a_row);
  }
};

// Logistic regression (no hidden layer): logits = x w_L + b_L.
struct LinearForward {
  ConstFloatMatrix inputs;
  OutputLayer output;
  FloatVector logits;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row) const {
    logits(row) = output.logit(&inputs(row, 0));
  }
};

// For one hidden layer of width n: dz = da · f'(z) (d = d loss / d), and sums[0, n) = Σ_i dz_i = db.
// Below the last hidden layer, da comes from the data-gradient GEMM and dz replaces it in place. In the
// last one, da = s_i w_L (s_i = d loss / d logit_i) is formed here, and also sums[n, 2n) = Σ_i s_i a_i
// = dw_L and sums[2n] = Σ_i s_i = db_L. A residual layer keeps da in `gradient` (it also flows to the
// layer's input through the skip) and writes dz to `pre_gradient`; its f' is computed from z alone (a is not
// f(z)).
template <Activation A, bool last, bool residual>
struct ActivationBackward : ColumnSums {
  std::size_t width;
  FloatMatrix gradient;
  ConstFloatMatrix z;
  ConstFloatMatrix a;
  ConstFloatVector logit_gradients;
  ConstFloatVector output_weights;
  FloatMatrix pre_gradient;  // residual only: where dz goes

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row, value_type sums) const {
    float* g_row = &gradient(row, 0);
    const float* z_row = &z(row, 0);
    const float* a_row = &a(row, 0);
    if constexpr (residual) {
      float* dz_row = &pre_gradient(row, 0);
      const float s = last ? logit_gradients(row) : 0.0f;
      const float* w = output_weights.data();
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < width; ++j) {
        const float da = last ? s * w[j] : g_row[j];
        const float d = da * activation_derivative<A>(z_row[j], activate<A>(z_row[j]));
        g_row[j] = da;
        dz_row[j] = d;
        sums[j] += d;
        if constexpr (last) sums[width + j] += s * a_row[j];
      }
      if constexpr (last) sums[2 * width] += s;
    } else if constexpr (last) {
      const float s = logit_gradients(row);
      const float* w = output_weights.data();
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < width; ++j) {
        const float dz = (s * w[j]) * activation_derivative<A>(z_row[j], a_row[j]);
        g_row[j] = dz;
        sums[j] += dz;
        sums[width + j] += s * a_row[j];
      }
      sums[2 * width] += s;
    } else {
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < width; ++j) {
        const float dz = g_row[j] * activation_derivative<A>(z_row[j], a_row[j]);
        g_row[j] = dz;
        sums[j] += dz;
      }
    }
  }
};

// Logistic regression's backward: sums[0, n) = Σ_i s_i x_i (d loss/d w_L), sums[n] = Σ_i s_i, and, when
// asked for, input gradients s_i w_L.
struct LinearBackward : ColumnSums {
  ConstFloatMatrix inputs;
  ConstFloatVector logit_gradients;
  ConstFloatVector output_weights;
  FloatMatrix input_gradients;  // empty: not asked for

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row, value_type sums) const {
    const std::size_t n = inputs.extent(1);
    const float s = logit_gradients(row);
    const float* x_row = &inputs(row, 0);
    NSBI_SIMD_LOOP
    for (std::size_t j = 0; j < n; ++j) sums[j] += s * x_row[j];
    sums[n] += s;
    if (input_gradients.data() != nullptr)
      for (std::size_t j = 0; j < n; ++j) input_gradients(row, j) = s * output_weights(j);
  }
};

// Buffers and primitives for one batch size. Hidden layer l keeps z_l (= a_l unless the activation needs the
// pre-activation), a_l and d loss / d a_l (turned into d loss / d z_l in place during backward, except in
// a residual layer, which writes d loss / d z_l to pre_gradient). The GEMMs are those of the hidden layers;
// the output layer has none (see OutputLayer).
struct Plan {
  std::size_t batch = 0;
  std::vector<FloatMatrix> pre, post, post_gradient;
  std::vector<FloatMatrix> pre_gradient;       // residual layers only (empty views elsewhere)
  std::vector<Gemm> forward;                   // a_{l-1} W_l^T
  std::vector<Gemm> weight_grad;               // dZ_l^T a_{l-1}: dZ [B, n_out] read transposed ("ba")
  std::vector<std::optional<Gemm>> data_grad;  // dZ_l W_l; layer 0's only once input gradients are asked for
  HostSums sums;                               // the backward kernels' column sums
  Kokkos::View<char*, Kokkos::HostSpace> scratchpad;
  ConstFloatMatrix inputs;  // of the last forward pass
};

}  // namespace

struct Mlp::Impl {
  Impl(Device device, Precision precision) : gemm(device, precision) {}
  GemmContext gemm;
  int threads = 0;                    // the thread count the plans' primitives were made for
  std::map<std::size_t, Plan> plans;  // by batch size
  Plan* last_forward = nullptr;       // whose buffers hold the last forward pass

  Plan& plan_for(const MlpArchitecture& arch, std::size_t batch);
  void make_data_grad(const MlpArchitecture& arch, Plan& plan, std::size_t layer);
  void attach_scratchpad(Plan& plan);
};

void Mlp::Impl::make_data_grad(const MlpArchitecture& arch, Plan& plan, std::size_t layer) {
  plan.data_grad[layer].emplace(gemm, static_cast<memory::dim>(plan.batch),
                                static_cast<memory::dim>(arch.layer_outputs(layer)),
                                static_cast<memory::dim>(arch.layer_inputs(layer)), Tag::ab, Tag::ab);
}

void Mlp::Impl::attach_scratchpad(Plan& plan) {
  std::vector<const Gemm*> gemms;
  for (const Gemm& g : plan.forward) gemms.push_back(&g);
  for (const Gemm& g : plan.weight_grad) gemms.push_back(&g);
  for (const auto& g : plan.data_grad)
    if (g) gemms.push_back(&*g);
  detail::share_scratchpad(gemms, plan.scratchpad, "nsbi::kernels::Mlp::scratchpad");
}

Plan& Mlp::Impl::plan_for(const MlpArchitecture& arch, std::size_t batch) {
  if (threads != gemm_threads()) {
    // oneDNN sizes a primitive's work split for the thread count at its creation.
    plans.clear();
    last_forward = nullptr;
    threads = gemm_threads();
  }
  const auto found = plans.find(batch);
  if (found != plans.end()) return found->second;

  Plan& plan = plans[batch];
  plan.batch = batch;
  const std::size_t n_hidden = arch.hidden.size();
  std::size_t sums = arch.n_inputs + 1;
  const auto b = static_cast<memory::dim>(batch);
  for (std::size_t l = 0; l < n_hidden; ++l) {
    const std::size_t width = arch.hidden[l];
    sums = std::max(sums, 2 * width + 1);
    const std::string layer = std::to_string(l);
    plan.post.push_back(make_float_matrix("nsbi::kernels::Mlp::a" + layer, batch, width));
    plan.pre.push_back(needs_preactivation(arch.activation) || arch.skips(l)
                           ? make_float_matrix("nsbi::kernels::Mlp::z" + layer, batch, width)
                           : plan.post.back());
    plan.post_gradient.push_back(make_float_matrix("nsbi::kernels::Mlp::grad_a" + layer, batch, width));
    plan.pre_gradient.push_back(arch.skips(l)
                                    ? make_float_matrix("nsbi::kernels::Mlp::grad_z" + layer, batch, width)
                                    : FloatMatrix());
    const auto n_in = static_cast<memory::dim>(arch.layer_inputs(l));
    const auto n_out = static_cast<memory::dim>(width);
    // W_l [n_out, n_in] row-major is W_l^T [n_in, n_out] in "ba": no transpose is ever materialised.
    plan.forward.emplace_back(gemm, b, n_in, n_out, Tag::ab, Tag::ba);
    plan.weight_grad.emplace_back(gemm, n_out, b, n_in, Tag::ba, Tag::ab);
  }
  plan.sums = HostSums("nsbi::kernels::Mlp::sums", sums);
  plan.data_grad.resize(n_hidden);
  for (std::size_t l = 1; l < n_hidden; ++l) make_data_grad(arch, plan, l);
  attach_scratchpad(plan);
  return plan;
}

Mlp::Mlp(MlpArchitecture architecture, Device device, Precision precision)
    : architecture_(std::move(architecture)), impl_(std::make_unique<Impl>(device, precision)) {
  architecture_.validate();
}

std::string Mlp::gemm_implementations() const { return impl_->gemm.implementations(); }

Mlp::~Mlp() = default;
Mlp::Mlp(Mlp&&) noexcept = default;
Mlp& Mlp::operator=(Mlp&&) noexcept = default;

void Mlp::forward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                  const ConstFloatMatrix& inputs, const FloatVector& logits) {
  const MlpArchitecture& arch = architecture_;
  const std::size_t batch = inputs.extent(0);
  NSBI_ASSERT(batch > 0 && logits.extent(0) == batch,
              "nsbi::kernels::Mlp::forward: inputs and logits differ in rows");
  NSBI_ASSERT(inputs.extent(1) == arch.n_inputs && inputs.span_is_contiguous(),
              "nsbi::kernels::Mlp::forward: inputs must be a contiguous [B, n_inputs] matrix");
  NSBI_ASSERT(parameters.extent(0) == arch.n_parameters(),
              "nsbi::kernels::Mlp::forward: wrong parameter count");
  Plan& plan = impl_->plan_for(arch, batch);
  const std::size_t n_hidden = arch.hidden.size();
  const OutputLayer output = output_layer(arch, parameters);
  const RowPolicy rows(space, 0, batch);
  if (n_hidden == 0)
    Kokkos::parallel_for("nsbi::kernels::Mlp::linear_forward", rows, LinearForward{inputs, output, logits});
  space.fence();  // oneDNN reads the inputs, which may come from a kernel still running
  for (std::size_t l = 0; l < n_hidden; ++l) {
    const float* src = l == 0 ? inputs.data() : plan.post[l - 1].data();
    plan.forward[l].run(impl_->gemm, src, parameters.data() + arch.weight_offset(l), plan.pre[l].data());
    impl_->gemm.wait();
    const auto bias =
        Kokkos::subview(parameters, std::make_pair(arch.bias_offset(l), arch.weight_offset(l + 1)));
    const ConstFloatMatrix skip = arch.skips(l) ? ConstFloatMatrix(plan.post[l - 1]) : ConstFloatMatrix();
    with_activation_and_skip(arch.activation, arch.skips(l), [&](auto activation, auto residual) {
      constexpr Activation A = decltype(activation)::value;
      constexpr bool R = decltype(residual)::value;
      if (l + 1 < n_hidden)
        Kokkos::parallel_for(
            "nsbi::kernels::Mlp::bias_activation", rows,
            BiasActivation<A, false, R>{plan.pre[l], plan.post[l], bias, output, logits, skip});
      else
        Kokkos::parallel_for(
            "nsbi::kernels::Mlp::bias_activation_output", rows,
            BiasActivation<A, true, R>{plan.pre[l], plan.post[l], bias, output, logits, skip});
    });
    space.fence();
  }
  plan.inputs = inputs;
  impl_->last_forward = &plan;
}

void Mlp::backward(const ExecutionSpace& space, const ConstFloatVector& parameters,
                   const ConstFloatVector& logit_gradients, const FloatVector& gradients,
                   const FloatMatrix& input_gradients) {
  const MlpArchitecture& arch = architecture_;
  Plan* plan_pointer = impl_->last_forward;
  NSBI_ASSERT(plan_pointer && impl_->threads == gemm_threads(),
              "nsbi::kernels::Mlp::backward: no forward pass with the current thread count before it");
  Plan& plan = *plan_pointer;
  NSBI_ASSERT(logit_gradients.extent(0) == plan.batch,
              "nsbi::kernels::Mlp::backward: logit gradients and the forward batch differ in rows");
  NSBI_ASSERT(gradients.extent(0) == arch.n_parameters() && parameters.extent(0) == arch.n_parameters(),
              "nsbi::kernels::Mlp::backward: wrong parameter count");
  const bool want_inputs = input_gradients.data() != nullptr;
  NSBI_ASSERT(
      !want_inputs || (input_gradients.extent(0) == plan.batch &&
                       input_gradients.extent(1) == arch.n_inputs && input_gradients.span_is_contiguous()),
      "nsbi::kernels::Mlp::backward: input gradients must be a contiguous [B, n_inputs] matrix");
  const std::size_t n_hidden = arch.hidden.size();
  if (want_inputs && n_hidden > 0 && !plan.data_grad[0]) {
    impl_->make_data_grad(arch, plan, 0);
    impl_->attach_scratchpad(plan);
  }
  const RowPolicy rows(space, 0, plan.batch);
  const OutputLayer output = output_layer(arch, parameters);
  float* g = gradients.data();
  const std::size_t output_weights = arch.weight_offset(n_hidden);
  const std::size_t output_bias = arch.bias_offset(n_hidden);
  space.fence();  // the logit gradients may come from a kernel still running

  if (n_hidden == 0) {
    const std::size_t n = arch.n_inputs;
    const HostSums sums = Kokkos::subview(plan.sums, std::make_pair(std::size_t{0}, n + 1));
    Kokkos::parallel_reduce(
        "nsbi::kernels::Mlp::linear_backward", rows,
        LinearBackward{{n + 1}, plan.inputs, logit_gradients, output.weights, input_gradients}, sums);
    store_sums(sums, 0, n, g + output_weights);
    store_sums(sums, n, 1, g + output_bias);
    return;
  }

  for (std::size_t l = n_hidden; l-- > 0;) {
    const std::size_t width = arch.hidden[l];
    const bool last = l + 1 == n_hidden;
    const std::size_t n_sums = last ? 2 * width + 1 : width;
    const HostSums sums = Kokkos::subview(plan.sums, std::make_pair(std::size_t{0}, n_sums));
    const bool skips = arch.skips(l);
    const FloatMatrix& da = plan.post_gradient[l];
    const FloatMatrix& dz = skips ? plan.pre_gradient[l] : da;
    with_activation_and_skip(arch.activation, skips, [&](auto activation, auto residual) {
      constexpr Activation A = decltype(activation)::value;
      constexpr bool R = decltype(residual)::value;
      if (last)
        Kokkos::parallel_reduce(
            "nsbi::kernels::Mlp::activation_backward_output", rows,
            ActivationBackward<A, true, R>{
                {n_sums}, width, da, plan.pre[l], plan.post[l], logit_gradients, output.weights, dz},
            sums);
      else
        Kokkos::parallel_reduce(
            "nsbi::kernels::Mlp::activation_backward", rows,
            ActivationBackward<A, false, R>{
                {n_sums}, width, da, plan.pre[l], plan.post[l], logit_gradients, output.weights, dz},
            sums);
    });
    space.fence();
    store_sums(sums, 0, width, g + arch.bias_offset(l));
    if (last) {
      store_sums(sums, width, width, g + output_weights);
      store_sums(sums, 2 * width, 1, g + output_bias);
    }
    const float* src = l == 0 ? plan.inputs.data() : plan.post[l - 1].data();
    plan.weight_grad[l].run(impl_->gemm, dz.data(), src, g + arch.weight_offset(l));
    if (l > 0)
      plan.data_grad[l]->run(impl_->gemm, dz.data(), parameters.data() + arch.weight_offset(l),
                             plan.post_gradient[l - 1].data());
    else if (want_inputs)
      plan.data_grad[0]->run(impl_->gemm, dz.data(), parameters.data() + arch.weight_offset(0),
                             input_gradients.data());
    impl_->gemm.wait();  // the next kernel reads what the GEMMs wrote
    if (skips) {
      Kokkos::parallel_for("nsbi::kernels::Mlp::skip_gradient", rows, AddRows{plan.post_gradient[l - 1], da});
      space.fence();
    }
  }
}

}  // namespace nsbi::kernels
