#pragma once
// Provenance recorded with every output: which nsbi built it, when, where, and from which command line.

#include <string>
#include <vector>

namespace nsbi {

struct Provenance {
  std::string nsbi_version;  // "0.1.0 (git abc123)"
  std::string created_utc;   // ISO 8601
  std::string hostname;
  std::string command_line;  // argv joined with spaces, arguments with spaces quoted
  int mpi_ranks = 1;
};

Provenance collect_provenance(const std::vector<std::string>& argv, int mpi_ranks);

/// The text of `nsbi --version`: version, revision and the versions of the libraries this build found.
std::string version_report();

std::string iso8601_utc_now();

}  // namespace nsbi
