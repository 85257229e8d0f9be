// The memory estimate of each stage (memory_bounds.hpp): its formulas, saturating arithmetic, the limit of a
// rank and the config error. The estimate against a measured peak is tests/cli/cli_memory_bounds.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "nsbi/core/error.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/memory_bounds.hpp"

namespace nsbi::jobs {
namespace {

config::Config validated(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  config::Config config = config::Config::parse(yaml, "m.yaml", overrides);
  config.validate(campaign_schema(config));
  return config;
}

const char* const gaussian = R"(campaign: {seed: 1}
simulator: {name: gaussian2d}
simulate:
  observed: {theta: {mu2: 0, rho12: 0}, n_events: 20}
infer:
  grid:
    mu2: {points: 100}
    rho12: {points: 300}
)";

std::uint64_t term(const MemoryEstimate& estimate, const std::string& key) {
  std::uint64_t bytes = 0;
  for (const MemoryTerm& t : estimate.terms)
    if (t.key == key) bytes += t.bytes;
  return bytes;
}

TEST(MemoryBounds, InferGridFollowsTheDocumentedFormula) {
  const config::Config config = validated(gaussian);
  const auto info = make_simulator(config)->info();
  // 30000 points × (8 × 20 events + 32 + 32 × 2 parameters + 64 × 1 estimator); the larger axis is named.
  const MemoryEstimate estimate = estimate_stage_memory(config, info, "infer", 1);
  EXPECT_EQ(term(estimate, "infer.grid.rho12.points"), 30000u * (8 * 20 + 32 + 64 + 64));
  // Events read from the file replace the config's count.
  EXPECT_EQ(term(estimate_stage_memory(config, info, "infer", 1, 1000), "infer.grid.rho12.points"),
            30000u * (8 * 1000 + 32 + 64 + 64));
  EXPECT_EQ(term(estimate, "infer.posterior_samples"), 10000u * 2 * 8 * 2);
  EXPECT_EQ(estimate.total(), (64u << 20) + 30000u * 320 + 10000u * 32);
}

TEST(MemoryBounds, InferCountsTheDatasetsAndTheOutputsKept) {
  // Three datasets listed, the largest of 20 events: one scan at a time, the other two datasets' full-grid
  // results (64 bytes per point and estimator) kept, and three sets of samples.
  const config::Config config = validated(gaussian, {"infer.observed_dataset=[a, b, c]"});
  const auto info = make_simulator(config)->info();
  const MemoryEstimate estimate = estimate_stage_memory(config, info, "infer", 1);
  EXPECT_EQ(term(estimate, "infer.grid.rho12.points"), 30000u * (8 * 20 + 32 + 64 + 64 + 2 * 64));
  EXPECT_EQ(term(estimate, "infer.posterior_samples"), 3 * 10000u * 2 * 8 * 2);
  // Five datasets read (e.g. `all`) replace the list's count.
  EXPECT_EQ(term(estimate_stage_memory(config, info, "infer", 1, 20, 5), "infer.posterior_samples"),
            5 * 10000u * 2 * 8 * 2);
  // Samples only: no dataset's grid arrays are kept past its analysis.
  const config::Config samples =
      validated(gaussian, {"infer.observed_dataset=[a, b, c]", "infer.outputs=[posterior_samples]"});
  EXPECT_EQ(term(estimate_stage_memory(samples, info, "infer", 1), "infer.grid.rho12.points"),
            30000u * (8 * 20 + 32 + 64 + 64));
}

TEST(MemoryBounds, InferMcmcCountsTheChainsNotTheGrid) {
  // A grid of 10^10 points, never built with posterior: mcmc: only the draws (16 chains × 100 × (P + 1)
  // values, 1 estimator + 3 copies) and one round of ⌈16 / 3⌉ = 6 chains × 20 events × 2 copies count.
  const config::Config config = validated(
      gaussian, {"infer.posterior=mcmc", "infer.grid.mu2.points=100000", "infer.grid.rho12.points=100000",
                 "infer.mcmc.chains=16", "infer.mcmc.samples=100"});
  const auto info = make_simulator(config)->info();
  const MemoryEstimate estimate = estimate_stage_memory(config, info, "infer", 3);
  EXPECT_EQ(term(estimate, "infer.grid.rho12.points"), 0u);
  EXPECT_EQ(term(estimate, "infer.mcmc.samples"), 16u * 100 * 3 * 8 * 4);
  EXPECT_EQ(term(estimate, "infer.mcmc.chains"), 6u * 20 * 8 * 2);
  EXPECT_EQ(estimate.total(), (64u << 20) + 16u * 100 * 3 * 8 * 4 + 6u * 20 * 8 * 2);
}

TEST(MemoryBounds, TheRanksOfAModelShareItsStreamingBudget) {
  const config::Config config = validated(gaussian);
  const auto info = make_simulator(config)->info();
  constexpr std::uint64_t mib = 1 << 20;
  EXPECT_EQ(term(estimate_stage_memory(config, info, "train", 1), "train.memory_budget_mib"), 512 * mib);
  // 4 ranks, one model: a quarter of the windows each, and each its HDF5 caches of the two files.
  EXPECT_EQ(term(estimate_stage_memory(config, info, "train", 4), "train.memory_budget_mib"),
            (128 + 76) * mib);
  // 4 members on 4 ranks: a model per rank, the whole budget each.
  const config::Config ensemble = validated(gaussian, {"train.ensemble=4"});
  EXPECT_EQ(term(estimate_stage_memory(ensemble, info, "train", 4), "train.memory_budget_mib"), 512 * mib);
}

TEST(MemoryBounds, AbsurdCountsSaturateInsteadOfWrapping) {
  const config::Config config = validated(
      gaussian,
      {"train.network.head.hidden=[1e9, 1e9]", "infer.posterior_samples=9e18", "calibrate.n_events=1e12"});
  const auto info = make_simulator(config)->info();
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(term(estimate_stage_memory(config, info, "train", 1), "train.network.head.hidden"), max);
  EXPECT_EQ(estimate_stage_memory(config, info, "train", 1).total(), max);
  EXPECT_EQ(estimate_stage_memory(config, info, "infer", 1).total(), max);
  EXPECT_GT(term(estimate_stage_memory(config, info, "calibrate", 1), "calibrate.n_events"), 1e12 * 8);
  EXPECT_EQ(format_bytes(max), "more than 16 EiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(100), "100 bytes");
}

TEST(MemoryBounds, TheLimitIsTheNodesMemorySharedByItsRanks) {
  setenv("NSBI_TEST_MEMORY_AVAILABLE_MIB", "800", 1);
  const MemoryLimit shared = node_memory_limit(4);
  unsetenv("NSBI_TEST_MEMORY_AVAILABLE_MIB");
  EXPECT_EQ(shared.bytes, 200u << 20);
  EXPECT_EQ(shared.source, "NSBI_TEST_MEMORY_AVAILABLE_MIB 800.0 MiB on this node, shared by its 4 ranks");
  const MemoryLimit node = node_memory_limit(1);
  EXPECT_GT(node.bytes, 0u);
  EXPECT_TRUE(node.source.rfind("MemAvailable ", 0) == 0 || node.source.rfind("the cgroup's", 0) == 0)
      << node.source;
}

TEST(MemoryBounds, TooMuchIsAConfigErrorAtTheLargestKey) {
  const config::Config config = validated(gaussian);
  const auto info = make_simulator(config)->info();
  const MemoryEstimate estimate = estimate_stage_memory(config, info, "infer", 1);
  EXPECT_NO_THROW(check_memory(config, estimate, {estimate.total(), "exactly enough"}));
  try {
    check_memory(config, estimate, {estimate.total() - 1, "one byte short"});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("m.yaml:8:", 0), 0u) << what;  // rho12's points: the larger axis
    EXPECT_NE(what.find("infer.grid.rho12.points: infer would need about 73.5 MiB per MPI rank, more than "
                        "the 73.5 MiB a rank has (one byte short)"),
              std::string::npos)
        << what;
  }
}

// The examples are what users start from: each of their stages fits a laptop's rank (2 GiB) with room.
TEST(MemoryBounds, EveryExampleFitsTwoGibibytesPerRank) {
  ASSERT_EQ(chdir(NSBI_SOURCE_DIR), 0);  // external's command is relative to the repository root
  for (const char* example :
       {"quickstart", "spin_test", "lepton_mass", "lepton_spin", "particle_chain", "external_simulator"}) {
    Invocation invocation;
    invocation.config_file = std::string(NSBI_SOURCE_DIR) + "/examples/" + example + ".yaml";
    const Campaign campaign = Campaign::load(invocation, 1);
    const auto info = make_simulator(campaign.config)->info();
    for (const auto& stage : pipeline_stages()) {
      const MemoryEstimate estimate = estimate_stage_memory(campaign.config, info, stage, 1);
      EXPECT_LT(estimate.total(), std::uint64_t{2} << 30) << example << " " << stage;
      std::printf("%s %s: %s\n", example, stage.c_str(), format_bytes(estimate.total()).c_str());
    }
  }
}

}  // namespace
}  // namespace nsbi::jobs
