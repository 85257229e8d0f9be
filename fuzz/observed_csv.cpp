// Fuzz target: the observed-data CSV reader (parse_observed_csv, what `infer.observed: events.csv` reads),
// for a simulator with observables x1, x2, x3.
//
// Expected outcomes: the events, or InputError naming the line and column. Findings: any other exception, a
// crash, a hang, a sanitizer report, or events that are not whole rows of finite numbers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/inference/observed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nsbi::sims::SimulatorInfo info;
  info.name = "fuzz";
  info.observables = {"x1", "x2", "x3"};
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::vector<double> values;
  try {
    values = nsbi::inference::parse_observed_csv(in, "fuzz.csv", info, "");
  } catch (const nsbi::InputError&) {
    return 0;
  }
  if (values.size() % info.n_observables() != 0) {
    std::fprintf(stderr, "%zu values are not whole rows of %zu\n", values.size(), info.n_observables());
    std::abort();
  }
  for (const double value : values)
    if (!std::isfinite(value)) {
      std::fprintf(stderr, "a value is not finite\n");
      std::abort();
    }
  return 0;
}
