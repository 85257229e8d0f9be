#pragma once
// Turns a per-sample model (a small struct with KOKKOS_INLINE_FUNCTION members) into a Simulator whose
// work is one Kokkos kernel per block. A model provides:
//   static constexpr int n_parameters, n_observables;
//   static constexpr int vector_candidates;  // candidates per rejection step in the vectorised pass
//   template <int max_candidates>
//   KOKKOS_FORCEINLINE_FUNCTION bool sample(const rng::StreamBlocks&, const double* theta, double* x) const;
//   KOKKOS_INLINE_FUNCTION double log_likelihood(const double* theta, const double* x) const;  // if exact
// and a static `SimulatorInfo info()`. sample() draws from fixed blocks of the row's stream, without branches
// on data, so that rows vectorise; its rejection steps use rng::first_accepted<max_candidates>, and it
// returns false when one ran out of candidates (see rng::unlimited_candidates).

#include <string>
#include <type_traits>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

/// Rows per work item of the row kernels: a SIMD-friendly chunk on the host, one row per thread on a GPU.
template <class Space>
constexpr std::size_t rows_per_chunk =
    Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible ? 16 : 1;

/// Work item `chunk` of a row kernel covers rows [chunk * rows_per_chunk, ...) up to n_rows.
template <class Space>
std::size_t n_chunks(std::size_t n_rows) {
  return (n_rows + rows_per_chunk<Space> - 1) / rows_per_chunk<Space>;
}

template <class Model>
struct SampleKernel {
  static constexpr std::size_t chunk_rows = rows_per_chunk<ExecutionSpace>;
  Model model;
  ConstMatrix theta;
  Matrix x;
  std::uint64_t first_index;
  std::uint64_t seed;

  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t chunk) const {
    const std::size_t begin = chunk * chunk_rows;
    const std::size_t count = theta.extent(0) - begin < chunk_rows ? theta.extent(0) - begin : chunk_rows;
    std::uint32_t complete[chunk_rows];  // not bool: GCC sizes SIMD lanes by the narrowest type in the loop
    if (count == chunk_rows) {
      NSBI_SIMD_LOOP
      for (std::size_t j = 0; j < chunk_rows; ++j)
        complete[j] = sample_row<Model::vector_candidates>(begin + j);
    } else {
      for (std::size_t j = 0; j < count; ++j) complete[j] = sample_row<Model::vector_candidates>(begin + j);
    }
    // The rows whose rejection steps ran out (rare) again, going on to the first accepted candidate.
    for (std::size_t j = 0; j < count; ++j)
      if (!complete[j]) sample_row<rng::unlimited_candidates>(begin + j);
  }

  template <int max_candidates>
  KOKKOS_FORCEINLINE_FUNCTION bool sample_row(const std::size_t i) const {
    const rng::StreamBlocks draws(seed, rng::Purpose::simulate, first_index + i);
    double theta_i[Model::n_parameters];
    double x_i[Model::n_observables];
    for (int p = 0; p < Model::n_parameters; ++p) theta_i[p] = theta(i, p);
    const bool complete = model.template sample<max_candidates>(draws, theta_i, x_i);
    for (int d = 0; d < Model::n_observables; ++d) x(i, d) = x_i[d];
    return complete;
  }
};

template <class Model>
struct LogLikelihoodKernel {
  Model model;
  ConstMatrix theta;
  ConstMatrix x;
  Vector out;

  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    double theta_i[Model::n_parameters];
    double x_i[Model::n_observables];
    for (int p = 0; p < Model::n_parameters; ++p) theta_i[p] = theta(i, p);
    for (int d = 0; d < Model::n_observables; ++d) x_i[d] = x(i, d);
    out(i) = model.log_likelihood(theta_i, x_i);
  }
};

/// out(i) = log p(x_i|theta_a)/p(x_i|theta_b): from the model's log_likelihood when it has one, else from
/// its own exact_log_ratio (a model with only some exact ratios, such as lepton's spin ratio).
template <class Model>
struct LogRatioKernel {
  Model model;
  Kokkos::Array<double, Model::n_parameters> theta_a;
  Kokkos::Array<double, Model::n_parameters> theta_b;
  ConstMatrix x;
  Vector out;

  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    double x_i[Model::n_observables];
    for (int d = 0; d < Model::n_observables; ++d) x_i[d] = x(i, d);
    if constexpr (Model::has_exact_likelihood)
      out(i) = model.log_likelihood(theta_a.data(), x_i) - model.log_likelihood(theta_b.data(), x_i);
    else
      out(i) = model.exact_log_ratio(theta_a.data(), theta_b.data(), x_i);
  }
};

template <class Model, class = void>
struct has_partial_exact_ratio : std::false_type {};
template <class Model>
struct has_partial_exact_ratio<Model, std::void_t<decltype(Model::exact_ratio_unavailable(nullptr, nullptr))>>
    : std::true_type {};

template <class Model>
class KernelSimulator final : public Simulator {
 public:
  explicit KernelSimulator(Model model = Model{}) : model_(std::move(model)), info_(Model::info()) {
    NSBI_ASSERT(info_.n_parameters() == static_cast<std::size_t>(Model::n_parameters) &&
                    info_.n_observables() == static_cast<std::size_t>(Model::n_observables),
                "model dimensions disagree with its info()");
  }

  const SimulatorInfo& info() const override { return info_; }

  void simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                std::uint64_t first_index, std::uint64_t seed) const override {
    check_shapes(theta, x);
    Kokkos::parallel_for(
        "nsbi::sims::" + info_.name + "::simulate",
        Kokkos::RangePolicy<ExecutionSpace>(space, 0, n_chunks<ExecutionSpace>(theta.extent(0))),
        SampleKernel<Model>{model_, theta, x, first_index, seed});
  }

  void log_likelihood(const ExecutionSpace& space, const ConstMatrix& theta, const ConstMatrix& x,
                      const Vector& out) const override {
    if constexpr (Model::has_exact_likelihood) {
      check_shapes(theta, x);
      NSBI_ASSERT(out.extent(0) == theta.extent(0), "output length differs from the number of rows");
      Kokkos::parallel_for("nsbi::sims::" + info_.name + "::log_likelihood",
                           Kokkos::RangePolicy<ExecutionSpace>(space, 0, theta.extent(0)),
                           LogLikelihoodKernel<Model>{model_, theta, x, out});
    } else {
      Simulator::log_likelihood(space, theta, x, out);
    }
  }

  std::string exact_ratio_unavailable(const double* theta_a, const double* theta_b) const override {
    if constexpr (Model::has_exact_likelihood)
      return "";
    else if constexpr (has_partial_exact_ratio<Model>::value)
      return Model::exact_ratio_unavailable(theta_a, theta_b);
    else
      return Simulator::exact_ratio_unavailable(theta_a, theta_b);
  }

  void exact_log_ratio(const ExecutionSpace& space, const double* theta_a, const double* theta_b,
                       const ConstMatrix& x, const Vector& out) const override {
    if constexpr (Model::has_exact_likelihood || has_partial_exact_ratio<Model>::value) {
      const std::string why = exact_ratio_unavailable(theta_a, theta_b);
      NSBI_ASSERT(why.empty(), why);
      NSBI_ASSERT(x.extent(1) == info_.n_observables() && out.extent(0) == x.extent(0),
                  "x/out shapes do not match simulator " + info_.name);
      LogRatioKernel<Model> kernel{model_, {}, {}, x, out};
      for (int p = 0; p < Model::n_parameters; ++p) {
        kernel.theta_a[p] = theta_a[p];
        kernel.theta_b[p] = theta_b[p];
      }
      Kokkos::parallel_for("nsbi::sims::" + info_.name + "::exact_log_ratio",
                           Kokkos::RangePolicy<ExecutionSpace>(space, 0, x.extent(0)), kernel);
    } else {
      Simulator::exact_log_ratio(space, theta_a, theta_b, x, out);
    }
  }

 private:
  template <class X>
  void check_shapes(const ConstMatrix& theta, const X& x) const {
    NSBI_ASSERT(theta.extent(1) == info_.n_parameters() && x.extent(1) == info_.n_observables() &&
                    theta.extent(0) == x.extent(0),
                "theta/x shapes do not match simulator " + info_.name);
  }

  Model model_;
  SimulatorInfo info_;
};

}  // namespace nsbi::sims
