// check_campaign_paths: no two outputs of a campaign share a path, in any spelling, and an input is no output
// but its own stage's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/campaign_outputs.hpp"

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

class CampaignPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("nsbi_test_campaign_outputs_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "run");
    ASSERT_EQ(chdir(root_.c_str()), 0);
  }
  void TearDown() override { fs::remove_all(root_); }

  // The check's message for a gaussian2d campaign in run/ from the config file `file` ("" when it passes),
  // with a reference dataset and observed data unless `yaml` says otherwise.
  static std::string refusal(const std::vector<std::string>& overrides, const std::string& yaml = "",
                             const std::string& file = "t.yaml") {
    const std::string text = "campaign: {dir: run}\nsimulator: {name: gaussian2d}\n" +
                             (yaml.empty() ? "simulate:\n  reference: {theta: {mu2: 0, rho12: 0}}\n"
                                             "  observed: {theta: {mu2: 0.3, rho12: 0.4}}\n"
                                           : yaml);
    config::Config config = config::Config::parse(text, file, overrides);
    config.validate(campaign_schema(config));
    try {
      check_campaign_paths(config);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path root_;
};

TEST_F(CampaignPaths, TheDefaultsAndDistinctPathsPass) {
  EXPECT_EQ(refusal({}), "");
  EXPECT_EQ(refusal({"simulate.output=data/d.h5", "train.output=models/m.h5", "infer.observed=real.csv"}),
            "");
  // Inputs may be the output of the stage that makes them, in any spelling.
  EXPECT_EQ(refusal({"train.dataset=./dataset.h5", "infer.model=" + (root_ / "run/model.h5").string()}), "");
  // Without simulate.reference.theta there is no reference dataset: its path is nobody's output.
  EXPECT_EQ(refusal({"simulate.reference.output=dataset.h5", "train.reference=marginal"},
                    "simulate: {n_samples: 10}\n"),
            "");
}

TEST_F(CampaignPaths, TwoOutputsOfOneFileAreRefusedInEverySpelling) {
  const std::string absolute = (root_ / "run/dataset.h5").string();
  for (const std::string& spelling :
       {std::string("dataset.h5"), std::string("./dataset.h5"), std::string("sub/../dataset.h5"), absolute,
        (root_ / "run/./x/../dataset.h5").string()}) {
    const std::string message = refusal({"simulate.reference.output=" + spelling});
    EXPECT_NE(
        message.find("--set simulate.reference.output=" + spelling + ": simulate.reference.output: is '" +
                     absolute + "', the same file as simulate.output"),
        std::string::npos)
        << spelling << ": " << message;
  }
  EXPECT_NE(refusal({"train.output=dataset.h5"})
                .find("train.output: is '" + absolute + "', the same file as simulate.output"),
            std::string::npos);
  // campaign.dir absolute, the output relative, and the other way round.
  EXPECT_NE(refusal({"campaign.dir=" + (root_ / "run").string(), "train.output=../run/observed.h5"})
                .find("train.output: is"),
            std::string::npos);
}

TEST_F(CampaignPaths, ASymbolicLinkIsTheFileItNames) {
  { std::ofstream(root_ / "run/dataset.h5") << "rows"; }
  fs::create_symlink("dataset.h5", root_ / "run/alias.h5");
  EXPECT_NE(refusal({"train.output=alias.h5"}).find("the same file as simulate.output"), std::string::npos);
  fs::create_directory_symlink("run", root_ / "link");
  EXPECT_NE(refusal({"train.output=" + (root_ / "link/reference.h5").string()})
                .find("the same file as simulate.reference.output"),
            std::string::npos);
}

TEST_F(CampaignPaths, FixedNamesDirectoriesAndPartialFilesAreOutputsToo) {
  EXPECT_NE(refusal({"simulate.output=results.h5"}).find("the same file as results.h5"), std::string::npos);
  EXPECT_NE(refusal({"train.output=infer.json"}).find("the same file as the summary of infer"),
            std::string::npos);
  EXPECT_NE(refusal({"train.output=checkpoints/m.h5"}).find("inside the directory checkpoints/ of train"),
            std::string::npos);
  EXPECT_NE(refusal({"simulate.output=work"}).find("the same file as the directory work/"),
            std::string::npos);
  EXPECT_NE(
      refusal({"simulate.output=."})
          .find("simulate.output: is '" + (root_ / "run").string() + "', a directory holding results.h5"),
      std::string::npos);
  EXPECT_NE(refusal({"simulate.reference.output=dataset.h5.partial"})
                .find("simulate.reference.output: is '" + (root_ / "run/dataset.h5.partial").string() +
                      "', the .partial file of simulate.output"),
            std::string::npos);
  EXPECT_NE(refusal({"simulate.observed.output=model.h5.partial"})
                .find("train.output: is '" + (root_ / "run/model.h5").string() +
                      "', whose .partial file is simulate.observed.output"),
            std::string::npos);
}

TEST_F(CampaignPaths, NoOutputIsTheConfigFile) {
  // refusal() names the config t.yaml, in the working directory (root_).
  EXPECT_NE(refusal({"train.output=../t.yaml"})
                .find("train.output: is '" + (root_ / "t.yaml").string() +
                      "', the same file as the campaign's config file: no output may overwrite it"),
            std::string::npos);
  EXPECT_NE(refusal({"campaign.dir=.", "simulate.output=t.yaml"}).find("simulate.output: is"),
            std::string::npos);
  EXPECT_EQ(refusal({"campaign.dir=."}), "");
  // The jobs of nsbi submit read <campaign.dir>/slurm/config.yaml: a config inside slurm/ is fine.
  EXPECT_EQ(refusal({}, "", "run/slurm/config.yaml"), "");
  EXPECT_NE(refusal({"simulate.observed.output=slurm/config.yaml"}, "", "run/slurm/config.yaml")
                .find("simulate.observed.output: is"),
            std::string::npos);
}

TEST_F(CampaignPaths, AnInputIsNoOutputButItsOwnStages) {
  EXPECT_NE(refusal({"infer.observed=dataset.h5"})
                .find("infer.observed: is '" + (root_ / "run/dataset.h5").string() +
                      "', the same file as simulate.output (the training dataset nsbi simulate writes): "
                      "infer.observed is read, and may be no output of the campaign but "
                      "simulate.observed.output"),
            std::string::npos);
  EXPECT_NE(refusal({"test.observed=results.h5"}).find("test.observed: is"), std::string::npos);
  EXPECT_NE(refusal({"train.dataset=model.h5"}).find("train.dataset: is"), std::string::npos);
  EXPECT_NE(refusal({"train.reference_dataset=observed.h5"}).find("train.reference_dataset: is"),
            std::string::npos);
  EXPECT_NE(refusal({"infer.model=dataset.h5"}).find("infer.model: is"), std::string::npos);
  // Observed data nsbi does not simulate may not be an output at all.
  EXPECT_NE(refusal({"infer.observed=model.h5"}, "simulate: {n_samples: 10}\n").find("infer.observed: is"),
            std::string::npos);
}

}  // namespace
}  // namespace nsbi::jobs
