// distributed::DatasetSimulation on this test's communicator (1, 2 or 4 ranks), from settings built directly:
// the file holds exactly the bits that one process computes serially with the simulator (the dataset does
// not depend on the number of ranks, gold included), a complete file of the same identity is kept, and one of
// another identity is refused without force; a run's phases are the profiling regions a Kokkos tool sees.
#include <gtest/gtest.h>
#include <unistd.h>

#include "dataset_files.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/distributed/block_schedule.hpp"
#include "nsbi/distributed/simulate_dataset.hpp"
#include "nsbi/sims/proposal.hpp"
#include "nsbi/sims/registry.hpp"
#include "profiling_regions.hpp"

namespace nsbi::distributed {
namespace {

constexpr std::uint64_t seed = 4242;

SimulateSettings settings_for(const std::string& path, const sims::Proposal& proposal, std::uint64_t n,
                              std::uint64_t block) {
  SimulateSettings settings;
  settings.path = path;
  settings.proposal = &proposal;
  settings.n_rows = n;
  settings.block_rows = block;
  settings.seed = seed;
  settings.simulator_seed = seed;
  settings.config_yaml = "test: {}";
  settings.identity = "test " + path + " n " + std::to_string(n);
  settings.provenance = collect_provenance({"test"}, 1);
  settings.force = true;
  settings.checkpoint_seconds = 0.0;
  return settings;
}

// Simulates `settings` into its file; returns the rows done at the start (an earlier run's).
std::uint64_t simulate(const Communicator& world, const sims::Simulator& simulator,
                       const SimulateSettings& settings) {
  DatasetSimulation simulation(world, simulator, settings);
  const std::uint64_t at_start = simulation.rows_done();
  if (simulation.state() == DatasetWriter::State::complete) return at_start;
  std::uint64_t last = at_start;
  simulation.run([&](std::uint64_t rows_done) {
    EXPECT_GE(rows_done, last);
    last = rows_done;
  });
  EXPECT_EQ(last, settings.n_rows);
  return at_start;
}

// The profiling regions this rank opens simulating a new file of `n_blocks` blocks with a checkpoint after
// every round: open; per round the simulator (unless the rank idles in the last round) and the write, within
// it the rows' write and the checkpoint; then finish, whose last checkpoint lies within it.
std::vector<std::string> simulate_regions(const Communicator& world, std::uint64_t n_blocks) {
  std::vector<std::string> expected{"+nsbi/simulate/open", "-"};
  std::vector<std::uint64_t> pending(n_blocks);
  for (std::uint64_t b = 0; b < n_blocks; ++b) pending[b] = b;
  for (std::uint64_t round = 0; round < BlockSchedule::rounds(n_blocks, world.size()); ++round) {
    if (BlockSchedule::block_for(pending, round, world.rank(), world.size()))
      expected.insert(expected.end(), {"+nsbi/simulate/simulator", "-"});
    expected.insert(expected.end(), {"+nsbi/simulate/write", "+nsbi/simulate/write_rows", "-",
                                     "+nsbi/simulate/checkpoint", "-", "-"});
  }
  expected.insert(expected.end(), {"+nsbi/simulate/finish", "+nsbi/simulate/checkpoint", "-", "-"});
  return expected;
}

std::vector<double> read_all(const std::string& path, const std::string& name) {
  h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  h5::Dataset d = file.root().open_dataset(name);
  const auto dims = d.dims();
  std::vector<double> out(dims[0] * (dims.size() > 1 ? dims[1] : 1));
  d.read_rows(0, dims[0], out.data());
  return out;
}

void expect_same_bits(const std::vector<double>& file, const double* serial, std::size_t size,
                      const std::string& what) {
  ASSERT_EQ(file.size(), size) << what;
  for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(file[i], serial[i]) << what << " " << i;
}

// gaussian2d with a truncated normal and a log-uniform proposal: their rows too are the serial computation's
// on any number of ranks (the test runs on 1, 2 and 4).
sims::Proposal normal_proposal(const sims::SimulatorInfo& info) {
  sims::ParameterProposal normal;
  normal.kind = sims::ParameterProposal::Kind::normal;
  normal.mean = 0.2;
  normal.sd = 0.3;
  normal.min = -1.0;
  normal.max = 0.5;
  sims::ParameterProposal log_uniform;
  log_uniform.kind = sims::ParameterProposal::Kind::log_uniform;
  log_uniform.min = 0.01;
  log_uniform.max = 0.9;
  return sims::Proposal(info, {normal, log_uniform});
}

TEST(SimulateDataset, DatasetEqualsTheSerialComputationBitForBit) {
  const Communicator world;
  const std::string dir = test::scratch_directory(world, "simulate-dataset");
  for (const std::string label : {"gaussian2d", "spin3d", "lepton", "gaussian2d-normal"}) {
    // An odd row count and a block size that does not divide it: the last round leaves some ranks idle.
    const std::uint64_t n = 10007;
    const std::string name = label.substr(0, label.find('-'));
    const auto simulator = sims::make_simulator(name);
    const auto& info = simulator->info();
    const sims::Proposal proposal =
        label == "gaussian2d-normal" ? normal_proposal(info) : sims::Proposal::default_for(info);
    const std::string path = dir + "/" + label + ".h5";
    simulate(world, *simulator, settings_for(path, proposal, n, 999));

    if (world.is_root()) {
      Matrix theta = make_matrix("theta", n, info.n_parameters());
      Matrix x = make_matrix("x", n, info.n_observables());
      proposal.sample(theta, 0, seed);
      simulator->simulate(theta, x, 0, seed);
      expect_same_bits(read_all(path, "theta"), theta.data(), theta.size(), label + " theta");
      expect_same_bits(read_all(path, "x"), x.data(), x.size(), label + " x");
      h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
      EXPECT_EQ(file.root().read_attribute<std::int64_t>("complete"), 1);
      EXPECT_EQ(file.root().read_attribute<std::string>("simulator"), name);
      EXPECT_NE(access((path + ".partial").c_str(), F_OK), 0);
    }
    world.barrier();
  }
}

// A reference dataset with gold: rows at θ0 from first_index on, their log ratio at θ drawn from the training
// proposal at the rows' own indices (gold_pairing).
TEST(SimulateDataset, GoldEqualsTheSerialComputationBitForBit) {
  const Communicator world;
  const std::string dir = test::scratch_directory(world, "simulate-dataset");
  const auto simulator = sims::make_simulator("particle_chain");
  const auto& info = simulator->info();
  const sims::Proposal training = sims::Proposal::default_for(info);
  std::vector<sims::ParameterProposal> point(info.n_parameters());
  std::vector<double> theta0;
  for (std::size_t p = 0; p < info.n_parameters(); ++p) {
    point[p].kind = sims::ParameterProposal::Kind::fixed;
    point[p].value = 0.5 * (info.parameters[p].min + info.parameters[p].max);
    theta0.push_back(point[p].value);
  }
  const sims::Proposal reference(info, point);
  const std::uint64_t n = 1003;
  const std::uint64_t first = 5000;
  const std::string path = dir + "/gold.h5";
  SimulateSettings settings = settings_for(path, reference, n, 97);
  settings.first_index = first;
  settings.gold_theta0 = theta0;
  settings.gold_pairing = &training;
  simulate(world, *simulator, settings);

  if (world.is_root()) {
    const std::size_t P = info.n_parameters();
    Matrix theta = make_matrix("theta", n, P);
    Matrix x = make_matrix("x", n, info.n_observables());
    Matrix gold_theta = make_matrix("gold_theta", n, P);
    Vector log_r("log_r", n);
    Matrix score = make_matrix("score", n, P);
    reference.sample(theta, first, seed);
    training.sample(gold_theta, first, seed);
    simulator->simulate_gold(ExecutionSpace(), theta, x, gold_theta, theta0.data(), log_r, score, first,
                             seed);
    expect_same_bits(read_all(path, "theta"), theta.data(), theta.size(), "theta");
    expect_same_bits(read_all(path, "x"), x.data(), x.size(), "x");
    expect_same_bits(read_all(path, "gold/log_r"), log_r.data(), log_r.size(), "log_r");
    expect_same_bits(read_all(path, "gold/score"), score.data(), score.size(), "score");
    expect_same_bits(read_all(path, "gold/theta"), gold_theta.data(), gold_theta.size(), "gold theta");
  }
  world.barrier();
}

// A new file's run opens every phase's region (simulate_regions); a complete file's only its opening.
TEST(SimulateDataset, CompleteDatasetIsKeptAndAnotherIdentityIsRefused) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "simulate-dataset") + "/keep.h5";
  const auto simulator = sims::make_simulator("gaussian2d");
  const sims::Proposal proposal = sims::Proposal::default_for(simulator->info());
  {
    const test::RecordedRegions regions;
    simulate(world, *simulator, settings_for(path, proposal, 500, 100));
    EXPECT_EQ(regions.nsbi_events(), simulate_regions(world, 5));
  }
  // The same settings again, without force: the file is kept, nothing to run.
  SimulateSettings same = settings_for(path, proposal, 500, 100);
  same.force = false;
  {
    const test::RecordedRegions regions;
    EXPECT_EQ(DatasetSimulation(world, *simulator, same).state(), DatasetWriter::State::complete);
    EXPECT_EQ(regions.nsbi_events(), (std::vector<std::string>{"+nsbi/simulate/open", "-"}));
  }
  EXPECT_EQ(simulate(world, *simulator, same), 500u);
  // Another identity over the same file: a collective config error that suggests --force.
  SimulateSettings other = settings_for(path, proposal, 600, 100);
  other.force = false;
  try {
    DatasetSimulation simulation(world, *simulator, other);
    FAIL() << "expected an error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("use --force"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nsbi::distributed
