// The inference stages in process on a tiny gaussian2d campaign with the exact estimator alone (no model to
// train): infer, test, calibrate and coverage each open their phases' profiling regions in order (docs/
// development.md, "Profiling"), as a Kokkos tool sees them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nsbi/jobs/stages.hpp"
#include "profiling_regions.hpp"

namespace nsbi::jobs {
namespace {

Campaign tiny_campaign(const std::string& dir) {
  const std::string yaml = "campaign: {seed: 5, dir: " + dir +
                           "}\n"
                           "simulator: {name: gaussian2d}\n"
                           "simulate:\n"
                           "  n_samples: 1000\n"
                           "  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 10}\n"
                           "infer:\n"
                           "  estimators: [exact]\n"
                           "  grid:\n"
                           "    mu2: {min: -0.9, max: 0.9, points: 5}\n"
                           "    rho12: {min: -0.9, max: 0.9, points: 5}\n"
                           "test:\n"
                           "  estimators: [exact]\n"
                           "  h0: {mu2: 0, rho12: 0}\n"
                           "  h1: {mu2: 0.3, rho12: 0.4}\n"
                           "  n_toys: 20\n"
                           "calibrate:\n"
                           "  estimators: [exact]\n"
                           "  grid: {mu2: {values: [0.0, 0.3]}, rho12: {values: [0.0]}}\n"
                           "  n_toys: 20\n"
                           "  toys_per_item: 10\n"
                           "coverage:\n"
                           "  estimators: [exact]\n"
                           "  methods: [wilks]\n"
                           "  grid: {mu2: {values: [0.0]}, rho12: {values: [0.0]}}\n"
                           "  n_toys: 20\n"
                           "  toys_per_item: 10\n";
  config::Config config = config::Config::parse(yaml, "regions.yaml");
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance({"test"}, 1));
}

// The nsbi profiling regions that `stage` opens on this rank.
template <class Stage>
std::vector<std::string> regions_of(const Stage& stage) {
  const test::RecordedRegions recorded;
  stage();
  return recorded.nsbi_events();
}

// One region after another, none nested: "+nsbi/<stage>/<phase>", "-" for each phase.
std::vector<std::string> phases(const std::string& stage, const std::vector<std::string>& names) {
  std::vector<std::string> expected;
  for (const auto& name : names) expected.insert(expected.end(), {"+nsbi/" + stage + "/" + name, "-"});
  return expected;
}

TEST(InferenceStages, EachStageOpensItsPhasesProfilingRegions) {
  const Communicator world;
  const Campaign campaign =
      tiny_campaign("/tmp/nsbi-test-inference-regions-np" + std::to_string(world.size()));
  run_simulate(world, campaign, /*force=*/true);  // the observed events
  StageOptions options;
  options.force = true;
  EXPECT_EQ(regions_of([&] { run_infer(world, campaign, options); }),
            phases("infer", {"load", "scan", "write"}));
  EXPECT_EQ(regions_of([&] { run_test(world, campaign, options); }),
            phases("test", {"load", "toys", "write"}));
  EXPECT_EQ(regions_of([&] { run_calibrate(world, campaign, options); }),
            phases("calibrate", {"load", "toys", "belts", "write"}));
  EXPECT_EQ(regions_of([&] { run_coverage(world, campaign, options); }),
            phases("coverage", {"load", "toys", "belts", "write"}));
  // A complete stage run again without force: its load finds it complete, nothing else runs.
  EXPECT_EQ(regions_of([&] { run_infer(world, campaign, StageOptions()); }), phases("infer", {"load"}));
}

}  // namespace
}  // namespace nsbi::jobs
