// Fuzz target: the campaign reader, what `nsbi <command> CONFIG --set ...` does with a config file's text
// before any work: Config::parse (YAML, one document, duplicate keys, the --set overrides) and
// validate_campaign (the schema of every stage, the simulator's options and proposal, the pipeline).
//
// Input: the file's text, then optionally `key.path=value` overrides, each after a '\0' byte.
// Expected outcomes: a valid config, or nsbi's error for bad input (ConfigError, InputError). Findings: any
// other exception (InternalError included), a crash, a hang, a sanitizer report, or a valid config whose
// resolved YAML (what every output stores) does not read back as the same config.
#include <spawn.h>

#include <Kokkos_Core.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/jobs/campaign.hpp"

// `simulator.name: external` starts simulator.command: a fuzzed config must never run a program. This
// definition replaces libc's for the whole target, so the external simulator fails to start (ConfigError).
extern "C" int posix_spawnp(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*,
                            char* const[], char* const[]) {
  return EACCES;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Kokkos::initialize();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> pieces;
  for (std::size_t begin = 0;;) {
    const std::size_t end = input.find('\0', begin);
    pieces.push_back(input.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  const std::vector<std::string> overrides(pieces.begin() + 1, pieces.end());
  std::string resolved;
  try {
    nsbi::config::Config config = nsbi::config::Config::parse(pieces.front(), "fuzz.yaml", overrides);
    nsbi::jobs::validate_campaign(config);
    resolved = config.resolved_yaml();
  } catch (const nsbi::ConfigError&) {
    return 0;
  } catch (const nsbi::InputError&) {
    return 0;
  }
  // The resolved config is a complete, valid config of its own that resolves to itself.
  nsbi::config::Config again = nsbi::config::Config::parse(resolved, "resolved.yaml");
  nsbi::jobs::validate_campaign(again);
  if (again.resolved_yaml() != resolved) {
    std::fprintf(stderr, "resolved YAML does not read back as itself:\n%s\n---- became\n%s\n",
                 resolved.c_str(), again.resolved_yaml().c_str());
    std::abort();
  }
  return 0;
}
