#include "nsbi/core/provenance.hpp"

#include <unistd.h>

#include <ctime>
#include <sstream>

#include "nsbi/config.hpp"
#include "nsbi/git_revision.hpp"

namespace nsbi {

std::string iso8601_utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

Provenance collect_provenance(const std::vector<std::string>& argv, int mpi_ranks) {
  Provenance p;
  p.nsbi_version = std::string(NSBI_VERSION) + " (git " + NSBI_GIT_REVISION + ")";
  p.created_utc = iso8601_utc_now();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) p.hostname = host;
  std::ostringstream cmd;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (i) cmd << ' ';
    if (argv[i].find_first_of(" \t'\"") == std::string::npos)
      cmd << argv[i];
    else
      cmd << '\'' << argv[i] << '\'';
  }
  p.command_line = cmd.str();
  p.mpi_ranks = mpi_ranks;
  return p;
}

std::string version_report() {
  std::ostringstream out;
  out << "nsbi " << NSBI_VERSION << " (git " << NSBI_GIT_REVISION << ", " << NSBI_BUILD_TYPE << ", "
      << NSBI_CXX_COMPILER << ")\n"
      << "  MPI " << NSBI_MPI_VERSION << ", parallel HDF5 " << NSBI_HDF5_VERSION << ", Kokkos "
      << NSBI_KOKKOS_VERSION << " (" << NSBI_KOKKOS_DEVICES << "), oneDNN " << NSBI_DNNL_VERSION
      << ", yaml-cpp " << NSBI_YAML_CPP_VERSION << "\n";
#ifdef NSBI_ENABLE_SANITIZERS
  out << "  built with AddressSanitizer + UndefinedBehaviorSanitizer\n";
#endif
  return out.str();
}

}  // namespace nsbi
