#pragma once
// The config keys of the inference stages (infer, test, calibrate, coverage) and of the observed data
// `nsbi simulate` makes (docs/config.md).

#include "nsbi/core/config.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

/// Adds the keys of simulate.observed, infer, test, calibrate and coverage to `schema`, with defaults that
/// follow the keys `config` already holds (validated on the way: a default taken from another key needs it).
void declare_inference(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim);

}  // namespace nsbi::jobs
