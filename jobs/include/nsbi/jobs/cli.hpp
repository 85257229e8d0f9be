#pragma once
// The `nsbi` command line (DESIGN.md "Config and CLI").

#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"

namespace nsbi::jobs {

/// Runs the command line on every rank of `world`; returns the process exit code (DESIGN.md).
int run_command_line(const Communicator& world, const std::vector<std::string>& argv);

}  // namespace nsbi::jobs
