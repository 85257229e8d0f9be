#pragma once
// Sizes bounded before any work: each stage's peak memory per MPI rank, estimated from the config (grids,
// sample and event counts, the network), against the memory a rank has (docs/config.md, "Memory per rank").
// A config that would not fit is a config error (exit 2) naming the key that needs the most.

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::jobs {

/// One part of a stage's memory: the key that sizes it, what it holds, and its bytes (saturated at
/// UINT64_MAX: an absurd count cannot wrap around).
struct MemoryTerm {
  std::string key;
  std::string what;
  std::uint64_t bytes = 0;
};

/// A stage's peak memory per rank: an upper bound of what the stage allocates (docs/config.md gives the
/// formulas and how far above the measured peak they lie).
struct MemoryEstimate {
  std::string stage;
  std::vector<MemoryTerm> terms;
  std::uint64_t total() const;  // saturating
};

/// The memory one rank may use, and where that number comes from (for the message).
struct MemoryLimit {
  std::uint64_t bytes = 0;
  std::string source;
};

/// The estimate of `stage` (simulate, train, infer, test, calibrate, coverage) for a validated config of a
/// simulator with `info`'s parameters and observables, run on `ranks` MPI ranks (train's ranks share the
/// streamed data of a model). infer's observed events (of its largest dataset), when not yet read
/// (observed_events 0), are simulate.observed.n_events if infer.observed is that file, else 1; its number of
/// datasets, when not yet read (0), the length of infer.observed_dataset's list, else 1.
MemoryEstimate estimate_stage_memory(const config::Config& config, const sims::SimulatorInfo& info,
                                     const std::string& stage, int ranks, std::uint64_t observed_events = 0,
                                     std::uint64_t observed_datasets = 0);

/// This node's memory per rank: min(the cgroup's limit (v2 memory.max or v1 memory.limit_in_bytes),
/// MemAvailable of /proc/meminfo) divided by `ranks_on_node`. NSBI_TEST_MEMORY_AVAILABLE_MIB, for tests
/// only, replaces the node's memory by that many MiB.
MemoryLimit node_memory_limit(int ranks_on_node);

/// The number of ranks of `comm` on this node (MPI_COMM_TYPE_SHARED). Collective.
int ranks_on_this_node(MPI_Comm comm);

/// ConfigError (exit 2) at the largest term's key when `estimate` exceeds `limit`: what it needs, what a
/// rank has, and the terms that need the most.
void check_memory(const config::Config& config, const MemoryEstimate& estimate, const MemoryLimit& limit);

/// The check at validation: every stage `command` runs (itself, or the pipeline for `run`) on `ranks` ranks
/// against this node's memory shared by `ranks_on_node` of them. Other commands (submit checks against what
/// it asks SLURM for, status) check nothing here.
void check_memory_bounds(const config::Config& config, const std::string& command, int ranks,
                         int ranks_on_node);

/// "1.5 GiB", "512 MiB", "more than 16 EiB" for a saturated count.
std::string format_bytes(std::uint64_t bytes);

}  // namespace nsbi::jobs
