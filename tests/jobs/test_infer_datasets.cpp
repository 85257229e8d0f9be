// Several observed datasets in one `nsbi infer` run on a tiny gaussian2d campaign with the exact estimator
// (no model): each dataset's results under /infer/datasets/<name> are bitwise those of a run on that dataset
// alone, for the grid and for the chains, on 1 rank and on 2; `all` takes the file's datasets in name order;
// an unknown name is refused naming the key and the file; infer.outputs keeps only what it asks for; the
// datasets and the outputs are part of the stage's identity.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/jobs/stages.hpp"
#include "stage_results.hpp"

namespace nsbi::jobs {
namespace {

// Three datasets of 5, 1 and 8 events (x1, x2 in gaussian2d's domain), named out of name order.
const std::vector<std::pair<std::string, std::size_t>> observed_datasets = {{"b", 1}, {"a", 5}, {"c", 8}};

void write_observed(const std::string& path) {
  h5::File file = h5::File::create(path, MPI_COMM_SELF);
  {
    h5::Group root = file.root();
    root.write_attribute("format", "nsbi-observed");
    root.write_attribute("format_version", std::int64_t{1});
    double phase = 0;
    for (const auto& [name, rows] : observed_datasets) {
      h5::Group group = root.create_group("observed/" + name);
      group.write_attribute("observables", std::vector<std::string>{"x1", "x2"});
      std::vector<double> values(rows * 2);
      for (double& v : values) v = 1.5 * std::sin(phase += 1.3);
      h5::Dataset x = group.create_dataset("x", h5::DataType::float64, {rows, 2}, rows);
      x.write_rows(0, rows, values.data());
    }
  }
  file.close();
}

Campaign campaign_with(const std::string& dir, const std::string& observed, const std::string& extra) {
  const std::string yaml = "campaign: {seed: 5, dir: " + dir +
                           "}\n"
                           "simulator: {name: gaussian2d}\n"
                           "infer:\n"
                           "  observed: " +
                           observed +
                           "\n"
                           "  estimators: [exact]\n"
                           "  posterior_samples: 50\n"
                           "  grid: {mu2: {min: -0.9, max: 0.9, points: 7}, rho12: {min: -0.9, max: 0.9, "
                           "points: 5}}\n" +
                           extra;
  return test::campaign_from_yaml(yaml, "datasets.yaml");
}

// The paths of the datasets (not groups) below `group` of a results file, in name order.
std::vector<std::string> dataset_paths(const std::string& file_path, const std::string& group) {
  struct Found {
    hid_t group;
    std::vector<std::string> paths;
  };
  const hid_t file = H5Fopen(file_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(file, 0) << file_path;
  Found found{H5Gopen2(file, group.c_str(), H5P_DEFAULT), {}};
  H5Lvisit(
      found.group, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        auto* out = static_cast<Found*>(data);
        const hid_t object = H5Oopen(out->group, name, H5P_DEFAULT);
        if (H5Iget_type(object) == H5I_DATASET) out->paths.push_back(name);
        H5Oclose(object);
        return 0;
      },
      &found);
  H5Gclose(found.group);
  H5Fclose(file);
  return found.paths;
}

std::vector<double> read_doubles(const std::string& file_path, const std::string& name) {
  const h5::File file = h5::File::open(file_path, MPI_COMM_SELF, h5::Access::read);
  return test::read_doubles(file.root(), name);
}

template <class T>
T read_attribute(const std::string& file_path, const std::string& group, const std::string& name) {
  const h5::File file = h5::File::open(file_path, MPI_COMM_SELF, h5::Access::read);
  return file.root().open_group(group).read_attribute<T>(name);
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs infer (forced) with `extra` config lines; returns results.h5's path.
std::string infer(const Communicator& world, const std::string& dir, const std::string& observed,
                  const std::string& extra, bool force = true) {
  const Campaign campaign = campaign_with(dir, observed, extra);
  StageOptions options;
  options.force = force;
  run_infer(world, campaign, options);
  return campaign.output_path("results.h5");
}

// Every array of `single`'s /infer (one dataset) but the grid's equals, bit for bit, the same array of
// `several`'s /infer/datasets/<name>; the attributes of the best fit too.
void expect_same_results(const std::string& several, const std::string& name, const std::string& single,
                         const std::string& estimator) {
  const std::string group = "infer/datasets/" + name;
  std::size_t compared = 0;
  for (const std::string& path : dataset_paths(single, "infer")) {
    if (path.rfind("grid/", 0) == 0 || path == "log_prior" || path.rfind("box/", 0) == 0) continue;
    EXPECT_EQ(read_doubles(several, group + "/" + path), read_doubles(single, "infer/" + path))
        << name << ": " << path;
    ++compared;
  }
  EXPECT_GE(compared, 3u) << name;  // observed, and at least two arrays of the estimator
  EXPECT_EQ(read_attribute<double>(several, group + "/" + estimator, "t_min"),
            read_attribute<double>(single, "infer/" + estimator, "t_min"));
}

class InferDatasets : public testing::Test {
 protected:
  void SetUp() override {
    base_ = "/tmp/nsbi-test-infer-datasets-np" + std::to_string(world_.size());
    observed_ = base_ + "/observed.h5";
    if (world_.is_root()) {
      std::filesystem::create_directories(base_);
      write_observed(observed_);
    }
    world_.barrier();
  }
  const Communicator world_;
  std::string base_;
  std::string observed_;
};

TEST_F(InferDatasets, EachDatasetAsItsOwnRunOnAnyNumberOfRanks) {
  const std::string several = infer(world_, base_ + "/several", observed_, "  observed_dataset: [c, a, b]\n");
  // The same run on each rank alone (one rank) and on every rank together.
  const Communicator alone = world_.split(world_.rank());
  const std::string several_alone = infer(alone, base_ + "/several-rank" + std::to_string(world_.rank()),
                                          observed_, "  observed_dataset: [c, a, b]\n");
  const std::string all = infer(world_, base_ + "/all", observed_, "  observed_dataset: all\n");
  std::vector<std::string> singles;
  for (const std::string name : {"a", "b", "c"})
    singles.push_back(
        infer(world_, base_ + "/single-" + name, observed_, "  observed_dataset: " + name + "\n"));
  if (!world_.is_root()) return;

  EXPECT_EQ(read_attribute<std::vector<std::string>>(several, "infer", "datasets"),
            (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_EQ(read_attribute<std::vector<std::string>>(all, "infer", "datasets"),
            (std::vector<std::string>{"a", "b", "c"}));
  const std::vector<std::string> names = {"a", "b", "c"};
  for (std::size_t d = 0; d < names.size(); ++d) {
    expect_same_results(several, names[d], singles[d], "exact");
    expect_same_results(several_alone, names[d], singles[d], "exact");
    expect_same_results(all, names[d], singles[d], "exact");
  }
  // The single-dataset layout has no per-dataset groups; several datasets' summary is per dataset.
  EXPECT_TRUE(dataset_paths(singles[0], "infer").size() > 0);
  EXPECT_EQ(read_doubles(singles[0], "infer/exact/posterior_samples").size(), 50u * 2);
  const std::string summary = file_text(base_ + "/several/infer.json");
  EXPECT_NE(summary.find("\"datasets\": [\"c\", \"a\", \"b\"]"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"results_by_dataset\""), std::string::npos);
  EXPECT_EQ(file_text(base_ + "/single-a/infer.json").find("results_by_dataset"), std::string::npos);
}

TEST_F(InferDatasets, OnlyThePosteriorSamplesWhenOnlyTheyAreAsked) {
  const std::string results = infer(world_, base_ + "/samples", observed_,
                                    "  observed_dataset: [a, c]\n  outputs: [posterior_samples]\n");
  const std::string full = infer(world_, base_ + "/full", observed_, "  observed_dataset: [a, c]\n");
  if (!world_.is_root()) return;
  // The grid's axes (small), and per dataset its events and samples: no full-grid array.
  EXPECT_EQ(dataset_paths(results, "infer"),
            (std::vector<std::string>{"datasets/a/exact/posterior_samples", "datasets/a/observed",
                                      "datasets/c/exact/posterior_samples", "datasets/c/observed", "grid/mu2",
                                      "grid/rho12"}));
  for (const std::string name : {"a", "c"})
    EXPECT_EQ(read_doubles(results, "infer/datasets/" + name + "/exact/posterior_samples"),
              read_doubles(full, "infer/datasets/" + name + "/exact/posterior_samples"));
  EXPECT_GT(dataset_paths(full, "infer").size(), 30u);  // t, q, posterior, regions, ... of each
}

TEST_F(InferDatasets, UnknownDatasetNamesTheKeyAndTheFile) {
  try {
    infer(world_, base_ + "/unknown", observed_, "  observed_dataset: [a, nope]\n");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    const std::string what = e.what();
    EXPECT_NE(what.find("observed data '" + observed_ + "' has no dataset /observed/nope (it holds a, b, c)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("datasets.yaml:8:21: infer.observed_dataset"), std::string::npos) << what;
  }
  try {
    infer(world_, base_ + "/twice", observed_, "  observed_dataset: [a, a]\n");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("infer.observed_dataset: names the dataset 'a' twice"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(InferDatasets, TheDatasetsAndOutputsAreTheStageIdentity) {
  const std::string dir = base_ + "/identity";
  infer(world_, dir, observed_, "  observed_dataset: [a, b]\n");
  const auto refusal = [&](const std::string& extra) -> std::string {
    try {
      infer(world_, dir, observed_, extra, /*force=*/false);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage);
      return e.what();
    }
    return "no error";
  };
  // The same config is complete (skipped); other datasets or outputs are another identity.
  EXPECT_EQ(refusal("  observed_dataset: [a, b]\n"), "no error");
  EXPECT_NE(refusal("  observed_dataset: [a, c]\n").find("infer.observed_dataset"), std::string::npos);
  EXPECT_NE(refusal("  observed_dataset: [a, b]\n  outputs: [grid]\n").find("infer.outputs"),
            std::string::npos);
}

TEST_F(InferDatasets, ChainsPerDatasetAsItsOwnRun) {
  const std::string mcmc =
      "  posterior: mcmc\n  mcmc: {chains: 4, warmup: 20, samples: 20}\n  outputs: [posterior_samples]\n";
  const std::string several =
      infer(world_, base_ + "/mcmc-several", observed_, "  observed_dataset: [c, a]\n" + mcmc);
  const Communicator alone = world_.split(world_.rank());
  const std::string several_alone = infer(alone, base_ + "/mcmc-rank" + std::to_string(world_.rank()),
                                          observed_, "  observed_dataset: [c, a]\n" + mcmc);
  const std::string single = infer(world_, base_ + "/mcmc-a", observed_, "  observed_dataset: a\n" + mcmc);
  if (!world_.is_root()) return;
  for (const std::string& results : {several, several_alone})
    for (const std::string array : {"posterior_samples", "log_posterior", "rhat", "ess_bulk"})
      EXPECT_EQ(read_doubles(results, "infer/datasets/a/exact/" + array),
                read_doubles(single, "infer/exact/" + array))
          << array;
  EXPECT_NE(read_doubles(several, "infer/datasets/c/exact/posterior_samples"),
            read_doubles(single, "infer/exact/posterior_samples"));
  try {
    infer(world_, base_ + "/mcmc-grid", observed_,
          "  posterior: mcmc\n  outputs: [posterior_samples, grid]\n");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("infer.outputs: infer.posterior: mcmc writes posterior samples only"),
        std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nsbi::jobs
