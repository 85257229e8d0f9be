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

}  // namespace nsbi::sims
