// Training throughput of the kernels: one full step (forward, BCE, backward, AdamW) of the classifier in
// samples/s and achieved GFLOP/s, next to the machine's SGEMM throughput through the same oneDNN matmul,
// each with 1 and 2 GEMM threads. benchmarks/train_vs_pytorch.py runs it against PyTorch.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>
#include <dnnl.hpp>
#include <vector>

#include "nsbi/core/rng.hpp"
#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/tangent_mlp.hpp"
#include "nsbi/kernels/threads.hpp"
#include "sgemm_benchmark.hpp"

namespace {

using nsbi::kernels::Activation;
using nsbi::kernels::MlpArchitecture;

// SGEMM as the forward pass runs it, m = 2048, k = n = 512: the roofline the training step is compared with
// (the bf16 one for bf16 steps).
void sgemm(benchmark::State& state, nsbi::kernels::Precision precision) {
  nsbi::kernels::set_gemm_threads(static_cast<int>(state.range(0)));
  nsbi::bench::run_sgemm(state, 2048, 512, 512, precision);
}

// One training step on a fixed batch of standard-normal inputs and random labels (what PyTorch gets too),
// its GEMMs reading `precision` (the label names the oneDNN implementation that ran).
void training_step(benchmark::State& state, const MlpArchitecture& arch, std::size_t batch,
                   nsbi::kernels::Precision precision = nsbi::kernels::Precision::f32) {
  nsbi::kernels::set_gemm_threads(static_cast<int>(state.range(0)));
  nsbi::kernels::Mlp mlp(arch, nsbi::kernels::Device::host, precision);
  nsbi::FloatVector parameters("parameters", arch.n_parameters());
  nsbi::FloatVector gradients("gradients", arch.n_parameters());
  nsbi::kernels::initialise_parameters(arch, 1, parameters);
  nsbi::kernels::AdamWState optimizer(arch.n_parameters());
  const nsbi::kernels::AdamWConfig config;
  nsbi::FloatMatrix inputs = nsbi::make_float_matrix("inputs", batch, arch.n_inputs);
  nsbi::FloatVector labels = nsbi::make_float_vector("labels", batch);
  nsbi::FloatVector logits = nsbi::make_float_vector("logits", batch);
  nsbi::FloatVector logit_gradients = nsbi::make_float_vector("logit_gradients", batch);
  const std::size_t n_inputs = arch.n_inputs;
  Kokkos::parallel_for(
      "bench_training::data", batch, KOKKOS_LAMBDA(std::size_t i) {
        nsbi::rng::Stream stream(2, nsbi::rng::Purpose::simulate, i);
        for (std::size_t j = 0; j < n_inputs; ++j) inputs(i, j) = static_cast<float>(stream.normal());
        labels(i) = stream.uniform() < 0.5 ? 1.0f : 0.0f;
      });
  const auto step = [&] {
    mlp.forward(parameters, inputs, logits);
    nsbi::kernels::bce_with_logits(logits, labels, nsbi::FloatVector(), static_cast<double>(batch),
                                   logit_gradients);
    mlp.backward(parameters, logit_gradients, gradients);
    nsbi::kernels::adamw_step(config, optimizer, parameters, gradients);
  };
  step();  // warm-up: the plan (buffers, primitives) is made here, as in training's first step
  Kokkos::fence();
  for (auto _ : state) {
    step();
    Kokkos::fence();
  }
  state.SetLabel(nsbi::kernels::to_string(precision) + " " + mlp.gemm_implementations());
  const double steps = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(steps * static_cast<double>(batch)));
  // Forward 2 B Σ n_in n_out flops, backward twice that (weight and input gradients).
  state.counters["GFLOP/s"] = benchmark::Counter(
      6.0 * static_cast<double>(batch) * static_cast<double>(arch.n_weights()) * steps * 1e-9,
      benchmark::Counter::kIsRate);
}

// One step of a score-augmented loss (CASCAL: cross-entropy plus the score term on the class-1 rows) with P
// tangents through TangentMlp, on the same data as training_step: about (1 + P) times its cost, since every
// layer's GEMMs run on B (1 + P) rows. Items are examples, so samples/s compares directly with training_step.
void tangent_step(benchmark::State& state, const MlpArchitecture& arch, std::size_t batch) {
  nsbi::kernels::set_gemm_threads(static_cast<int>(state.range(0)));
  const auto n_tangents = static_cast<std::size_t>(state.range(1));
  nsbi::kernels::TangentMlp mlp(arch);
  nsbi::FloatVector parameters("parameters", arch.n_parameters());
  nsbi::FloatVector gradients("gradients", arch.n_parameters());
  nsbi::kernels::initialise_parameters(arch, 1, parameters);
  nsbi::kernels::AdamWState optimizer(arch.n_parameters());
  const nsbi::kernels::AdamWConfig config;
  nsbi::FloatMatrix inputs = nsbi::make_float_matrix("inputs", batch, arch.n_inputs);
  nsbi::FloatMatrix directions("directions", n_tangents, arch.n_inputs);
  nsbi::FloatVector labels = nsbi::make_float_vector("labels", batch);
  nsbi::FloatMatrix scores = nsbi::make_float_matrix("scores", batch, n_tangents);
  nsbi::FloatVector logits = nsbi::make_float_vector("logits", batch);
  nsbi::FloatMatrix tangents = nsbi::make_float_matrix("tangents", batch, n_tangents);
  nsbi::FloatVector logit_gradients = nsbi::make_float_vector("logit_gradients", batch);
  nsbi::FloatMatrix tangent_gradients = nsbi::make_float_matrix("tangent_gradients", batch, n_tangents);
  const std::size_t n_inputs = arch.n_inputs;
  Kokkos::parallel_for(
      "bench_training::tangent_data", batch, KOKKOS_LAMBDA(std::size_t i) {
        nsbi::rng::Stream stream(2, nsbi::rng::Purpose::simulate, i);
        for (std::size_t j = 0; j < n_inputs; ++j) inputs(i, j) = static_cast<float>(stream.normal());
        labels(i) = stream.uniform() < 0.5 ? 1.0f : 0.0f;
        for (std::size_t p = 0; p < n_tangents; ++p) scores(i, p) = static_cast<float>(stream.normal());
      });
  // The θ inputs are the last P columns: the directions are their unit vectors over a standard deviation.
  Kokkos::parallel_for(
      "bench_training::directions", n_tangents,
      KOKKOS_LAMBDA(std::size_t p) { directions(p, n_inputs - n_tangents + p) = 0.5f; });
  const auto step = [&] {
    mlp.forward(parameters, inputs, directions, logits, tangents);
    nsbi::kernels::bce_with_logits(logits, labels, nsbi::FloatVector(), static_cast<double>(batch),
                                   logit_gradients);
    nsbi::kernels::score_mse(tangents, scores, labels, 1.0, 0.5 * static_cast<double>(batch),
                             tangent_gradients);
    mlp.backward(parameters, logit_gradients, tangent_gradients, gradients);
    nsbi::kernels::adamw_step(config, optimizer, parameters, gradients);
  };
  step();
  Kokkos::fence();
  for (auto _ : state) {
    step();
    Kokkos::fence();
  }
  const double steps = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(steps * static_cast<double>(batch)));
  // The GEMM work: the Mlp step's on B (1 + P) rows (layer 0's forward on B rows only, negligible for n_in =
  // 4).
  state.counters["GFLOP/s"] = benchmark::Counter(6.0 * static_cast<double>(batch * (1 + n_tangents)) *
                                                     static_cast<double>(arch.n_weights()) * steps * 1e-9,
                                                 benchmark::Counter::kIsRate);
}

const MlpArchitecture large{4, {512, 512, 512, 512}, Activation::relu};  // gaussian2d: 2 x + 2 θ
const MlpArchitecture small{4, {64, 64, 64}, Activation::relu};
// The smooth activations the score-based losses need: transcendental functions in the Kokkos kernels.
const MlpArchitecture large_silu{4, {512, 512, 512, 512}, Activation::silu};
const MlpArchitecture large_tanh{4, {512, 512, 512, 512}, Activation::tanh};
const MlpArchitecture large_softplus{4, {512, 512, 512, 512}, Activation::softplus};

}  // namespace

BENCHMARK_CAPTURE(sgemm, f32, nsbi::kernels::Precision::f32)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(sgemm, bf16, nsbi::kernels::Precision::bf16)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, large_4x512_b2048, large, 2048)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, small_3x64_b256, small, 256)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, large_4x512_b2048_bf16, large, 2048, nsbi::kernels::Precision::bf16)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, small_3x64_b256_bf16, small, 256, nsbi::kernels::Precision::bf16)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, large_silu, large_silu, 2048)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, large_tanh, large_tanh, 2048)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(training_step, large_softplus, large_softplus, 2048)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime();
// The score-augmented step with P = 1 and 2 tangents (gaussian2d has 2 parameters), one GEMM thread: compare
// samples/s with training_step/large_silu/threads:1 (expected ratio about 1 + P).
BENCHMARK_CAPTURE(tangent_step, large_silu, large_silu, 2048)
    ->ArgNames({"threads", "P"})
    ->Args({1, 1})
    ->Args({1, 2})
    ->UseRealTime();
BENCHMARK_CAPTURE(tangent_step, small_silu_3x64_b256, MlpArchitecture{4, {64, 64, 64}, Activation::silu}, 256)
    ->ArgNames({"threads", "P"})
    ->Args({1, 2})
    ->UseRealTime();
