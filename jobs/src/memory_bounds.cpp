#include "nsbi/jobs/memory_bounds.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/infer_datasets.hpp"
#include "nsbi/jobs/inference_config.hpp"

namespace nsbi::jobs {
namespace {

constexpr std::uint64_t saturated = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t mib = std::uint64_t{1} << 20;

// Checked arithmetic: a product or sum past 2^64 - 1 stays there.
std::uint64_t mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? saturated : out;
}
std::uint64_t add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? saturated : out;
}
template <class... Rest>
std::uint64_t mul(std::uint64_t a, std::uint64_t b, Rest... rest) {
  return mul(mul(a, b), rest...);
}
// A config count (validated: a whole number >= 0) or a layer width (a double), saturated.
std::uint64_t count(double value) {
  return value >= 18446744073709551615.0 ? saturated : static_cast<std::uint64_t>(std::max(0.0, value));
}
std::uint64_t integer(const config::Config& config, const std::string& key) {
  return count(static_cast<double>(config.get<std::int64_t>(key)));
}

// What the program holds whatever the stage: the executable, MPI, HDF5, Kokkos (35 MB measured).
constexpr std::uint64_t baseline_bytes = 64 * mib;

// The scan of a θ grid (inference/scan.cpp) evaluates at most this many (event, point) pairs per call,
// unless one experiment needs more.
constexpr std::uint64_t scan_pairs_per_call = std::uint64_t{1} << 22;

struct GridSize {
  std::uint64_t points = 1;
  std::string key;  // the axis with the most points
  std::uint64_t largest_axis = 0;
};

// <section>.grid: the product of each parameter's points, as grid_from_config() builds it.
GridSize grid_size(const config::Config& config, const sims::SimulatorInfo& info,
                   const std::string& section) {
  GridSize grid;
  for (const sims::Parameter& p : info.parameters) {
    const std::string prefix = section + ".grid." + p.name;
    std::uint64_t n = 0;
    std::string key;
    if (config.has(prefix + ".values")) {
      n = config.get<std::vector<double>>(prefix + ".values").size();
      key = prefix + ".values";
    } else if (p.is_discrete()) {
      n = p.hypotheses.size();
      key = section + ".grid";
    } else {
      n = integer(config, prefix + ".points");
      key = prefix + ".points";
    }
    grid.points = mul(grid.points, std::max<std::uint64_t>(1, n));
    if (n > grid.largest_axis || grid.key.empty()) {
      grid.largest_axis = n;
      grid.key = key;
    }
  }
  if (grid.key.empty()) grid.key = section + ".grid";
  return grid;
}

std::string text(std::uint64_t n) { return n == saturated ? "more than 1.8e19" : std::to_string(n); }

// Per grid point of a scan, besides its log r̂ per event (8 bytes each): the point itself (a row of the
// points matrix and of the scan's copy, and the per-point vectors of the setup) and, per estimator, t, q,
// the profile, the posterior, the regions and their copies written out. Measured on gaussian2d (2
// parameters): 262 bytes per point with 20 events and one estimator, 309 with two, 1668 with 200 events
// and one; this formula gives 320, 384 and 1760.
std::uint64_t bytes_per_scan_point(std::uint64_t n_parameters, std::uint64_t n_estimators) {
  return add(32 + 32 * n_parameters, mul(64, n_estimators));
}

void add_term(MemoryEstimate& estimate, const std::string& key, const std::string& what,
              std::uint64_t bytes) {
  estimate.terms.push_back({key, what, bytes});
}

// simulate: one block of rows (θ, x and the gold), with the simulator's output and the writer's buffer.
void simulate_terms(const config::Config& config, const sims::SimulatorInfo& info, MemoryEstimate& e) {
  const std::uint64_t p = info.n_parameters();
  const std::uint64_t columns =
      p + info.n_observables() + (config.get<bool>("simulate.gold") ? 1 + 2 * p : 0);
  const std::uint64_t rows = integer(config, "simulate.block_size");
  add_term(e, "simulate.block_size",
           text(rows) + " rows per block × " + std::to_string(columns) + " columns, 3 copies",
           mul(rows, columns, 8, 3));
}

// HDF5's caches for one file read, at most (docs/formats.md, "How nsbi reads a dataset": 1 MiB per array
// read, 4 MiB for the file, at most 32 MiB of chunk index).
constexpr std::uint64_t hdf5_file_bytes = 38 * mib;

// train: the streamed data (the budget of one rank holding every shard; the R ranks of a model hold 1/R of
// its windows and batches each, and each its own HDF5 caches of the two files), the network's parameters in
// float (weights, gradients, AdamW's two moments, the best epoch's weights, the checkpoint's and the
// allreduce's copies: 7) and in double for the model file (every member, twice), the activations of a batch
// (values, gradients, and for the score losses their derivatives: 6 per unit), and the diagnostics' blocks.
void train_terms(const config::Config& config, const sims::SimulatorInfo& info, int ranks,
                 MemoryEstimate& e) {
  const std::uint64_t ensemble = integer(config, "train.ensemble");
  // The fewest ranks a model can have: as many groups as members, up to one per rank.
  const auto n_ranks = static_cast<std::uint64_t>(std::max(1, ranks));
  const std::uint64_t group = std::max<std::uint64_t>(1, n_ranks / std::min(ensemble, n_ranks));
  const std::uint64_t budget = mul(integer(config, "train.memory_budget_mib"), mib);
  add_term(e, "train.memory_budget_mib",
           "the datasets' streaming budget shared by a model's " + std::to_string(group) + " rank(s)",
           std::min(budget, add(budget / group, 2 * hdf5_file_bytes)));
  std::uint64_t in = info.n_parameters() + info.n_observables();
  std::uint64_t parameters = 0;
  std::uint64_t units = 0;
  for (const double width : config.get<std::vector<double>>("train.network.head.hidden")) {
    const std::uint64_t out = count(width);
    parameters = add(parameters, mul(add(in, 1), out));
    units = add(units, out);
    in = out;
  }
  parameters = add(parameters, add(in, 1));
  add_term(e, "train.network.head.hidden",
           "a network of " + text(parameters) + " parameters (7 float copies in training, " +
               std::to_string(ensemble) + " member(s) in double twice for the model file)",
           add(mul(parameters, 4, 7), mul(parameters, ensemble, 8, 2)));
  const std::uint64_t batch = integer(config, "train.batch_size");
  add_term(e, "train.batch_size",
           "the activations of " + text(batch) + " samples × " + text(units) + " hidden units, 6 per unit",
           mul(batch, units, 4, 6));
  // Diagnostics: blocks of at most 16384 fresh events (θ, x, three log values), and per grid point
  // (at most 10000) three sums and the point.
  const std::uint64_t block = std::min<std::uint64_t>(integer(config, "train.diagnostics.n_events"), 16384);
  add_term(e, "train.diagnostics.n_events", "the diagnostics' blocks of events",
           add(mul(block, info.n_parameters() + info.n_observables() + 3, 8, 2),
               mul(10000, 8 + info.n_parameters(), 8)));
}

std::uint64_t observed_events(const config::Config& config, std::uint64_t read) {
  if (read > 0) return read;
  // Known before reading the observed file only when it is the one `nsbi simulate` makes.
  if (config.get<std::string>("infer.observed") != config.get<std::string>("simulate.observed.output"))
    return 1;
  return integer(config, "simulate.observed.n_events");
}

// The observed datasets infer analyses: counted once read, else infer.observed_dataset's list's length (one
// name, `all` or none: 1).
std::uint64_t observed_datasets(const config::Config& config, std::uint64_t read) {
  if (read > 0) return read;
  if (!config.has("infer.observed_dataset") || !config.get<YAML::Node>("infer.observed_dataset").IsSequence())
    return 1;
  return std::max<std::uint64_t>(1, config.get<std::vector<std::string>>("infer.observed_dataset").size());
}

// infer with posterior: mcmc: the chains' draws with their log posterior (each dataset's and estimator's
// kept, and three transient copies: the rank's chains, its padded block and the gathered ones), and a
// round's evaluation of the rank's chains (the events × points values and their host copy).
void mcmc_terms(const config::Config& config, const sims::SimulatorInfo& info, int ranks,
                std::uint64_t events, std::uint64_t datasets, MemoryEstimate& e) {
  const std::uint64_t estimators = config.get<std::vector<std::string>>("infer.estimators").size();
  const inference::McmcSettings settings = mcmc_settings(config);
  const std::uint64_t chains = settings.chains;
  const std::uint64_t samples = settings.samples;
  const std::uint64_t values = mul(chains, samples, info.n_parameters() + 1, 8);
  const std::uint64_t copies = add(mul(estimators, datasets), 3);
  add_term(e, "infer.mcmc.samples",
           text(chains) + " chains × " + text(samples) + " draws × " +
               std::to_string(info.n_parameters() + 1) + " values, " + text(copies) + " copies (" +
               text(datasets) + " dataset(s))",
           mul(values, copies));
  const std::uint64_t per_rank =
      (chains + static_cast<std::uint64_t>(ranks) - 1) / static_cast<std::uint64_t>(ranks);
  add_term(e, "infer.mcmc.chains",
           text(per_rank) + " chains per rank × " + text(events) + " observed events, 2 copies",
           mul(per_rank, events, 8, 2));
}

// infer on the grid: one dataset's scan at a time (its largest), each other dataset's full-grid results kept
// when infer.outputs asks for `grid` (64 bytes per point and estimator of bytes_per_scan_point), and every
// dataset's samples.
void infer_terms(const config::Config& config, const sims::SimulatorInfo& info, int ranks,
                 std::uint64_t read_events, std::uint64_t read_datasets, MemoryEstimate& e) {
  const std::uint64_t datasets = observed_datasets(config, read_datasets);
  if (infer_uses_mcmc(config)) {
    mcmc_terms(config, info, ranks, observed_events(config, read_events), datasets, e);
    return;
  }
  const GridSize grid = grid_size(config, info, "infer");
  const std::uint64_t estimators = config.get<std::vector<std::string>>("infer.estimators").size();
  const std::uint64_t events = observed_events(config, read_events);
  const std::uint64_t p = info.n_parameters();
  const std::uint64_t kept = infer_outputs(config).grid ? mul(64, estimators, datasets - 1) : 0;
  add_term(e, grid.key,
           text(grid.points) + " grid points × (8 bytes per observed event × " + text(events) + " + " +
               text(bytes_per_scan_point(p, estimators)) + " + " + text(kept) + " for " + text(datasets) +
               " dataset(s))",
           mul(grid.points, add(mul(8, events), add(bytes_per_scan_point(p, estimators), kept))));
  // The samples, and the same again as written out.
  const std::uint64_t samples = integer(config, "infer.posterior_samples");
  add_term(e, "infer.posterior_samples",
           text(samples) + " posterior samples × " + std::to_string(p) + " parameters × " +
               std::to_string(estimators) + " estimator(s) × " + text(datasets) + " dataset(s), 2 copies",
           mul(samples, p, 8, 2, mul(estimators, datasets)));
}

// test, calibrate, coverage: the toys of one work item (θ and x of every event, and its two log values),
// the scan of each toy over infer.grid (calibrate, coverage), and every toy's statistic per estimator
// (the results, the merged journals and the per-point lists: 3 copies).
void toy_terms(const config::Config& config, const sims::SimulatorInfo& info, const std::string& stage,
               MemoryEstimate& e) {
  const std::uint64_t p = info.n_parameters();
  const std::uint64_t columns = p + info.n_observables() + 2;
  const std::uint64_t events = integer(config, stage + ".n_events");
  const std::uint64_t n_toys = integer(config, stage + ".n_toys");
  const std::uint64_t per_item = std::min(n_toys, integer(config, stage + ".toys_per_item"));
  const std::uint64_t estimators = config.get<std::vector<std::string>>(stage + ".estimators").size();
  add_term(e, stage + ".n_events",
           text(per_item) + " toys per work item × " + text(events) + " events × " + std::to_string(columns) +
               " values",
           mul(per_item, events, columns, 8));
  if (stage == "test") {
    add_term(e, stage + ".n_toys",
             "2 hypotheses × " + text(n_toys) + " toys × " + text(estimators) + " estimator(s), 3 copies",
             mul(2, n_toys, estimators, 8, 3));
    return;
  }
  const GridSize scan = grid_size(config, info, "infer");
  // One call holds at least one toy's events × (scan points + 1) log values; t per toy and point.
  const std::uint64_t pairs = std::max(scan_pairs_per_call, mul(events, add(scan.points, 1)));
  add_term(e, events > scan.points ? stage + ".n_events" : scan.key,
           text(scan.points) + " infer.grid points scanned per toy of " + text(events) + " events",
           add(add(mul(pairs, 8), mul(per_item, scan.points, 8, 2)),
               mul(scan.points, bytes_per_scan_point(p, estimators))));
  const GridSize own = grid_size(config, info, stage);
  add_term(e, n_toys > own.points ? stage + ".n_toys" : own.key,
           text(own.points) + " grid points × " + text(n_toys) + " toys × " + text(estimators) +
               " estimator(s), 3 copies",
           mul(own.points, n_toys, estimators, 8, 3));
}

std::uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word.find_first_not_of("0123456789") != std::string::npos) return saturated;
  return std::strtoull(word.c_str(), nullptr, 10);
}

// The memory limit of this process's cgroup and of the cgroups above it ("max" or absent: none), v2 then v1.
// In a container the cgroup's own directory is the mount's root: the paths from /proc/self/cgroup are tried
// from the leaf up to the root, so that one of them is it.
std::uint64_t cgroup_limit() {
  struct Hierarchy {
    std::string mount;
    std::string path;  // of this process's cgroup inside the mount
    std::string file;
  };
  std::vector<Hierarchy> hierarchies;
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroups, line)) {
    const std::size_t first = line.find(':');
    const std::size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty()) hierarchies.push_back({"/sys/fs/cgroup", path, "memory.max"});
    std::stringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');)
      if (c == "memory") hierarchies.push_back({"/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"});
  }
  std::uint64_t limit = saturated;
  for (const Hierarchy& h : hierarchies) {
    // "/a/b", then "/a", then the mount's root.
    for (std::string dir = h.path == "/" ? "" : h.path;; dir = dir.substr(0, dir.rfind('/'))) {
      limit = std::min(limit, read_number(h.mount + dir + "/" + h.file));
      if (dir.empty()) break;
    }
  }
  return limit;
}

std::uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("MemAvailable:", 0) == 0)
      return mul(std::strtoull(line.c_str() + std::strlen("MemAvailable:"), nullptr, 10), 1024);  // kB
  return saturated;
}

}  // namespace

std::uint64_t MemoryEstimate::total() const {
  std::uint64_t sum = baseline_bytes;
  for (const MemoryTerm& term : terms) sum = add(sum, term.bytes);
  return sum;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes == saturated) return "more than 16 EiB";
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  std::size_t u = 0;
  while (value >= 1024.0 && u + 1 < std::size(units)) {
    value /= 1024.0;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", value, units[u]);
  return out;
}

MemoryEstimate estimate_stage_memory(const config::Config& config, const sims::SimulatorInfo& info,
                                     const std::string& stage, int ranks, std::uint64_t observed,
                                     std::uint64_t datasets) {
  MemoryEstimate estimate;
  estimate.stage = stage;
  if (stage == "simulate") simulate_terms(config, info, estimate);
  if (stage == "train") train_terms(config, info, ranks, estimate);
  if (stage == "infer") infer_terms(config, info, ranks, observed, datasets, estimate);
  if (stage == "test" || stage == "calibrate" || stage == "coverage")
    toy_terms(config, info, stage, estimate);
  return estimate;
}

MemoryLimit node_memory_limit(int ranks_on_node) {
  MemoryLimit limit;
  std::string node;
  if (const char* test = std::getenv("NSBI_TEST_MEMORY_AVAILABLE_MIB")) {
    limit.bytes = mul(std::strtoull(test, nullptr, 10), mib);
    node = "NSBI_TEST_MEMORY_AVAILABLE_MIB";
  } else {
    const std::uint64_t cgroup = cgroup_limit();
    const std::uint64_t available = mem_available();
    limit.bytes = std::min(cgroup, available);
    node = cgroup < available ? "the cgroup's memory limit" : "MemAvailable";
  }
  node += " " + format_bytes(limit.bytes) + " on this node";
  limit.bytes /= static_cast<std::uint64_t>(std::max(1, ranks_on_node));
  limit.source =
      ranks_on_node > 1 ? node + ", shared by its " + std::to_string(ranks_on_node) + " ranks" : node;
  return limit;
}

int ranks_on_this_node(MPI_Comm comm) {
  MPI_Comm node = MPI_COMM_NULL;
  NSBI_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int size = 1;
  NSBI_MPI_CHECK(MPI_Comm_size(node, &size));
  NSBI_MPI_CHECK(MPI_Comm_free(&node));
  return size;
}

void check_memory(const config::Config& config, const MemoryEstimate& estimate, const MemoryLimit& limit) {
  const std::uint64_t need = estimate.total();
  if (need <= limit.bytes) {
    log::debug(estimate.stage, ": memory per MPI rank about ", format_bytes(need), " of the ",
               format_bytes(limit.bytes), " a rank has (", limit.source, ")");
    return;
  }
  std::vector<MemoryTerm> terms = estimate.terms;
  std::stable_sort(terms.begin(), terms.end(),
                   [](const MemoryTerm& a, const MemoryTerm& b) { return a.bytes > b.bytes; });
  std::string parts;
  for (const MemoryTerm& term : terms) {
    if (term.bytes < need / 10 && !parts.empty()) break;
    parts += (parts.empty() ? "" : "; ") + term.key + ": " + term.what + " = " + format_bytes(term.bytes);
  }
  config.fail(terms.front().key, estimate.stage + " would need " + (need == saturated ? "" : "about ") +
                                     format_bytes(need) + " per MPI rank, more than the " +
                                     format_bytes(limit.bytes) + " a rank has (" + limit.source +
                                     "): " + parts + " (docs/config.md, \"Memory per rank\")");
}

void check_memory_bounds(const config::Config& config, const std::string& command, int ranks,
                         int ranks_on_node) {
  std::vector<std::string> stages;
  if (command == "run") {
    stages = config.get<std::vector<std::string>>("pipeline");
  } else if (std::find(pipeline_stages().begin(), pipeline_stages().end(), command) !=
             pipeline_stages().end()) {
    stages = {command};
  }
  if (stages.empty()) return;
  const sims::SimulatorInfo info = make_simulator(config)->info();
  const MemoryLimit limit = node_memory_limit(ranks_on_node);
  for (const std::string& stage : stages)
    check_memory(config, estimate_stage_memory(config, info, stage, ranks), limit);
}

}  // namespace nsbi::jobs
