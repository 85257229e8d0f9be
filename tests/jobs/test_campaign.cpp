// The campaign schema: what the examples and the docs promise about it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "nsbi/jobs/campaign.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CampaignSchema, DocsListEveryKeyOfEverySimulator) {
  const std::string docs = read_text(std::string(NSBI_SOURCE_DIR) + "/docs/config.md");
  ASSERT_FALSE(docs.empty());
  for (const auto& simulator : sims::simulator_names()) {
    // external declares its parameters in its program's handshake: the example program stands in.
    const std::string command = simulator == "external" ? ", command: [" + std::string(NSBI_SOURCE_DIR) +
                                                              "/examples/external/smeared_gaussian.py]"
                                                        : "";
    auto config = config::Config::parse("simulator: {name: " + simulator + command + "}\n", "t.yaml");
    const config::Schema schema = campaign_schema(config);
    for (const auto& key : schema.keys()) {
      // Per-parameter proposal, prior, grid and point keys are documented once, <parameter> standing for the
      // name.
      std::string documented = std::regex_replace(
          key.path, std::regex(R"(^(simulate\.proposal|prior|[a-z]+\.grid)\.[^.]+\.)"), "$1.<parameter>.");
      documented = std::regex_replace(
          documented, std::regex(R"(^(simulate\.(observed|reference)\.theta|test\.h0|test\.h1)\.[^.]+$)"),
          "$1.<parameter>");
      EXPECT_NE(docs.find("`" + documented + "`"), std::string::npos)
          << documented << " is not in docs/config.md";
    }
  }
}

TEST(CampaignSchema, EveryExampleLoads) {
  const std::pair<const char*, const char*> examples[] = {{"quickstart", "gaussian2d"},
                                                          {"spin_test", "spin3d"},
                                                          {"lepton_mass", "lepton"},
                                                          {"lepton_spin", "lepton"},
                                                          {"particle_chain", "particle_chain"},
                                                          {"external_simulator", "external"}};
  // The examples' relative paths (external's command) are relative to the repository root.
  ASSERT_EQ(chdir(NSBI_SOURCE_DIR), 0);
  for (const auto& [example, simulator] : examples) {
    Invocation invocation;
    invocation.config_file = std::string(NSBI_SOURCE_DIR) + "/examples/" + example + ".yaml";
    const Campaign campaign = Campaign::load(invocation, 1);
    EXPECT_EQ(campaign.config.get<std::string>("simulator.name"), simulator);
    EXPECT_GT(campaign.seed, 0u);
  }
}

TEST(CampaignSchema, DefaultsAndOverridesReachTheResolvedConfig) {
  Invocation invocation;
  invocation.config_file = std::string(NSBI_SOURCE_DIR) + "/examples/lepton_mass.yaml";
  invocation.overrides = {"simulate.n_samples=1e3", "campaign.dir=elsewhere"};
  const Campaign campaign = Campaign::load(invocation, 1);
  EXPECT_EQ(campaign.dir, "elsewhere");
  EXPECT_EQ(campaign.output_path("dataset.h5"), "elsewhere/dataset.h5");
  EXPECT_EQ(campaign.output_path("/abs/d.h5"), "/abs/d.h5");
  const auto resolved = config::Config::parse(campaign.config.resolved_yaml(), "resolved");
  EXPECT_EQ(resolved.get<std::int64_t>("simulate.n_samples"), 1000);
  EXPECT_EQ(resolved.get<std::int64_t>("simulate.block_size"), 65536);  // a default, written out
  EXPECT_EQ(resolved.get<std::string>("simulate.proposal.spin.kind"), "choice");
}

}  // namespace
}  // namespace nsbi::jobs
