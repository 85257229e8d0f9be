#include "nsbi/sims/simulator.hpp"

#include "nsbi/core/error.hpp"

namespace nsbi::sims {

void Simulator::log_likelihood(const ExecutionSpace&, const ConstMatrix&, const ConstMatrix&,
                               const Vector&) const {
  NSBI_ASSERT(false, "simulator " + info().name + " has no exact likelihood");
}

}  // namespace nsbi::sims
