// The training library without a campaign: settings built directly, a dataset written by nsbi's own writer,
// train_ensemble to a complete model record; a second call resumes the members from their finished
// checkpoints and gives the same bits; both calls and a slice open their phases' profiling regions; the
// network seam computes what kernels::Mlp computes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataset_files.hpp"
#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/training/ensemble.hpp"
#include "nsbi/training/network.hpp"
#include "profiling_regions.hpp"

namespace nsbi::training {
namespace {

Settings small_settings() {
  Settings s;
  s.seed = 5;
  s.marginal = true;  // no reference dataset needed
  s.network.head = {{8}, "relu"};
  s.batch_size = 32;
  s.epochs = 2;
  s.learning_rate = 1e-3;
  s.cosine = true;
  s.validation_fraction = 0.1;
  s.memory_budget_bytes = std::uint64_t{8} << 20;
  s.n_shards = 4;
  s.checkpoint_every = 1000;
  s.ensemble = 2;
  s.diagnostics_grid_points = 2;
  s.diagnostics_events = 100;
  return s;
}

// The profiling regions of train_ensemble on this rank: the scan, each of the rank's members (`members`) one
// after another, then the diagnostics when the ensemble is whole.
std::vector<std::string> ensemble_regions(std::size_t members, bool diagnostics) {
  std::vector<std::string> expected{"+nsbi/train/scan", "-"};
  for (std::size_t k = 0; k < members; ++k) expected.insert(expected.end(), {"+nsbi/train/member", "-"});
  if (diagnostics) expected.insert(expected.end(), {"+nsbi/train/diagnostics", "-"});
  return expected;
}

// train_ensemble, with the nsbi profiling regions it opens on this rank in `regions`.
EnsembleResult train_recording(const Communicator& world, const Settings& settings, const EnsembleJob& job,
                               std::vector<std::string>& regions) {
  const test::RecordedRegions recorded;
  EnsembleResult result = train_ensemble(world, settings, job);
  regions = recorded.nsbi_events();
  return result;
}

// A dataset of `rows` rows (1 parameter, 2 observables) in a scratch directory of its own, and the job that
// trains on it with its checkpoints beside it.
struct Scratch {
  std::string dir;
  distributed::DatasetReader dataset;
  EnsembleJob job;

  Scratch(const Communicator& world, const std::string& name, std::uint64_t rows)
      : dir(test::scratch_directory(world, name)), dataset(write(world, dir + "/dataset.h5", rows)) {
    job.dataset = &dataset;
    job.identity = name;
    job.checkpoint_directory = dir;
    job.checkpoint_path = [this](std::size_t k) { return dir + "/member-" + std::to_string(k) + ".h5"; };
  }

  static std::string write(const Communicator& world, const std::string& path, std::uint64_t rows) {
    test::write_nsbi_dataset(world, path, rows, 500, 1, 2);
    return path;
  }
};

TEST(TrainEnsemble, TrainsAModelAndResumesFinishedMembersWithTheSameBits) {
  const Communicator world;
  Scratch scratch(world, "training-ensemble", 2000);
  EnsembleJob& job = scratch.job;
  const Settings settings = small_settings();
  bool prepared = false;
  job.before_training = [&] {
    for (std::size_t k = 0; k < settings.ensemble; ++k) std::remove(job.checkpoint_path(k).c_str());
    prepared = true;
  };
  // 2 members on 1 rank: it trains both; on 2 ranks: one each, in groups of one rank.
  const std::size_t members_here = settings.ensemble / static_cast<std::size_t>(world.size());
  std::vector<std::string> regions;
  const EnsembleResult first = train_recording(world, settings, job, regions);
  EXPECT_EQ(regions, ensemble_regions(members_here, true));
  EXPECT_EQ(prepared, world.is_root());
  ASSERT_TRUE(first.complete);
  EXPECT_EQ(first.record.inconsistency(), "");
  ASSERT_EQ(first.record.n_members(), 2u);
  EXPECT_EQ(first.record.history[0].epoch.size(), settings.epochs);
  EXPECT_EQ(first.record.reference, "marginal");
  EXPECT_EQ(first.record.architecture.hidden, std::vector<std::size_t>{8});
  EXPECT_GT(first.steps, 0);
  EXPECT_NE(first.record.members[0], first.record.members[1]);  // each member has its own seed
  // The diagnostics are computed by the first group of ranks: the world's root has them.
  if (world.is_root()) {
    EXPECT_EQ(first.record.diagnostics.count("calibration"), 1u);
  }

  job.before_training = {};
  const EnsembleResult again = train_recording(world, settings, job, regions);
  EXPECT_EQ(regions, ensemble_regions(members_here, true));  // the finished members are read back
  ASSERT_TRUE(again.complete);
  EXPECT_EQ(again.steps, 0);  // every member was finished
  EXPECT_EQ(again.record.members, first.record.members);
}

TEST(TrainEnsemble, ASliceTrainsItsMembersAndMakesNoModel) {
  const Communicator world;
  Scratch scratch(world, "training-slice", 1000);
  EnsembleJob& job = scratch.job;
  Settings settings = small_settings();
  settings.epochs = 1;
  job.before_training = [&] { std::remove(job.checkpoint_path(1).c_str()); };
  job.members = {1, 2};
  std::vector<std::string> regions;
  EXPECT_FALSE(train_recording(world, settings, job, regions).complete);
  // Member 1 alone, on one group of every rank; no diagnostics without a model.
  EXPECT_EQ(regions, ensemble_regions(1, false));
}

TEST(Network, TheMlpHeadComputesWhatKernelsMlpComputes) {
  NetworkDescription description;
  description.head = {{6, 5}, "tanh"};
  const std::size_t n_inputs = 3;
  const std::unique_ptr<Network> network = make_network(description, n_inputs, /*tangents=*/false);
  const kernels::MlpArchitecture architecture = head_architecture(description, n_inputs);
  ASSERT_EQ(network->n_parameters(), architecture.n_parameters());
  FloatVector parameters = make_float_vector("parameters", network->n_parameters());
  FloatVector expected_parameters = make_float_vector("expected", architecture.n_parameters());
  network->initialise(11, parameters);
  kernels::initialise_parameters(architecture, 11, expected_parameters);
  FloatMatrix inputs = make_float_matrix("inputs", 4, n_inputs);
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < n_inputs; ++j) inputs(i, j) = 0.25f * static_cast<float>(i) - 0.5f * j;
  FloatVector logits = make_float_vector("logits", 4);
  FloatVector expected = make_float_vector("expected_logits", 4);
  network->forward(parameters, inputs, logits);
  kernels::Mlp mlp(architecture);
  mlp.forward(expected_parameters, inputs, expected);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(logits(i), expected(i));
  EXPECT_THROW(network->forward_with_tangents(parameters, inputs, FloatMatrix(), logits, FloatMatrix()),
               InternalError);
}

}  // namespace
}  // namespace nsbi::training
