#pragma once
// nsbi's one oneDNN GEMM wrapper, internal to kernels/src (Mlp, TangentMlp, PairwiseEvaluator). It is the
// precision seam (the GEMMs' element type comes from the context's kernels::Precision, chosen nowhere else)
// and the device seam (the context is the one place that creates a oneDNN engine and stream). Every oneDNN
// call is checked: a dnnl::error becomes nsbi::InternalError naming the operation, its shapes and oneDNN's
// status (a oneDNN failure is a bug or a broken installation, never bad input).

#include <Kokkos_Core.hpp>
#include <cstddef>
#include <dnnl.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "nsbi/kernels/device.hpp"
#include "nsbi/kernels/precision.hpp"

namespace nsbi::kernels::detail {

using Tag = dnnl::memory::format_tag;

/// unsupported_reason with the instruction set given instead of oneDNN's (tests force an older one).
std::string unsupported_reason(Precision precision, dnnl::cpu_isa isa);

/// The oneDNN engine and stream one network's GEMMs run on, and the precision they compute in.
class GemmContext {
 public:
  /// InternalError unless this machine computes `precision` natively (unsupported_reason; the jobs check it
  /// first, naming the setting).
  GemmContext(Device device, Precision precision);
  Precision precision() const noexcept { return precision_; }
  /// The oneDNN implementations of the GEMMs made with this context so far ("brg:avx512_core_bf16"),
  /// distinct names joined by ", " in alphabetical order: what outputs record.
  std::string implementations() const;
  const dnnl::engine& engine() const noexcept { return engine_; }
  const dnnl::stream& stream() const noexcept { return stream_; }
  /// Waits for the GEMMs run so far: what follows reads their output.
  void wait() const;

 private:
  friend class Gemm;
  Precision precision_;
  dnnl::engine engine_;
  mutable dnnl::stream stream_;                    // a handle: waiting on it changes nothing a caller sees
  mutable std::set<std::string> implementations_;  // a record of what was made, read by nothing here
};

/// An elementwise function that oneDNN applies to a GEMM's output (a post-op): dst = algorithm(dst; alpha).
struct Eltwise {
  dnnl::algorithm algorithm;
  float alpha;
};

/// One oneDNN matmul dst [m, n] = src [m, k] × weights [k, n] (+ bias [1, n]) (then a post-op), with its
/// memory objects, whose data handles are pointed at the caller's buffers on every run; the argument map is
/// built once. dst is row-major ("ab"); src and weights are "ab" (row-major) or "ba" (column-major: read
/// transposed, never materialised). The caller owns the scratchpad (one buffer for all its GEMMs:
/// share_scratchpad), so running allocates nothing. In bf16 the caller's float src and weights are first
/// rounded (oneDNN reorders, same layout) into bf16 buffers the Gemm owns; bias, accumulation and dst stay
/// float.
class Gemm {
 public:
  Gemm(const GemmContext& context, dnnl::memory::dim m, dnnl::memory::dim k, dnnl::memory::dim n, Tag src_tag,
       Tag weights_tag, bool with_bias = false, std::optional<Eltwise> post_op = std::nullopt);

  std::size_t scratchpad_bytes() const;
  void set_scratchpad(void* buffer) const;

  /// Submits the GEMM to the context's stream (context.wait() before reading dst). `bias` is given exactly
  /// when the GEMM was made with_bias. src, weights and bias are only read.
  void run(const GemmContext& context, const float* src, const float* weights, float* dst,
           const float* bias = nullptr) const;

 private:
  /// "f32 matmul [m, k] (ab) × [k, n] (ba) + bias, eltwise post-op", for messages.
  std::string describe() const;

  // The bf16 copies of src and weights: reorders from the caller's float buffers (src_f32_, weights_f32_)
  // into the matmul's inputs (src_, weights_). Empty in f32, where src_ and weights_ are the caller's.
  struct Rounding {
    dnnl::reorder src, weights;
    dnnl::memory src_f32, weights_f32;
    std::unordered_map<int, dnnl::memory> src_args, weights_args;
  };

  std::string description_;
  bool with_bias_;
  dnnl::matmul primitive_;
  dnnl::memory src_, weights_, bias_, dst_, scratchpad_;
  std::optional<Rounding> rounding_;
  std::unordered_map<int, dnnl::memory> args_;
};

/// Points every one of `gemms` at `buffer`, first grown (labelled `label`) to the largest scratchpad they
/// need.
void share_scratchpad(const std::vector<const Gemm*>& gemms, Kokkos::View<char*, Kokkos::HostSpace>& buffer,
                      const std::string& label);

}  // namespace nsbi::kernels::detail
