#include "nsbi/sims/registry.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/sims/external.hpp"
#include "nsbi/sims/gaussian2d.hpp"
#include "nsbi/sims/kernel_simulator.hpp"
#include "nsbi/sims/lensing.hpp"
#include "nsbi/sims/lepton.hpp"
#include "nsbi/sims/particle_chain.hpp"
#include "nsbi/sims/spin3d.hpp"

namespace nsbi::sims {
namespace {

struct Entry {
  std::string name;
  std::function<std::vector<SimulatorOption>()> options;
  std::function<std::unique_ptr<Simulator>(const SimulatorOptions&)> make;
};

// A simulator without options: any option given to it is a config error.
template <class Model>
Entry plain(const std::string& name) {
  return {name, [] { return std::vector<SimulatorOption>{}; },
          [name](const SimulatorOptions& options) -> std::unique_ptr<Simulator> {
            if (!options.empty())
              throw ConfigError("simulator." + options.begin()->first + ": simulator " + name +
                                " has no options");
            return std::make_unique<KernelSimulator<Model>>();
          }};
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      plain<Gaussian2d>("gaussian2d"),
      plain<Spin3d>("spin3d"),
      plain<Lepton>("lepton"),
      {"particle_chain", particle_chain_options, make_particle_chain},
      {"lensing", lensing_options, make_lensing},
      {"external", external_options, make_external},
  };
  return entries;
}

const Entry& entry(const std::string& name) {
  for (const auto& e : registry())
    if (e.name == name) return e;
  NSBI_ASSERT(false, "no simulator named '" + name + "'");
  return registry().front();
}

}  // namespace

std::vector<std::string> simulator_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

double parse_option_number(const std::string& key, const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(begin, &end);
  while (end != nullptr && (*end == ' ' || *end == '\t')) ++end;
  if (end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(value))
    throw ConfigError("simulator." + key + ": '" + text + "' is not a finite number");
  return value;
}

std::vector<SimulatorOption> simulator_options(const std::string& name) { return entry(name).options(); }

std::unique_ptr<Simulator> make_simulator(const std::string& name, const SimulatorOptions& options) {
  return entry(name).make(options);
}

}  // namespace nsbi::sims
