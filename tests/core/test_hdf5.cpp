// The HDF5 wrapper on 1, 2 and 4 ranks: collective interleaved row writes read back on every rank, attributes
// of every type (including fixed-length strings and foreign numeric types), and failures that throw h5::Error
// naming the file and carrying HDF5's reason, without HDF5 printing its own diagnostics.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"

namespace {

using nsbi::h5::Access;
using nsbi::h5::Dataset;
using nsbi::h5::DataType;
using nsbi::h5::File;
using nsbi::h5::Group;

int comm_rank() { return nsbi::Communicator().rank(); }

int comm_size() { return nsbi::Communicator().size(); }

// One directory per communicator size, because CTest runs the np variants of this test concurrently.
std::string scratch_path(const std::string& file_name) {
  const std::string directory = "/tmp/nsbi-test-hdf5-np" + std::to_string(comm_size());
  if (comm_rank() == 0) std::filesystem::create_directories(directory);
  nsbi::Communicator().barrier();
  return directory + "/" + file_name;
}

// Distinct per element and representable exactly in every element type (below 251, plus a third for floats,
// which rounds the same way on the writing and the checking side).
template <class T>
T expected_value(hsize_t row, hsize_t col) {
  const auto base = static_cast<double>((row * 31 + col * 7) % 251);
  return static_cast<T>(std::is_floating_point_v<T> ? base + 1.0 / 3.0 : base);
}

template <class T>
std::vector<T> expected_rows(hsize_t first_row, hsize_t n_rows, hsize_t n_cols) {
  std::vector<T> values(n_rows * n_cols);
  for (hsize_t row = 0; row < n_rows; ++row)
    for (hsize_t col = 0; col < n_cols; ++col)
      values[row * n_cols + col] = expected_value<T>(first_row + row, col);
  return values;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `action`, expects an nsbi::h5::Error (an input error, exit code 3) and returns its message; HDF5 must
// not have printed its diagnostics meanwhile.
template <class Action>
std::string h5_error_message(Action&& action) {
  testing::internal::CaptureStderr();
  std::string message;
  try {
    action();
    ADD_FAILURE() << "expected nsbi::h5::Error";
  } catch (const nsbi::h5::Error& error) {
    message = error.what();
    EXPECT_EQ(error.code(), nsbi::ExitCode::bad_input);
  } catch (...) {
    testing::internal::GetCapturedStderr();
    throw;
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(contains(printed, "HDF5-DIAG")) << printed;
  return message;
}

template <class T>
class Hdf5RowIo : public ::testing::Test {};
using ElementTypes = ::testing::Types<double, float, std::int64_t, std::uint8_t>;
TYPED_TEST_SUITE(Hdf5RowIo, ElementTypes);

TYPED_TEST(Hdf5RowIo, InterleavedCollectiveBlocksReadBackOnEveryRank) {
  using T = TypeParam;
  constexpr DataType type = nsbi::h5::data_type_of<T>::value;
  const auto size = static_cast<hsize_t>(comm_size());
  const auto rank = static_cast<hsize_t>(comm_rank());
  // Blocks of 4 rows go round-robin to the ranks; chunks of 5 rows straddle blocks, so ranks share chunks.
  // 3 * size + 1 blocks: in the last round only rank 0 writes and the others pass n_rows = 0 (at np 1 every
  // round is full). The last block is 2 rows short.
  constexpr hsize_t block_rows = 4, n_cols = 3, chunk_rows = 5;
  const hsize_t n_blocks = 3 * size + 1;
  const hsize_t n_rows = n_blocks * block_rows - 2;
  const hsize_t n_rounds = (n_blocks + size - 1) / size;
  const std::string path = scratch_path("rows-" + nsbi::h5::to_string(type) + ".h5");
  {
    File file = File::create(path, MPI_COMM_WORLD);
    Dataset dataset = file.root().create_dataset("samples/x", type, {n_rows, n_cols}, chunk_rows);
    for (hsize_t round = 0; round < n_rounds; ++round) {
      const hsize_t first = std::min((round * size + rank) * block_rows, n_rows);
      const hsize_t count = std::min(first + block_rows, n_rows) - first;
      const std::vector<T> values = expected_rows<T>(first, count, n_cols);
      dataset.write_rows(first, count, values.data());
      EXPECT_TRUE(dataset.last_write_was_collective()) << "round " << round << ", rank " << rank;
    }
  }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  const Dataset dataset = file.root().open_dataset("samples/x");
  EXPECT_EQ(dataset.name(), "/samples/x");
  EXPECT_EQ(dataset.type(), type);
  ASSERT_EQ(dataset.dims(), (std::vector<hsize_t>{n_rows, n_cols}));
  std::vector<T> values(n_rows * n_cols);
  dataset.read_rows(0, n_rows, values.data());
  EXPECT_EQ(values, (expected_rows<T>(0, n_rows, n_cols)));
  // A range in the middle lands at the start of the buffer.
  std::vector<T> middle(5 * n_cols);
  dataset.read_rows(3, 5, middle.data());
  EXPECT_EQ(middle, (expected_rows<T>(3, 5, n_cols)));
}

TEST(Hdf5Rows, UnwrittenRowsReadAsTheFillValueZero) {
  const std::string path = scratch_path("fill.h5");
  constexpr hsize_t n_rows = 10, written = 3;
  {
    File file = File::create(path, MPI_COMM_WORLD);
    Dataset dataset = file.root().create_dataset("log_r", DataType::float64, {n_rows}, 4);
    const hsize_t count = comm_rank() == 0 ? written : 0;
    const std::vector<double> values = expected_rows<double>(0, count, 1);
    dataset.write_rows(0, count, values.data());
    EXPECT_TRUE(dataset.last_write_was_collective());
    // A round in which no rank has anything to write still completes, collectively, and changes nothing.
    dataset.write_rows<double>(n_rows, 0, nullptr);
    EXPECT_TRUE(dataset.last_write_was_collective());
  }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  std::vector<double> values(n_rows, -1.0);
  file.root().open_dataset("log_r").read_rows(0, n_rows, values.data());
  std::vector<double> expected = expected_rows<double>(0, written, 1);
  expected.resize(n_rows, 0.0);
  EXPECT_EQ(values, expected);
}

TEST(Hdf5Rows, ReadsWidenLosslesslyAndRefuseEverythingElse) {
  const std::string path = scratch_path("widen.h5");
  constexpr hsize_t n_rows = 6;
  File file = File::create(path, MPI_COMM_WORLD);
  Group root = file.root();
  Dataset narrow = root.create_dataset("x32", DataType::float32, {n_rows}, n_rows);
  Dataset bytes = root.create_dataset("flags", DataType::uint8, {n_rows}, n_rows);
  Dataset wide = root.create_dataset("x64", DataType::float64, {n_rows}, n_rows);
  const hsize_t count = comm_rank() == 0 ? n_rows : 0;
  narrow.write_rows(0, count, expected_rows<float>(0, count, 1).data());
  bytes.write_rows(0, count, expected_rows<std::uint8_t>(0, count, 1).data());
  wide.write_rows(0, count, expected_rows<double>(0, count, 1).data());
  file.flush();
  nsbi::Communicator().barrier();

  std::vector<double> as_double(n_rows);
  narrow.read_rows(0, n_rows, as_double.data());
  for (hsize_t row = 0; row < n_rows; ++row)
    EXPECT_EQ(as_double[row], static_cast<double>(expected_value<float>(row, 0))) << row;
  std::vector<std::int64_t> as_int(n_rows);
  bytes.read_rows(0, n_rows, as_int.data());
  for (hsize_t row = 0; row < n_rows; ++row)
    EXPECT_EQ(as_int[row], expected_value<std::int64_t>(row, 0)) << row;

  std::vector<float> as_float(n_rows);
  const std::string narrowing = h5_error_message([&] { wide.read_rows(0, n_rows, as_float.data()); });
  EXPECT_TRUE(contains(narrowing, "'/x64' in '" + path + "'")) << narrowing;
  EXPECT_TRUE(contains(narrowing, "float64 elements, which cannot be read as float32")) << narrowing;
  // Every rank refuses before the collective transfer starts, so none is left waiting.
  const std::vector<double> doubles(n_rows, 1.0);
  const std::string converting = h5_error_message([&] { narrow.write_rows(0, n_rows, doubles.data()); });
  EXPECT_TRUE(contains(converting, "'/x32' in '" + path + "'")) << converting;
  EXPECT_TRUE(contains(converting, "holds float32 elements, the buffer float64")) << converting;
  const std::string outside = h5_error_message([&] { wide.read_rows(4, 3, as_double.data()); });
  EXPECT_TRUE(contains(outside, "rows [4, 7) of '/x64'")) << outside;
  EXPECT_TRUE(contains(outside, "it has only 6 rows")) << outside;
}

TEST(Hdf5Attributes, EveryTypeRoundTripsOnGroupsAndDatasets) {
  const std::string path = scratch_path("attributes.h5");
  const std::string utf8 = "θ₀ = 1.5 µm, σ ≥ 0";
  const std::vector<double> theta0 = {0.5, -2.0, 1e300, 5e-324};
  const std::vector<std::string> names = {"mu", "σ", ""};
  constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t small = std::numeric_limits<std::int64_t>::min();
  {
    File file = File::create(path, MPI_COMM_WORLD);
    {
      Group root = file.root();
      Group nested = root.create_group("gold/nested");
      Dataset dataset = nested.create_dataset("score", DataType::float64, {4, 2}, 2);
      for (nsbi::h5::Object* object : std::vector<nsbi::h5::Object*>{&root, &nested, &dataset}) {
        object->write_attribute("simulator", std::string("gaussian"));
        object->write_attribute("utf8", utf8);
        object->write_attribute("empty", "");
        object->write_attribute("seed", big);
        object->write_attribute("offset", small);
        object->write_attribute("scale", -1.25e-300);
        object->write_attribute("theta0", theta0);
        object->write_attribute("no_values", std::vector<double>{});
        object->write_attribute("names", names);
        object->write_attribute("no_names", std::vector<std::string>{});
        // Overwriting replaces the attribute, even with another type.
        object->write_attribute("replaced", "first");
        object->write_attribute("replaced", 2.5);
      }
    }
    file.close();  // explicit, after its objects: reports a failed flush instead of dropping it
  }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  const Group root = file.root();
  const Group nested = root.open_group("gold/nested");
  const Dataset dataset = nested.open_dataset("score");
  for (const nsbi::h5::Object* object : std::vector<const nsbi::h5::Object*>{&root, &nested, &dataset}) {
    SCOPED_TRACE(object->name());
    EXPECT_EQ(object->read_attribute<std::string>("simulator"), "gaussian");
    EXPECT_EQ(object->read_attribute<std::string>("utf8"), utf8);
    EXPECT_EQ(object->read_attribute<std::string>("empty"), "");
    EXPECT_EQ(object->read_attribute<std::int64_t>("seed"), big);
    EXPECT_EQ(object->read_attribute<std::int64_t>("offset"), small);
    EXPECT_EQ(object->read_attribute<double>("scale"), -1.25e-300);
    EXPECT_EQ(object->read_attribute<std::vector<double>>("theta0"), theta0);
    EXPECT_TRUE(object->read_attribute<std::vector<double>>("no_values").empty());
    EXPECT_EQ(object->read_attribute<std::vector<std::string>>("names"), names);
    EXPECT_TRUE(object->read_attribute<std::vector<std::string>>("no_names").empty());
    EXPECT_EQ(object->read_attribute<double>("replaced"), 2.5);
    EXPECT_TRUE(object->attribute_exists("replaced"));
    EXPECT_FALSE(object->attribute_exists("missing"));
  }
  const std::string missing = h5_error_message([&] { dataset.read_attribute<double>("missing"); });
  EXPECT_TRUE(contains(missing, "attribute 'missing' of '/gold/nested/score' in '" + path + "'")) << missing;
  EXPECT_TRUE(contains(missing, "can't locate attribute")) << missing;
  const std::string wrong_type = h5_error_message([&] { root.read_attribute<double>("simulator"); });
  EXPECT_TRUE(contains(wrong_type, "it holds string values, not float64")) << wrong_type;
  const std::string not_scalar = h5_error_message([&] { root.read_attribute<double>("theta0"); });
  EXPECT_TRUE(contains(not_scalar, "it holds 4 values, not exactly one")) << not_scalar;
}

// What other writers produce: fixed-length strings (numpy 'S' arrays, C programs) with each padding,
// big-endian int32 and float32 numbers, and a dataset type nsbi does not read. Written with the C API by rank
// 0 alone.
TEST(Hdf5Attributes, ForeignFixedLengthStringsAndNumbersAreRead) {
  const std::string path = scratch_path("foreign.h5");
  if (comm_rank() == 0) {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const auto write_string = [&](const char* name, H5T_str_t padding, const char* bytes, std::size_t size,
                                  hid_t space) {
      const hid_t type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, size);
      H5Tset_strpad(type, padding);
      const hid_t attribute = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      EXPECT_GE(H5Awrite(attribute, type, bytes), 0);
      H5Aclose(attribute);
      H5Tclose(type);
    };
    write_string("nullterm", H5T_STR_NULLTERM, "gaussian\0\0\0\0\0\0\0", 16, scalar);
    write_string("nullpad_full", H5T_STR_NULLPAD, "exactly8", 8, scalar);  // no terminator at full width
    write_string("spacepad", H5T_STR_SPACEPAD, "abc   ", 6, scalar);
    const hsize_t two[1] = {2};
    const hid_t pair = H5Screate_simple(1, two, nullptr);
    write_string("nullpad_array", H5T_STR_NULLPAD, "mu\0\0s\0\0\0", 4, pair);
    const std::int32_t count = -7;
    const hid_t int_attribute = H5Acreate2(file, "int32", H5T_STD_I32BE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(int_attribute, H5T_NATIVE_INT32, &count), 0);
    const float width = 0.75f;
    const hid_t float_attribute =
        H5Acreate2(file, "float32", H5T_IEEE_F32BE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(float_attribute, H5T_NATIVE_FLOAT, &width), 0);
    const hid_t dataset =
        H5Dcreate2(file, "counts", H5T_STD_I32LE, pair, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(dataset, 0);
    for (hid_t id : {int_attribute, float_attribute}) H5Aclose(id);
    H5Dclose(dataset);
    H5Sclose(pair);
    H5Sclose(scalar);
    EXPECT_GE(H5Fclose(file), 0);
  }
  nsbi::Communicator().barrier();
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  const Group root = file.root();
  EXPECT_EQ(root.read_attribute<std::string>("nullterm"), "gaussian");
  EXPECT_EQ(root.read_attribute<std::string>("nullpad_full"), "exactly8");
  EXPECT_EQ(root.read_attribute<std::string>("spacepad"), "abc");
  EXPECT_EQ(root.read_attribute<std::vector<std::string>>("nullpad_array"),
            (std::vector<std::string>{"mu", "s"}));
  EXPECT_EQ(root.read_attribute<std::int64_t>("int32"), -7);
  EXPECT_EQ(root.read_attribute<double>("int32"), -7.0);
  EXPECT_EQ(root.read_attribute<double>("float32"), 0.75);
  const std::string float_as_int = h5_error_message([&] { root.read_attribute<std::int64_t>("float32"); });
  EXPECT_TRUE(contains(float_as_int, "it holds floating-point values, not int64")) << float_as_int;
  const Dataset counts = root.open_dataset("counts");
  const std::string unsupported = h5_error_message([&] { counts.type(); });
  EXPECT_TRUE(contains(unsupported, "'/counts' in '" + path + "'")) << unsupported;
  EXPECT_TRUE(contains(unsupported, "4-byte signed integer elements")) << unsupported;
}

TEST(Hdf5Groups, NestedNamesAreCreatedOpenedAndLookedUp) {
  const std::string path = scratch_path("groups.h5");
  File file = File::create(path, MPI_COMM_WORLD);
  Group root = file.root();
  EXPECT_EQ(root.create_group("a/b/c").name(), "/a/b/c");
  EXPECT_EQ(root.create_dataset("a/b/d", DataType::int64, {3}, 2).name(), "/a/b/d");
  EXPECT_TRUE(root.exists("a"));
  EXPECT_TRUE(root.exists("a/b/c"));
  EXPECT_TRUE(root.exists("a/b/d"));
  EXPECT_FALSE(root.exists("a/x/y"));  // missing intermediate group: false, not an error
  EXPECT_FALSE(root.exists("nope"));
  const Group b = root.open_group("a/b");
  EXPECT_EQ(b.name(), "/a/b");
  EXPECT_TRUE(b.exists("c"));
  EXPECT_EQ(b.open_dataset("d").dims(), (std::vector<hsize_t>{3}));
  EXPECT_EQ(b.open_dataset("d").file_path(), path);
}

TEST(Hdf5Files, CloseRefusesWhileObjectsAreOpenAndTheFileOutlivesThem) {
  const std::string path = scratch_path("close.h5");
  {
    File file = File::create(path, MPI_COMM_WORLD);
    Dataset dataset = file.root().create_dataset("x", DataType::float64, {4}, 4);
    // A bug in the caller (exit code 1), refused before HDF5 is asked.
    try {
      file.close();
      ADD_FAILURE() << "close() with a dataset open";
    } catch (const nsbi::InternalError& error) {
      EXPECT_TRUE(contains(error.what(), "close() of '" + path + "' while 1 of its")) << error.what();
    }
    // The dataset keeps the file open after the File itself is gone.
    { File gone = std::move(file); }
    const std::vector<double> values = expected_rows<double>(0, 4, 1);
    dataset.write_rows(0, comm_rank() == 0 ? 4 : 0, values.data());
  }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  std::vector<double> values(4);
  file.root().open_dataset("x").read_rows(0, 4, values.data());
  EXPECT_EQ(values, expected_rows<double>(0, 4, 1));
}

TEST(Hdf5Errors, ForeignFileIsRefusedNamingThePath) {
  const std::string path = scratch_path("foreign.csv");
  if (comm_rank() == 0) std::ofstream(path) << "theta,x\n0.5,1.25\n";
  nsbi::Communicator().barrier();
  EXPECT_FALSE(nsbi::h5::is_hdf5(path));
  const std::string message = h5_error_message([&] { File::open(path, MPI_COMM_WORLD, Access::read); });
  EXPECT_TRUE(contains(message, "cannot open '" + path + "'")) << message;
  EXPECT_TRUE(contains(message, "not an HDF5 file (file signature not found)")) << message;
}

TEST(Hdf5Errors, TruncatedFileIsRefusedWithHdf5sReason) {
  const std::string path = scratch_path("truncated.h5");
  if (comm_rank() == 0) {
    {
      File file = File::create(path, MPI_COMM_SELF);
      Dataset dataset = file.root().create_dataset("x", DataType::float64, {1000, 4}, 100);
      const std::vector<double> values = expected_rows<double>(0, 1000, 4);
      dataset.write_rows(0, 1000, values.data());
    }
    EXPECT_TRUE(nsbi::h5::is_hdf5(path));
    const auto size = std::filesystem::file_size(path);
    ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(size / 2)), 0);
  }
  nsbi::Communicator().barrier();
  const std::string message = h5_error_message([&] { File::open(path, MPI_COMM_WORLD, Access::read); });
  EXPECT_TRUE(contains(message, "cannot open '" + path + "' for reading")) << message;
  EXPECT_TRUE(contains(message, "truncated file")) << message;
}

TEST(Hdf5Errors, MissingFileIsRefusedWithHdf5sReason) {
  const std::string path = scratch_path("missing.h5");
  if (comm_rank() == 0) std::filesystem::remove(path);
  nsbi::Communicator().barrier();
  EXPECT_FALSE(nsbi::h5::is_hdf5(path));
  const std::string message = h5_error_message([&] { File::open(path, MPI_COMM_WORLD, Access::read_write); });
  EXPECT_TRUE(contains(message, "cannot open '" + path + "' for reading and writing")) << message;
  EXPECT_TRUE(contains(message, "No such file or directory")) << message;
}

TEST(Hdf5Errors, MissingDatasetIsRefusedWithHdf5sReason) {
  const std::string path = scratch_path("missing-dataset.h5");
  { File::create(path, MPI_COMM_WORLD).root().create_dataset("x", DataType::float64, {2}, 2); }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  const Group root = file.root();
  const std::string message = h5_error_message([&] { root.open_dataset("theta"); });
  EXPECT_TRUE(contains(message, "cannot open dataset '/theta' in '" + path + "'")) << message;
  EXPECT_TRUE(contains(message, "doesn't exist")) << message;
}

TEST(Hdf5Errors, UncreatableFileIsRefusedNamingThePath) {
  const std::string path = scratch_path("no-such-directory/out.h5");
  const std::string message = h5_error_message([&] { File::create(path, MPI_COMM_WORLD); });
  EXPECT_TRUE(contains(message, "cannot create '" + path + "'")) << message;
  EXPECT_TRUE(contains(message, "no such file or directory")) << message;
}

TEST(Hdf5Errors, AMisuseOfTheHdf5ApiIsABugNotABadFile) {
  const std::string path = scratch_path("misuse.h5");
  File file = File::create(path, MPI_COMM_WORLD);
  try {
    file.root().write_attribute("", 1.0);  // HDF5 refuses an empty name: nsbi never passes one
    ADD_FAILURE() << "an attribute without a name";
  } catch (const nsbi::h5::Error& error) {
    ADD_FAILURE() << "reported as a bad file (exit code 3): " << error.what();
  } catch (const nsbi::InternalError& error) {
    EXPECT_TRUE(contains(error.what(), "attribute '' of '/' in '" + path + "'")) << error.what();
    EXPECT_TRUE(contains(error.what(), "a misuse of the HDF5 API, a bug in nsbi")) << error.what();
    EXPECT_EQ(error.code(), nsbi::ExitCode::internal);
  }
}

TEST(Hdf5Errors, WritingToAFileOpenedForReadingIsRefused) {
  const std::string path = scratch_path("read-only.h5");
  { File::create(path, MPI_COMM_WORLD).root().create_dataset("x", DataType::float64, {2}, 2); }
  File file = File::open(path, MPI_COMM_WORLD, Access::read);
  Dataset dataset = file.root().open_dataset("x");
  const std::vector<double> values(2, 1.0);
  const std::string message =
      h5_error_message([&] { dataset.write_rows(0, comm_rank() == 0 ? 2 : 0, values.data()); });
  EXPECT_TRUE(contains(message, "cannot write rows")) << message;
  EXPECT_TRUE(contains(message, "no write intent on file")) << message;
}

}  // namespace
