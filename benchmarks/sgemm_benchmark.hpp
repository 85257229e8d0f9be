#pragma once
// The roofline the network benchmarks are compared with: oneDNN's SGEMM C [m, n] = A [m, k] × B [k, n] with B
// read transposed, as the classifier's layers run it, on the GEMM threads set by the caller.
#include <benchmark/benchmark.h>

#include <dnnl.hpp>
#include <unordered_map>
#include <vector>

namespace nsbi::bench {

inline void run_sgemm(benchmark::State& state, dnnl::memory::dim m, dnnl::memory::dim k,
                      dnnl::memory::dim n) {
  using Tag = dnnl::memory::format_tag;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc a_md({m, k}, dnnl::memory::data_type::f32, Tag::ab);
  const dnnl::memory::desc b_md({k, n}, dnnl::memory::data_type::f32, Tag::ba);
  const dnnl::memory::desc c_md({m, n}, dnnl::memory::data_type::f32, Tag::ab);
  const dnnl::matmul gemm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), engine));
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  const std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data())},
                                                   {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data())},
                                                   {DNNL_ARG_DST, dnnl::memory(c_md, engine, c.data())}};
  gemm.execute(stream, args);  // warm-up: first-touch and caches
  stream.wait();
  for (auto _ : state) {
    gemm.execute(stream, args);
    stream.wait();
  }
  benchmark::DoNotOptimize(c.data());
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(m * k * n) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

}  // namespace nsbi::bench
