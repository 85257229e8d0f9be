// The simulate stage (config → distributed::DatasetSimulation → simulate.json) on this test's communicator (1
// or 2 ranks): the dataset holds the bits one process computes serially from the same config, a complete one
// is kept, another config is refused, and the identity follows the simulator's stream version. The library's
// own test (tests/distributed/test_simulate_dataset.cpp) covers every simulator, the gold and 4 ranks.
#include <gtest/gtest.h>
#include <unistd.h>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

Campaign campaign_for(const std::string& simulator, const std::string& dir, std::int64_t n,
                      std::int64_t block) {
  const std::string yaml = "campaign: {seed: 4242, dir: " + dir + "}\nsimulator: {name: " + simulator +
                           "}\nsimulate: {n_samples: " + std::to_string(n) +
                           ", block_size: " + std::to_string(block) + "}\n";
  config::Config config = config::Config::parse(yaml, "test.yaml");
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance({"test"}, 1));
}

std::vector<double> read_all(const std::string& path, const std::string& name) {
  h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  h5::Dataset d = file.root().open_dataset(name);
  const auto dims = d.dims();
  std::vector<double> out(dims[0] * dims[1]);
  d.read_rows(0, dims[0], out.data());
  return out;
}

TEST(SimulateStage, DatasetEqualsTheSerialComputationBitForBit) {
  const Communicator world;
  const std::string simulator = "gaussian2d";
  // An odd row count and a block size that does not divide it: the last round leaves some ranks idle.
  const std::int64_t n = 10007;
  const std::string dir = "/tmp/nsbi-test-simulate-np" + std::to_string(world.size()) + "/" + simulator;
  const Campaign campaign = campaign_for(simulator, dir, n, 999);
  run_simulate(world, campaign, /*force=*/true);

  if (world.is_root()) {
    const auto sim = sims::make_simulator(simulator);
    const auto& info = sim->info();
    Matrix theta = make_matrix("theta", n, info.n_parameters());
    Matrix x = make_matrix("x", n, info.n_observables());
    sims::Proposal::default_for(info).sample(theta, 0, campaign.seed);
    sim->simulate(theta, x, 0, campaign.seed);
    const auto theta_file = read_all(dir + "/dataset.h5", "theta");
    const auto x_file = read_all(dir + "/dataset.h5", "x");
    ASSERT_EQ(theta_file.size(), theta.size());
    ASSERT_EQ(x_file.size(), x.size());
    for (std::size_t i = 0; i < theta_file.size(); ++i)
      ASSERT_EQ(theta_file[i], theta.data()[i]) << simulator << " theta " << i;
    for (std::size_t i = 0; i < x_file.size(); ++i)
      ASSERT_EQ(x_file[i], x.data()[i]) << simulator << " x " << i;
    h5::File file = h5::File::open(dir + "/dataset.h5", MPI_COMM_SELF, h5::Access::read);
    EXPECT_EQ(file.root().read_attribute<std::int64_t>("complete"), 1);
    EXPECT_EQ(file.root().read_attribute<std::string>("simulator"), simulator);
    EXPECT_EQ(access((dir + "/simulate.json").c_str(), R_OK), 0);
    EXPECT_NE(access((dir + "/dataset.h5.partial").c_str(), F_OK), 0);
  }
  world.barrier();
}

TEST(SimulateStage, CompleteDatasetIsKeptAndAnotherConfigIsRefused) {
  const Communicator world;
  const std::string dir = "/tmp/nsbi-test-simulate-np" + std::to_string(world.size()) + "/keep";
  run_simulate(world, campaign_for("gaussian2d", dir, 500, 100), /*force=*/true);
  // Same config again: nothing to do, no error.
  run_simulate(world, campaign_for("gaussian2d", dir, 500, 100), /*force=*/false);
  // Another config over the same file: a collective config error that suggests --force.
  try {
    run_simulate(world, campaign_for("gaussian2d", dir, 600, 100), /*force=*/false);
    FAIL() << "expected an error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("use --force"), std::string::npos) << e.what();
  }
}

// A simulator whose rows changed with its code (stream_version > 1) puts its version into the dataset's
// identity, so that a file made by the earlier code is neither resumed nor kept; version 1 adds nothing,
// which keeps the identities of files made before versions existed.
TEST(SimulateStage, IdentityCarriesTheSimulatorsStreamVersion) {
  const Communicator world;
  for (const std::string simulator : {"particle_chain", "gaussian2d"}) {
    const std::string dir =
        "/tmp/nsbi-test-simulate-np" + std::to_string(world.size()) + "/version-" + simulator;
    run_simulate(world, campaign_for(simulator, dir, 64, 32), /*force=*/true);
    if (world.is_root()) {
      h5::File file = h5::File::open(dir + "/dataset.h5", MPI_COMM_SELF, h5::Access::read);
      const std::string identity = file.root().read_attribute<std::string>("identity");
      const int version = sims::make_simulator(simulator)->info().stream_version;
      const std::string line = "simulator_version: " + std::to_string(version);
      if (version > 1)
        EXPECT_NE(identity.find(line), std::string::npos) << simulator << ": " << identity;
      else
        EXPECT_EQ(identity.find("simulator_version"), std::string::npos) << simulator << ": " << identity;
    }
    world.barrier();
  }
  EXPECT_GT(sims::make_simulator("particle_chain")->info().stream_version, 1);
}

}  // namespace
}  // namespace nsbi::jobs
