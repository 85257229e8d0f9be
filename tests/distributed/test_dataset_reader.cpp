// DatasetReader on 1, 2 and 4 ranks: reads nsbi's and foreign writers' valid files, refuses every broken file
// with an input error naming the file and the problem, and check_finite reports the first NaN/Inf row of the
// file whichever rank scans it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "dataset_files.hpp"
#include "nsbi/distributed/dataset_reader.hpp"

namespace nsbi::distributed {
namespace {

using test::ForeignFile;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Rank 0 writes the file; every rank then opens it on its own, as training does.
std::string foreign_file(const Communicator& world, const std::string& name, const ForeignFile& spec) {
  const std::string path = test::scratch_directory(world, "reader") + "/" + name;
  if (world.is_root()) test::write_foreign_file(path, spec);
  world.barrier();
  return path;
}

// Opens `path`, expects an InputError (exit code 3) and returns its message.
std::string refusal(const std::string& path) {
  try {
    DatasetReader reader(path);
    ADD_FAILURE() << "expected an InputError for " << path;
  } catch (const InputError& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_TRUE(contains(e.what(), "'" + path + "'")) << "the message names the file: " << e.what();
    return e.what();
  }
  return {};
}

// Runs check_finite on every rank; expects the same collective input error everywhere and returns it.
std::string finite_refusal(const Communicator& world, const DatasetReader& reader, std::uint64_t budget) {
  try {
    reader.check_finite(world, budget);
    ADD_FAILURE() << "expected check_finite to fail";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_TRUE(contains(e.what(), "'" + reader.path() + "'")) << e.what();
    return e.what();
  }
  return {};
}

TEST(DatasetReader, ReadsWhatDatasetWriterWrote) {
  const Communicator world;
  const std::string path = test::scratch_directory(world, "reader") + "/written.h5";
  test::write_nsbi_dataset(world, path, 1000, 64, 2, 3);
  const DatasetReader reader(path);
  EXPECT_EQ(reader.n_rows(), 1000u);
  EXPECT_EQ(reader.parameter_names(), test::numbered("t", 2));
  EXPECT_EQ(reader.observable_names(), test::numbered("x", 3));
  EXPECT_EQ(reader.simulator(), "counting");
  EXPECT_EQ(reader.prior(), "t0: {kind: uniform, min: 0, max: 1}");
  EXPECT_EQ(reader.recorded_chunk_rows(), std::optional<std::uint64_t>(64));
  // Rows across a chunk boundary (64) land where they belong.
  std::vector<double> theta(7 * 2);
  std::vector<double> x(7 * 3);
  reader.read_rows(60, 7, theta.data(), x.data());
  for (std::uint64_t i = 0; i < 7; ++i) {
    for (std::uint64_t c = 0; c < 2; ++c) EXPECT_EQ(theta[i * 2 + c], test::theta_value(60 + i, c));
    for (std::uint64_t c = 0; c < 3; ++c) EXPECT_EQ(x[i * 3 + c], test::x_value(60 + i, c));
  }
  // A clean file passes, with reads of 25 rows at a time (5 doubles each).
  reader.check_finite(world, reader.hdf5_memory_bytes() + 1000);
}

TEST(DatasetReader, ReadsTheGoldDatasetWriterWrote) {
  const Communicator world;
  const std::string directory = test::scratch_directory(world, "reader");
  for (const bool with_theta : {false, true}) {
    const std::string path = directory + (with_theta ? "/gold-theta.h5" : "/gold.h5");
    test::write_nsbi_dataset(world, path, 50, 16, 2, 3, /*gold=*/true, with_theta);
    const DatasetReader reader(path);
    ASSERT_TRUE(reader.has_gold());
    EXPECT_EQ(reader.has_gold_theta(), with_theta);
    EXPECT_EQ(reader.gold_theta0(), (std::vector<double>{0.5, 0.5}));
    const std::size_t width = reader.gold_columns();
    ASSERT_EQ(width, with_theta ? 5u : 3u);
    std::vector<double> gold(7 * width);
    reader.read_gold(20, 7, gold.data());  // straddles the chunks of 16 rows
    for (std::uint64_t i = 0; i < 7; ++i)
      for (std::size_t c = 0; c < width; ++c)
        EXPECT_EQ(gold[i * width + c], test::gold_value(20 + i, c)) << "row " << 20 + i << " column " << c;
    reader.check_finite(world, 1 << 20);
  }
  test::write_nsbi_dataset(world, directory + "/plain.h5", 50, 16, 2, 3);
  const DatasetReader plain(directory + "/plain.h5");
  EXPECT_FALSE(plain.has_gold());
  EXPECT_EQ(plain.gold_columns(), 0u);
}

TEST(DatasetReader, RefusesIncompleteOrNonFiniteGold) {
  const Communicator world;
  const std::string directory = test::scratch_directory(world, "reader");
  const std::string path = directory + "/gold-broken.h5";
  const std::string no_score = directory + "/gold-no-score.h5";
  test::write_nsbi_dataset(world, path, 40, 16, 2, 3, /*gold=*/true, /*gold_theta=*/true);
  if (world.is_root()) {
    std::filesystem::copy_file(path, no_score, std::filesystem::copy_options::overwrite_existing);
    {
      h5::File file = h5::File::open(no_score, MPI_COMM_SELF, h5::Access::read_write);
      file.root().open_group("gold").remove("score");
    }
    h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read_write);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> row = {0.0, nan};
    file.root().open_dataset("gold/theta").write_rows(33, 1, row.data());
  }
  world.barrier();
  EXPECT_TRUE(contains(refusal(no_score), "/gold/score")) << refusal(no_score);
  const DatasetReader reader(path);
  const std::string message = finite_refusal(world, reader, 1 << 20);
  EXPECT_TRUE(contains(message, "row 33") && contains(message, "/gold/theta") && contains(message, "'t1'"))
      << message;
}

TEST(DatasetReader, ReadsAForeignFloat32File) {
  const Communicator world;
  ForeignFile spec;
  spec.x_type = h5::DataType::float32;
  const DatasetReader reader(foreign_file(world, "float32.h5", spec));
  EXPECT_EQ(reader.n_rows(), 100u);
  EXPECT_EQ(reader.simulator(), "mine");
  EXPECT_FALSE(reader.recorded_chunk_rows().has_value());
  std::vector<double> theta(2);
  std::vector<double> x(3);
  reader.read_rows(99, 1, theta.data(), x.data());
  for (std::uint64_t c = 0; c < 3; ++c) EXPECT_EQ(x[c], test::x_value(99, c));  // exact in float32
}

TEST(DatasetReader, RefusesForeignFiles) {
  const Communicator world;
  const std::string text_path = test::scratch_directory(world, "reader") + "/notes.txt";
  if (world.is_root()) std::ofstream(text_path) << "theta,x\n1,2\n";
  world.barrier();
  EXPECT_TRUE(contains(refusal(text_path), "not an HDF5 file"));

  ForeignFile no_format;
  no_format.has_format = false;
  EXPECT_TRUE(contains(refusal(foreign_file(world, "no_format.h5", no_format)),
                       "is not an nsbi dataset: it has no root attribute 'format'"));
  ForeignFile other_format;
  other_format.format = "madminer";
  EXPECT_TRUE(contains(refusal(foreign_file(world, "madminer.h5", other_format)),
                       "its 'format' is \"madminer\", not \"nsbi-dataset\""));
}

TEST(DatasetReader, RefusesATruncatedFile) {
  const Communicator world;
  const std::string directory = test::scratch_directory(world, "reader");
  test::write_nsbi_dataset(world, directory + "/whole.h5", 1000, 100, 2, 3);
  const std::string path = directory + "/truncated.h5";
  if (world.is_root()) {
    std::filesystem::copy_file(directory + "/whole.h5", path,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  }
  world.barrier();
  EXPECT_TRUE(contains(refusal(path), "truncated")) << "HDF5's reason is kept";
}

TEST(DatasetReader, RefusesAnUnfinishedPartialFile) {
  const Communicator world;
  const Communicator self(MPI_COMM_SELF);
  const std::string path = test::scratch_directory(world, "reader") + "/killed.h5";
  if (world.is_root()) {
    // A writer that never finishes: what a killed simulate run leaves behind.
    DatasetDescription description;
    description.parameter_names = {"a"};
    description.observable_names = {"b"};
    description.identity = "killed";
    description.n_rows = 10;
    description.block_rows = 5;
    DatasetWriter writer(self, path, description, /*force=*/true, /*checkpoint_seconds=*/0.0);
  }
  world.barrier();
  EXPECT_TRUE(contains(refusal(path + ".partial"), "is unfinished (complete = 0)"));
}

TEST(DatasetReader, RefusesAnEmptyDataset) {
  const Communicator world;
  ForeignFile spec;
  spec.theta_rows = 0;
  spec.x_rows = 0;
  EXPECT_TRUE(
      contains(refusal(foreign_file(world, "empty.h5", spec)), "is empty: '/theta' and '/x' have 0 rows"));
}

TEST(DatasetReader, RefusesMismatchedRowCounts) {
  const Communicator world;
  ForeignFile spec;
  spec.x_rows = 99;
  EXPECT_TRUE(
      contains(refusal(foreign_file(world, "mismatch.h5", spec)), "has 100 rows in '/theta' but 99 in '/x'"));
}

TEST(DatasetReader, RefusesMissingOrWrongNames) {
  const Communicator world;
  ForeignFile no_names;
  no_names.theta_has_names = false;
  EXPECT_TRUE(contains(refusal(foreign_file(world, "no_names.h5", no_names)),
                       "has no attribute 'names' on '/theta' (one string per column: 2 expected)"));
  ForeignFile short_names;
  short_names.n_x_names = 2;
  EXPECT_TRUE(contains(refusal(foreign_file(world, "short_names.h5", short_names)),
                       "has 2 entries in the 'names' of '/x', which has 3 columns"));
}

TEST(DatasetReader, RefusesIntegerData) {
  const Communicator world;
  ForeignFile spec;
  spec.x_type = h5::DataType::int64;
  EXPECT_TRUE(contains(refusal(foreign_file(world, "integers.h5", spec)),
                       "has '/x' of int64 elements; nsbi reads float64 or float32"));
}

TEST(DatasetReader, ReportsTheFirstNaNRowOfTheFile) {
  const Communicator world;
  ForeignFile spec;
  spec.theta_rows = spec.x_rows = 1000;
  // Row 333 is the first bad row; a later one (row 950, in another rank's slice at np 2 and 4) must not win.
  spec.x_overrides = {{333, 1, std::numeric_limits<double>::quiet_NaN()}};
  spec.theta_overrides = {{950, 0, std::numeric_limits<double>::infinity()}};
  const DatasetReader reader(foreign_file(world, "nan.h5", spec));
  const std::string expected = "row 333 has NaN in /x column 1 ('x1')";
  // Reads of 3 rows (120 bytes of 5 doubles beside HDF5's caches) and of the whole slice find the same row.
  EXPECT_TRUE(contains(finite_refusal(world, reader, reader.hdf5_memory_bytes() + 120), expected));
  EXPECT_TRUE(contains(finite_refusal(world, reader, std::uint64_t{64} << 20), expected));
}

TEST(DatasetReader, ReportsInfInTheta) {
  const Communicator world;
  ForeignFile spec;
  spec.theta_overrides = {{5, 1, -std::numeric_limits<double>::infinity()}};
  const DatasetReader reader(foreign_file(world, "inf.h5", spec));
  EXPECT_TRUE(contains(finite_refusal(world, reader, std::uint64_t{64} << 20),
                       "row 5 has -Inf in /theta column 1 ('t1')"));
}

}  // namespace
}  // namespace nsbi::distributed
