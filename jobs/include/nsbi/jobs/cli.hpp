#pragma once
// The `nsbi` command line: commands, options and exit codes (`nsbi --help`; docs/config.md).

#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"

namespace nsbi::jobs {

/// Runs the command line on every rank of `world`; returns the process exit code (docs/config.md, "Exit
/// codes").
int run_command_line(const Communicator& world, const std::vector<std::string>& argv);

}  // namespace nsbi::jobs
