// Throughput of PairwiseEvaluator, the inner loop of scans and toy campaigns: log r̂(x_i | θ_k) for toys of
// 20 events on a 21 × 21 θ grid, in network rows (pairs) per second and achieved GFLOP/s (2 × n_weights
// flops per row), next to oneDNN's SGEMM on the shape that dominates it (block rows × width × width), so
// that the fraction of GEMM throughput is visible. One GEMM thread (flat MPI runs one rank per core), so
// the rates are per CPU second (Google Benchmark's default): on the development machine's 2 shared cores,
// other programs take wall time from a benchmark but little of its CPU time. The argument is the pass size
// (block_pairs) or the SGEMM's rows.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>
#include <dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/pairwise_evaluator.hpp"
#include "nsbi/kernels/threads.hpp"
#include "nsbi/training/model_file.hpp"
#include "sgemm_benchmark.hpp"

namespace {

using nsbi::kernels::Activation;

constexpr std::size_t events_per_toy = 20;
constexpr std::size_t grid_points = 21 * 21;

// A gaussian2d-like model (x1, x2; mu2, rho12), one member: weights as training starts them, biases
// random (so that no unit is trivially zero), a non-trivial standardisation.
nsbi::training::ModelRecord gaussian2d_model(std::vector<std::size_t> hidden, Activation activation) {
  nsbi::training::ModelRecord record;
  record.simulator = "gaussian2d";
  record.observable_names = {"x1", "x2"};
  record.parameter_names = {"mu2", "rho12"};
  record.parameter_min = {-1.0, -0.9};
  record.parameter_max = {1.0, 0.9};
  record.reference = "theta: {mu2: 0, rho12: 0}";
  record.loss = "bce";
  record.architecture = {4, std::move(hidden), activation};
  record.standardization_mean = {0.0, 0.1, 0.0, 0.0};
  record.standardization_scale = {1.0, 1.3, 0.58, 0.52};
  const nsbi::FloatVector parameters =
      nsbi::make_float_vector("parameters", record.architecture.n_parameters());
  nsbi::kernels::initialise_parameters(record.architecture, 1, parameters);
  std::vector<float> flat(parameters.extent(0));
  Kokkos::deep_copy(
      Kokkos::View<float*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(flat.data(), flat.size()), parameters);
  std::mt19937 engine(2);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  const nsbi::kernels::MlpArchitecture& arch = record.architecture;
  for (std::size_t l = 0; l < arch.n_layers(); ++l)
    for (std::size_t o = 0; o < arch.layer_outputs(l); ++o) flat[arch.bias_offset(l) + o] = uniform(engine);
  record.members.push_back(flat);
  record.history.resize(1);
  return record;
}

// `toys` toys of 20 events against the 21 × 21 grid of (mu2, rho12) per evaluate call.
void pairwise(benchmark::State& state, std::vector<std::size_t> hidden, Activation activation,
              std::size_t toys) {
  const auto block = static_cast<std::size_t>(state.range(0));
  nsbi::kernels::set_gemm_threads(1);
  const nsbi::training::ModelRecord record = gaussian2d_model(std::move(hidden), activation);
  nsbi::kernels::PairwiseEvaluator evaluator(record.ensemble(), block);
  const std::size_t n_events = toys * events_per_toy;
  const nsbi::Matrix x = nsbi::make_matrix("x", n_events, 2);
  const nsbi::Matrix theta = nsbi::make_matrix("theta", grid_points, 2);
  const nsbi::Matrix out = nsbi::make_matrix("out", n_events, grid_points);
  std::mt19937_64 engine(3);
  std::normal_distribution<double> normal;
  for (std::size_t i = 0; i < n_events; ++i) {
    x(i, 0) = normal(engine);
    x(i, 1) = 0.1 + 1.3 * normal(engine);
  }
  for (std::size_t a = 0; a < 21; ++a)
    for (std::size_t b = 0; b < 21; ++b) {
      theta(a * 21 + b, 0) = -1.0 + 0.1 * static_cast<double>(a);
      theta(a * 21 + b, 1) = -0.9 + 0.09 * static_cast<double>(b);
    }
  evaluator.evaluate(x, theta, out);  // warm-up: buffers for this grid, caches
  Kokkos::fence();
  const std::uint64_t before = evaluator.rows_evaluated();
  for (auto _ : state) {
    evaluator.evaluate(x, theta, out);
    Kokkos::fence();
  }
  benchmark::DoNotOptimize(out.data());
  const auto rows = static_cast<double>(evaluator.rows_evaluated() - before);
  const double flops_per_row = 2.0 * static_cast<double>(record.architecture.n_weights());
  state.SetItemsProcessed(static_cast<std::int64_t>(rows));
  state.counters["rows/s"] = benchmark::Counter(rows, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_row * rows * 1e-9, benchmark::Counter::kIsRate);
}

// SGEMM of the evaluator's hidden layers (m the pass size, width × width): the roofline of the pairwise
// benchmark with the same width.
void sgemm(benchmark::State& state, dnnl::memory::dim width) {
  nsbi::kernels::set_gemm_threads(1);
  nsbi::bench::run_sgemm(state, state.range(0), width, width);
}

const std::vector<std::size_t> small{64, 64, 64};
const std::vector<std::size_t> large{512, 512, 512, 512};

}  // namespace

// 64 toys per call: x [1280, 2] × θ [441, 2], 564480 rows.
BENCHMARK_CAPTURE(pairwise, silu_3x64, small, Activation::silu, 64)
    ->ArgName("block")
    ->Arg(512)
    ->Arg(1024)
    ->Arg(2048)
    ->Arg(4096)
    ->Arg(16384);
BENCHMARK_CAPTURE(pairwise, relu_3x64, small, Activation::relu, 64)->ArgName("block")->Arg(2048)->Arg(16384);
BENCHMARK_CAPTURE(pairwise, tanh_3x64, small, Activation::tanh, 64)->ArgName("block")->Arg(2048)->Arg(16384);
BENCHMARK_CAPTURE(pairwise, softplus_3x64, small, Activation::softplus, 64)
    ->ArgName("block")
    ->Arg(2048)
    ->Arg(16384);
BENCHMARK_CAPTURE(sgemm, 64x64, 64)->ArgName("m")->Arg(512)->Arg(1024)->Arg(2048)->Arg(4096)->Arg(16384);
// 2 toys per call: 17640 rows, 28 GFLOP.
BENCHMARK_CAPTURE(pairwise, silu_4x512, large, Activation::silu, 2)
    ->ArgName("block")
    ->Arg(256)
    ->Arg(512)
    ->Arg(2048)
    ->Arg(16384);
BENCHMARK_CAPTURE(pairwise, relu_4x512, large, Activation::relu, 2)->ArgName("block")->Arg(512)->Arg(16384);
BENCHMARK_CAPTURE(sgemm, 512x512, 512)->ArgName("m")->Arg(256)->Arg(512)->Arg(2048)->Arg(16384);
