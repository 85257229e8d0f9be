#include "nsbi/sims/simulator.hpp"

#include "nsbi/core/error.hpp"

namespace nsbi::sims {

void Simulator::simulate_gold(const ExecutionSpace&, const ConstMatrix&, const Matrix&, const ConstMatrix&,
                              const double*, const Vector&, const Matrix&, std::uint64_t,
                              std::uint64_t) const {
  NSBI_ASSERT(false, "simulator " + info().name + " has no gold (joint log ratio and score)");
}

void Simulator::log_likelihood(const ExecutionSpace&, const ConstMatrix&, const ConstMatrix&,
                               const Vector&) const {
  NSBI_ASSERT(false, "simulator " + info().name + " has no exact likelihood");
}

std::string Simulator::exact_ratio_unavailable(const double*, const double*) const {
  return "simulator " + info().name + " has no exact likelihood";
}

void Simulator::exact_log_ratio(const ExecutionSpace&, const double*, const double*, const ConstMatrix&,
                                const Vector&) const {
  NSBI_ASSERT(false, "simulator " + info().name + " has no exact likelihood ratio");
}

void check_gold_arguments(const SimulatorInfo& info, const ConstMatrix& theta, const Matrix& x,
                          const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                          const Matrix& score) {
  const std::size_t n = theta.extent(0);
  NSBI_ASSERT(theta.extent(1) == info.n_parameters() && x.extent(1) == info.n_observables() &&
                  x.extent(0) == n && gold_theta.extent(0) == n &&
                  gold_theta.extent(1) == info.n_parameters() && log_r.extent(0) == n &&
                  score.extent(0) == n && score.extent(1) == info.n_parameters(),
              "theta/x/gold_theta/log_r/score shapes do not match simulator " + info.name);
  NSBI_ASSERT(theta0 != nullptr, "simulate_gold needs theta0");
}

}  // namespace nsbi::sims
