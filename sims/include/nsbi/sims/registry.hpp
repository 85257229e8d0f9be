#pragma once
// The built-in simulators by name.

#include <memory>
#include <string>
#include <vector>

#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

std::vector<std::string> simulator_names();

/// The simulator called `name`; InternalError if there is none (callers validate names against
/// simulator_names() first, so the user sees a config error with a suggestion).
std::unique_ptr<Simulator> make_simulator(const std::string& name);

}  // namespace nsbi::sims
