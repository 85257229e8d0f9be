#include "nsbi/sims/registry.hpp"

#include <functional>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/sims/gaussian2d.hpp"
#include "nsbi/sims/kernel_simulator.hpp"
#include "nsbi/sims/lepton.hpp"
#include "nsbi/sims/spin3d.hpp"

namespace nsbi::sims {
namespace {

using Factory = std::function<std::unique_ptr<Simulator>()>;

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> entries = {
      {"gaussian2d", [] { return std::make_unique<KernelSimulator<Gaussian2d>>(); }},
      {"spin3d", [] { return std::make_unique<KernelSimulator<Spin3d>>(); }},
      {"lepton", [] { return std::make_unique<KernelSimulator<Lepton>>(); }},
  };
  return entries;
}

}  // namespace

std::vector<std::string> simulator_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

std::unique_ptr<Simulator> make_simulator(const std::string& name) {
  for (const auto& entry : registry())
    if (entry.first == name) return entry.second();
  NSBI_ASSERT(false, "no simulator named '" + name + "'");
  return nullptr;
}

}  // namespace nsbi::sims
