#pragma once
// The built-in simulators by name, and the options each one declares (config keys `simulator.<key>`).

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

/// One option of a simulator, declared as config key `simulator.<key>`.
struct SimulatorOption {
  std::string key;
  std::string default_value;  // as YAML text; empty: the key is required
  std::string doc;
  std::vector<std::string> choices;                           // non-empty: a string option with these values
  double minimum = -std::numeric_limits<double>::infinity();  // a number option (when choices is empty)
  double maximum = std::numeric_limits<double>::infinity();
  bool string_list = false;  // a list of strings (its value text is a YAML flow sequence)
};

using SimulatorOptions = std::map<std::string, std::string>;  // key -> value text; missing keys take defaults

std::vector<std::string> simulator_names();

/// The number an option's value text holds; ConfigError "simulator.<key>: ..." if it holds none (or one that
/// is not finite).
double parse_option_number(const std::string& key, const std::string& text);

/// The options `name` declares, in the order documented; {} for a simulator without options.
std::vector<SimulatorOption> simulator_options(const std::string& name);

/// The simulator called `name` configured by `options`; InternalError if there is none (callers validate
/// names against simulator_names() first, so the user sees a config error with a suggestion). ConfigError
/// ("simulator.<key>: ...") for a key the simulator does not declare or a value it cannot use.
std::unique_ptr<Simulator> make_simulator(const std::string& name, const SimulatorOptions& options = {});

}  // namespace nsbi::sims
