#pragma once
// Turns a per-sample model (a small struct with KOKKOS_INLINE_FUNCTION members) into a Simulator whose
// work is one Kokkos kernel per block. A model provides:
//   static constexpr int n_parameters, n_observables;
//   KOKKOS_INLINE_FUNCTION void sample(rng::Stream&, const double* theta, double* x) const;
//   KOKKOS_INLINE_FUNCTION double log_likelihood(const double* theta, const double* x) const;  // if exact
// and a static `SimulatorInfo info()`.

#include <string>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

template <class Model>
struct SampleKernel {
  Model model;
  ConstMatrix theta;
  Matrix x;
  std::uint64_t first_index;
  std::uint64_t seed;

  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    rng::Stream stream(seed, rng::Purpose::simulate, first_index + i);
    double theta_i[Model::n_parameters];
    double x_i[Model::n_observables];
    for (int p = 0; p < Model::n_parameters; ++p) theta_i[p] = theta(i, p);
    model.sample(stream, theta_i, x_i);
    for (int d = 0; d < Model::n_observables; ++d) x(i, d) = x_i[d];
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
    Kokkos::parallel_for("nsbi::sims::" + info_.name + "::simulate",
                         Kokkos::RangePolicy<ExecutionSpace>(space, 0, theta.extent(0)),
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
