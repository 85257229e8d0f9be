#pragma once
// The roofline the network benchmarks are compared with: oneDNN's SGEMM C [m, n] = A [m, k] × B [k, n] with B
// read transposed, through the GEMM wrapper the classifier's layers use (kernels/src/gemm.hpp), on the GEMM
// threads set by the caller; in bf16, the wrapper's rounding of A and B included, as the layers pay it.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>
#include <vector>

#include "gemm.hpp"

namespace nsbi::bench {

inline void run_sgemm(benchmark::State& state, dnnl::memory::dim m, dnnl::memory::dim k, dnnl::memory::dim n,
                      kernels::Precision precision = kernels::Precision::f32) {
  using kernels::detail::Tag;
  const kernels::detail::GemmContext context(kernels::Device::host, precision);
  const kernels::detail::Gemm gemm(context, m, k, n, Tag::ab, Tag::ba);
  Kokkos::View<char*, Kokkos::HostSpace> scratchpad;
  kernels::detail::share_scratchpad({&gemm}, scratchpad, "nsbi::bench::sgemm::scratchpad");
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  gemm.run(context, a.data(), b.data(), c.data());  // warm-up: first-touch and caches
  context.wait();
  for (auto _ : state) {
    gemm.run(context, a.data(), b.data(), c.data());
    context.wait();
  }
  benchmark::DoNotOptimize(c.data());
  state.SetLabel(kernels::to_string(precision) + " " + context.implementations());
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(m * k * n) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

}  // namespace nsbi::bench
