// Datasets of an array observable (an image per row) on this test's communicator (1, 2 or 3 ranks), with the
// test-only ArraySimulator (x of shape {1, 3, 4}, float32): /x is [N, 1, 3, 4] float32 in chunks of whole
// images that divide the block, optionally deflated; the file holds exactly the bits one process computes
// serially, for every rank count, compressed or not, and after a run stopped midway is resumed; the reader
// returns the images flattened row-major and refuses another shape; float32 is written exactly or refused.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "array_simulator.hpp"
#include "dataset_files.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/distributed/simulate_dataset.hpp"
#include "nsbi/sims/proposal.hpp"

namespace nsbi::distributed {
namespace {

constexpr std::uint64_t seed = 99;
constexpr std::uint64_t n_rows = 103;
constexpr std::uint64_t block_rows = 10;  // 11 blocks, the last of 3 rows: some ranks idle in the last round

const h5::Compression deflate{h5::Compression::Filter::deflate, 4};

SimulateSettings settings_for(const std::string& path, const sims::Proposal& proposal,
                              const h5::Compression& compression) {
  SimulateSettings settings;
  settings.path = path;
  settings.proposal = &proposal;
  settings.n_rows = n_rows;
  settings.block_rows = block_rows;
  settings.seed = seed;
  settings.simulator_seed = seed;
  settings.x_compression = compression;
  settings.config_yaml = "test: {}";
  settings.identity = "array test " + h5::to_string(compression);
  settings.provenance = collect_provenance({"test"}, 1);
  settings.force = false;
  settings.checkpoint_seconds = 0.0;
  return settings;
}

// The rows one process computes serially: theta [n, 1] and x [n, 12].
struct Serial {
  explicit Serial(const sims::Proposal& proposal)
      : theta(make_matrix("theta", n_rows, 1)), x(make_matrix("x", n_rows, 12)) {
    proposal.sample(theta, 0, seed);
    test::ArraySimulator().simulate(theta, x, 0, seed);
  }
  Matrix theta, x;
};

// The deflate filters on /x (HDF5's C API: the wrapper does not report filters).
int deflate_filters(const std::string& path) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t x = H5Dopen2(file, "x", H5P_DEFAULT);
  const hid_t creation = H5Dget_create_plist(x);
  int found = 0;
  for (int i = 0; i < H5Pget_nfilters(creation); ++i) {
    unsigned flags = 0;
    std::size_t n_values = 0;
    if (H5Pget_filter2(creation, static_cast<unsigned>(i), &flags, &n_values, nullptr, 0, nullptr, nullptr) ==
        H5Z_FILTER_DEFLATE)
      ++found;
  }
  H5Pclose(creation);
  H5Dclose(x);
  H5Fclose(file);
  return found;
}

// Every dataset of the file against the serial rows: /theta, /x (float32 [N, 1, 3, 4]) and the progress.
void expect_serial_file(const std::string& path, const Serial& serial, bool deflated) {
  h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  const h5::Group root = file.root();
  const h5::Dataset x = root.open_dataset("x");
  EXPECT_EQ(x.dims(), (std::vector<hsize_t>{n_rows, 1, 3, 4}));
  EXPECT_EQ(x.type(), h5::DataType::float32);
  EXPECT_EQ(x.chunk_rows(), block_rows);  // 10 images of 48 bytes: far below 1 MiB
  EXPECT_EQ(x.read_attribute<std::vector<std::string>>("names"), std::vector<std::string>{"image"});
  std::vector<float> x_values(n_rows * 12);
  x.read_rows(0, n_rows, x_values.data());
  for (std::size_t i = 0; i < x_values.size(); ++i)
    ASSERT_EQ(static_cast<double>(x_values[i]), serial.x.data()[i]) << "x value " << i;
  std::vector<double> theta(n_rows);
  root.open_dataset("theta").read_rows(0, n_rows, theta.data());
  for (std::size_t i = 0; i < n_rows; ++i) ASSERT_EQ(theta[i], serial.theta.data()[i]) << "theta " << i;
  std::vector<std::uint8_t> done(11);
  root.open_dataset("progress/blocks_done").read_rows(0, 11, done.data());
  EXPECT_EQ(done, std::vector<std::uint8_t>(11, 1));
  EXPECT_EQ(root.read_attribute<std::vector<std::string>>("observable_names"),
            std::vector<std::string>{"image"});
  EXPECT_EQ(deflate_filters(path), deflated ? 1 : 0);
}

void remove_files(const Communicator& world, const std::string& path) {
  if (world.is_root()) {
    std::remove(path.c_str());
    std::remove((path + ".partial").c_str());
  }
  world.barrier();
}

TEST(ArrayDataset, ImagesEqualTheSerialComputationBitForBit) {
  const Communicator world;
  const std::string dir = test::scratch_directory(world, "array-dataset");
  const test::ArraySimulator simulator;
  const sims::Proposal proposal = sims::Proposal::default_for(simulator.info());
  const Serial serial(proposal);
  for (const h5::Compression& compression : {h5::Compression{}, deflate}) {
    const std::string path = dir + "/images-" + std::to_string(compression.level) + ".h5";
    remove_files(world, path);
    DatasetSimulation simulation(world, simulator, settings_for(path, proposal, compression));
    EXPECT_EQ(simulation.state(), DatasetWriter::State::created);
    simulation.run([](std::uint64_t) {});
    if (world.is_root())
      expect_serial_file(path, serial, compression.filter != h5::Compression::Filter::none);
    world.barrier();
  }
}

// A run that fails at row 55 (in block 5) keeps the blocks written before; the next run with the same
// identity resumes them and the file is what an uninterrupted run writes.
TEST(ArrayDataset, StoppedRunResumesToTheSameBits) {
  const Communicator world;
  const std::string dir = test::scratch_directory(world, "array-dataset");
  const sims::Proposal proposal = sims::Proposal::default_for(test::ArraySimulator().info());
  const Serial serial(proposal);
  for (const h5::Compression& compression : {h5::Compression{}, deflate}) {
    const std::string path = dir + "/resumed-" + std::to_string(compression.level) + ".h5";
    remove_files(world, path);
    const test::ArraySimulator failing(55);
    {
      DatasetSimulation simulation(world, failing, settings_for(path, proposal, compression));
      EXPECT_THROW(simulation.run([](std::uint64_t) {}), CollectiveError);
    }
    EXPECT_EQ(access((path + ".partial").c_str(), F_OK), 0);
    const test::ArraySimulator simulator;
    DatasetSimulation resumed(world, simulator, settings_for(path, proposal, compression));
    EXPECT_EQ(resumed.state(), DatasetWriter::State::resumed);
    // The rounds before the one of block 5 are in (a round of P ranks writes blocks kP to kP + P - 1); the
    // failing round wrote nothing.
    const auto ranks = static_cast<std::uint64_t>(world.size());
    EXPECT_EQ(resumed.rows_done(), 5 / ranks * ranks * block_rows);
    resumed.run([](std::uint64_t) {});
    if (world.is_root())
      expect_serial_file(path, serial, compression.filter != h5::Compression::Filter::none);
    world.barrier();
  }
}

// The reader hands back each image flattened row-major, names its elements, and checks the shape against a
// simulator's.
TEST(ArrayDataset, ReaderReturnsFlattenedRowsAndRefusesAnotherShape) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "array-dataset") + "/read.h5";
  remove_files(world, path);
  const test::ArraySimulator simulator;
  const sims::Proposal proposal = sims::Proposal::default_for(simulator.info());
  DatasetSimulation(world, simulator, settings_for(path, proposal, deflate)).run([](std::uint64_t) {});
  const Serial serial(proposal);
  const DatasetReader reader(path);
  EXPECT_TRUE(reader.is_array());
  EXPECT_EQ(reader.observable_shape(), (std::vector<std::size_t>{1, 3, 4}));
  EXPECT_EQ(reader.n_observables(), 12u);
  EXPECT_EQ(reader.observable_names(), std::vector<std::string>{"image"});
  EXPECT_EQ(reader.observable_column(7), "image[0, 1, 3]");
  // Rows 17 to 41, across chunk boundaries.
  std::vector<double> theta(25);
  std::vector<double> x(25 * 12);
  reader.read_rows(17, 25, theta.data(), x.data());
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], serial.x.data()[17 * 12 + i]) << i;
  reader.check_finite(world, std::uint64_t{64} << 20);
  reader.check_observable_shape({1, 3, 4});
  try {
    reader.check_observable_shape({1, 4, 3});
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("'/x' of shape [103, 1, 3, 4]"), std::string::npos) << what;
    EXPECT_NE(what.find("array of shape [1, 4, 3]"), std::string::npos) << what;
  }
  EXPECT_THROW(reader.check_observable_shape({}), InputError);
}

DatasetDescription image_description(const Communicator& world, const std::string& path) {
  DatasetDescription description;
  description.simulator = "array_test";
  description.parameter_names = {"rate"};
  description.observable_names = {"image"};
  description.observable_shape = {1, 3, 4};
  description.x_float32 = true;
  description.identity = "float32 " + path;
  description.provenance = collect_provenance({"test"}, world.size());
  description.n_rows = 2;
  description.block_rows = 2;
  return description;
}

// Values float32 holds are written and read back exactly (the largest integer of 24 bits, a subnormal, the
// largest finite float); a value it does not hold (0.1) is refused, naming the file and the row.
TEST(ArrayDataset, Float32IsWrittenExactlyOrRefused) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "array-dataset") + "/float32.h5";
  const std::vector<double> exact = {16777215.0,
                                     static_cast<double>(std::numeric_limits<float>::denorm_min()),
                                     static_cast<double>(std::numeric_limits<float>::max()),
                                     -0.0,
                                     -2.5,
                                     0.15625};
  std::vector<double> x(24);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = exact[i % exact.size()] * (i < 12 ? 1.0 : -1.0);
  const std::vector<double> theta = {1.0, 2.0};
  {
    DatasetWriter writer(world, path, image_description(world, path), /*force=*/true, 0.0);
    writer.write_round(world.is_root() ? std::optional<std::uint64_t>(0) : std::nullopt, theta.data(),
                       x.data());
    writer.finish();
  }
  const DatasetReader reader(path);
  std::vector<double> back(24);
  std::vector<double> theta_back(2);
  reader.read_rows(0, 2, theta_back.data(), back.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(back[i], x[i]) << i;
    EXPECT_EQ(std::signbit(back[i]), std::signbit(x[i])) << i;
  }
  // Every rank has read the file before the next writer replaces it.
  world.barrier();
  x[13] = 0.1;
  DatasetWriter writer(world, path, image_description(world, path), /*force=*/true, 0.0);
  try {
    writer.write_round(world.is_root() ? std::optional<std::uint64_t>(0) : std::nullopt, theta.data(),
                       x.data());
    FAIL() << "expected an error";
  } catch (const CollectiveError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("row 1 of '" + path), std::string::npos) << what;
    EXPECT_NE(what.find("float32 does not hold exactly"), std::string::npos) << what;
  }
}

// Chunks of /x: the block for tabular uncompressed x (as every file before arrays); otherwise whole rows
// dividing the block, at most 1 MiB.
TEST(ArrayDataset, ChunksOfWholeImagesDivideTheBlock) {
  DatasetDescription d;
  d.observable_names = {"a", "b"};
  d.block_rows = 65536;
  EXPECT_EQ(x_chunk_rows(d), 65536u);
  d.x_compression = deflate;
  EXPECT_EQ(x_chunk_rows(d), 65536u);  // 16 bytes a row: 1 MiB holds the whole block
  d.block_rows = 100000;
  EXPECT_EQ(x_chunk_rows(d), 50000u);  // the largest divisor of 100000 up to 65536
  d.observable_names = {"image"};
  d.observable_shape = {1, 64, 64};
  d.x_float32 = true;
  d.x_compression = {};
  d.block_rows = 1000;
  EXPECT_EQ(x_chunk_rows(d), 50u);  // 16 KiB a row: 64 fit in 1 MiB, 50 divides 1000
  d.block_rows = 67;                // prime
  EXPECT_EQ(x_chunk_rows(d), 1u);
  d.x_float32 = false;
  d.observable_shape = {1, 512, 512};  // 2 MiB a row: one row a chunk
  d.block_rows = 64;
  EXPECT_EQ(x_chunk_rows(d), 1u);
}

}  // namespace
}  // namespace nsbi::distributed
