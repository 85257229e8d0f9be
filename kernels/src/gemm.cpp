#include "gemm.hpp"

#include <algorithm>

#include "nsbi/core/error.hpp"

namespace nsbi::kernels {

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::f32:
      return "f32";
    case Precision::bf16:
      return "bf16";
  }
  NSBI_ASSERT(false, "unknown nsbi::kernels::Precision");
}

std::optional<Precision> parse_precision(const std::string& name) {
  if (name == "f32") return Precision::f32;
  if (name == "bf16") return Precision::bf16;
  return std::nullopt;
}

std::string unsupported_reason(Precision precision) {
  return detail::unsupported_reason(precision, dnnl::get_effective_cpu_isa());
}

std::string to_string(Device device) {
  switch (device) {
    case Device::host:
      return "host";
  }
  NSBI_ASSERT(false, "unknown nsbi::kernels::Device");
}

namespace detail {
namespace {

using dnnl::memory;

std::string status_text(dnnl_status_t status) {
  switch (status) {
    case dnnl_success:
      return "success";
    case dnnl_out_of_memory:
      return "out of memory";
    case dnnl_invalid_arguments:
      return "invalid arguments";
    case dnnl_unimplemented:
      return "unimplemented (no implementation for these shapes, types and attributes)";
    case dnnl_iterator_ends:
      return "iterator ends";
    case dnnl_runtime_error:
      return "runtime error";
    case dnnl_not_required:
      return "not required";
  }
  return "status " + std::to_string(static_cast<int>(status));
}

[[noreturn]] void fail(const std::string& operation, const dnnl::error& e) {
  throw InternalError("nsbi::kernels::Gemm: oneDNN failed to " + operation + ": " + status_text(e.status) +
                      " (" + e.what() + "; a failure of oneDNN or its installation: please report it)");
}

// What the GEMMs read: the precision's element type. Accumulation, bias and output stay float.
memory::data_type input_type(Precision precision) {
  switch (precision) {
    case Precision::f32:
      return memory::data_type::f32;
    case Precision::bf16:
      return memory::data_type::bf16;
  }
  NSBI_ASSERT(false, "unknown nsbi::kernels::Precision");
}

// oneDNN's name of an instruction set, for messages (its DNNL_MAX_CPU_ISA spelling).
std::string isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::all:
      return "ALL";
    case dnnl::cpu_isa::sse41:
      return "SSE41";
    case dnnl::cpu_isa::avx:
      return "AVX";
    case dnnl::cpu_isa::avx2:
      return "AVX2";
    case dnnl::cpu_isa::avx512_mic:
      return "AVX512_MIC";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "AVX512_MIC_4OPS";
    case dnnl::cpu_isa::avx512_core:
      return "AVX512_CORE";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "AVX512_CORE_VNNI";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "AVX512_CORE_BF16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "AVX512_CORE_AMX";
    case dnnl::cpu_isa::avx2_vnni:
      return "AVX2_VNNI";
  }
  return "ISA " + std::to_string(static_cast<int>(isa));
}

std::string tag_name(Tag tag) { return tag == Tag::ab ? "ab" : tag == Tag::ba ? "ba" : "other"; }

}  // namespace

std::string unsupported_reason(Precision precision, dnnl::cpu_isa isa) {
  // oneDNN 2.6's instruction sets with bf16 dot products: AVX512-BF16 (vdpbf16ps) and AMX (tiles).
  if (precision == Precision::bf16 && isa != dnnl::cpu_isa::avx512_core_bf16 &&
      isa != dnnl::cpu_isa::avx512_core_amx)
    return "bf16 needs a CPU with AVX512-BF16 or AMX, and oneDNN reports the instruction set " +
           isa_name(isa) + " (emulated bf16 would be slower than f32): use f32";
  return "";
}

GemmContext::GemmContext(Device device, Precision precision) : precision_(precision) {
  NSBI_ASSERT(device == Device::host, "nsbi::kernels::GemmContext: only the host device exists");
  const std::string unsupported = kernels::unsupported_reason(precision);
  if (!unsupported.empty())
    throw InternalError("nsbi::kernels::GemmContext: " + unsupported +
                        " (the settings should have refused it)");
  try {
    engine_ = dnnl::engine(dnnl::engine::kind::cpu, 0);
    stream_ = dnnl::stream(engine_);
  } catch (const dnnl::error& e) {
    fail("create the " + to_string(device) + " engine and stream", e);
  }
}

std::string GemmContext::implementations() const {
  std::string names;
  for (const std::string& name : implementations_) names += (names.empty() ? "" : ", ") + name;
  return names;
}

void GemmContext::wait() const {
  try {
    stream_.wait();
  } catch (const dnnl::error& e) {
    fail("wait for the stream", e);
  }
}

Gemm::Gemm(const GemmContext& context, memory::dim m, memory::dim k, memory::dim n, Tag src_tag,
           Tag weights_tag, bool with_bias, std::optional<Eltwise> post_op)
    : with_bias_(with_bias) {
  const memory::data_type input = input_type(context.precision());
  description_ = to_string(context.precision()) + " matmul [" + std::to_string(m) + ", " + std::to_string(k) +
                 "] (" + tag_name(src_tag) + ") × [" + std::to_string(k) + ", " + std::to_string(n) + "] (" +
                 tag_name(weights_tag) + ")" + (with_bias ? " + bias" : "") +
                 (post_op ? ", eltwise post-op" : "");
  try {
    // bf16 inputs are copies made by reorders, so the matmul picks their layouts (`any`: the weights packed
    // as its kernels read them, the source row-major), and one pass converts, transposes and packs.
    const bool copied = input != memory::data_type::f32;
    const memory::desc src_md({m, k}, input, copied ? Tag::any : src_tag);
    const memory::desc weights_md({k, n}, input, copied ? Tag::any : weights_tag);
    const memory::desc dst_md({m, n}, memory::data_type::f32, Tag::ab);
    const memory::desc bias_md =
        with_bias ? memory::desc({1, n}, memory::data_type::f32, Tag::ab) : memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (post_op) {
      dnnl::post_ops post_ops;
      post_ops.append_eltwise(1.0f, post_op->algorithm, post_op->alpha, 0.0f);
      attr.set_post_ops(post_ops);
    }
    const dnnl::matmul::desc desc = with_bias ? dnnl::matmul::desc(src_md, weights_md, bias_md, dst_md)
                                              : dnnl::matmul::desc(src_md, weights_md, dst_md);
    const dnnl::matmul::primitive_desc pd(desc, attr, context.engine());
    primitive_ = dnnl::matmul(pd);
    context.implementations_.insert(pd.impl_info_str());
    const dnnl::engine& engine = context.engine();
    if (!copied) {
      src_ = memory(src_md, engine, DNNL_MEMORY_NONE);
      weights_ = memory(weights_md, engine, DNNL_MEMORY_NONE);
    } else {
      src_ = memory(pd.src_desc(), engine);  // the rounded copies, owned here
      weights_ = memory(pd.weights_desc(), engine);
      Rounding r;
      r.src_f32 = memory({{m, k}, memory::data_type::f32, src_tag}, engine, DNNL_MEMORY_NONE);
      r.weights_f32 = memory({{k, n}, memory::data_type::f32, weights_tag}, engine, DNNL_MEMORY_NONE);
      r.src = dnnl::reorder(r.src_f32, src_);
      r.weights = dnnl::reorder(r.weights_f32, weights_);
      r.src_args = {{DNNL_ARG_FROM, r.src_f32}, {DNNL_ARG_TO, src_}};
      r.weights_args = {{DNNL_ARG_FROM, r.weights_f32}, {DNNL_ARG_TO, weights_}};
      rounding_ = std::move(r);
    }
    dst_ = memory(dst_md, engine, DNNL_MEMORY_NONE);
    scratchpad_ = memory(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE);
    args_ = {{DNNL_ARG_SRC, src_},
             {DNNL_ARG_WEIGHTS, weights_},
             {DNNL_ARG_DST, dst_},
             {DNNL_ARG_SCRATCHPAD, scratchpad_}};
    if (with_bias) {
      bias_ = memory(bias_md, engine, DNNL_MEMORY_NONE);
      args_.emplace(DNNL_ARG_BIAS, bias_);
    }
  } catch (const dnnl::error& e) {
    fail("create the " + description_, e);
  }
}

std::size_t Gemm::scratchpad_bytes() const {
  try {
    return scratchpad_.get_desc().get_size();
  } catch (const dnnl::error& e) {
    fail("size the scratchpad of the " + description_, e);
  }
}

void Gemm::set_scratchpad(void* buffer) const {
  try {
    scratchpad_.set_data_handle(buffer);
  } catch (const dnnl::error& e) {
    fail("attach the scratchpad of the " + description_, e);
  }
}

void Gemm::run(const GemmContext& context, const float* src, const float* weights, float* dst,
               const float* bias) const {
  NSBI_ASSERT((bias != nullptr) == with_bias_, "nsbi::kernels::Gemm::run: a bias exactly when made with one");
  try {
    // oneDNN takes non-const handles; src, weights and bias are only read.
    if (rounding_) {
      rounding_->src_f32.set_data_handle(const_cast<float*>(src));
      rounding_->weights_f32.set_data_handle(const_cast<float*>(weights));
      rounding_->src.execute(context.stream(), rounding_->src_args);
      rounding_->weights.execute(context.stream(), rounding_->weights_args);
    } else {
      src_.set_data_handle(const_cast<float*>(src));
      weights_.set_data_handle(const_cast<float*>(weights));
    }
    if (with_bias_) bias_.set_data_handle(const_cast<float*>(bias));
    dst_.set_data_handle(dst);
    primitive_.execute(context.stream(), args_);
  } catch (const dnnl::error& e) {
    fail("run the " + description_, e);
  }
}

void share_scratchpad(const std::vector<const Gemm*>& gemms, Kokkos::View<char*, Kokkos::HostSpace>& buffer,
                      const std::string& label) {
  std::size_t bytes = 1;
  for (const Gemm* gemm : gemms) bytes = std::max(bytes, gemm->scratchpad_bytes());
  if (buffer.extent(0) < bytes)
    buffer =
        Kokkos::View<char*, Kokkos::HostSpace>(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), bytes);
  for (const Gemm* gemm : gemms) gemm->set_scratchpad(buffer.data());
}

}  // namespace detail
}  // namespace nsbi::kernels
