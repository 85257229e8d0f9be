// The observed-data reader: the HDF5 format (one or several /observed/<name>/x), the CSV format and a dataset
// file of `nsbi simulate`, and bad files refused with InputError naming the file and the dataset.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/inference/observed.hpp"

namespace nsbi::inference {
namespace {

sims::SimulatorInfo two_observables() {
  sims::SimulatorInfo info;
  info.name = "toy";
  info.observables = {"a", "b"};
  info.parameters.resize(1);
  info.parameters[0].name = "mu";
  return info;
}

// An array observable: one image of 1 x 2 x 3 values per event.
sims::SimulatorInfo one_image() {
  sims::SimulatorInfo info = two_observables();
  info.observables = {"image"};
  info.observable_shape = {1, 2, 3};
  return info;
}

std::string temporary_path(const std::string& name) {
  return testing::TempDir() + "nsbi_observed_" + std::to_string(getpid()) + "_" + name;
}

// An observed-data file with the datasets `names`, each [rows, observables.size()] (or [rows, shape...] when
// `shape` is given) of values 0, 1, 2, ...
void write_observed_file(const std::string& path, const std::vector<std::string>& names,
                         const std::vector<std::string>& observables, std::size_t rows, double poison = 0.0,
                         const std::vector<hsize_t>& shape = {}) {
  h5::File file = h5::File::create(path, MPI_COMM_SELF);
  {
    h5::Group root = file.root();
    root.write_attribute("format", "nsbi-observed");
    root.write_attribute("format_version", std::int64_t{1});
    for (const auto& name : names) {
      h5::Group group = root.create_group("observed/" + name);
      group.write_attribute("observables", observables);
      group.write_attribute("parameters", std::vector<std::string>{"mu"});
      group.write_attribute("theta", std::vector<double>{0.5});
      std::vector<hsize_t> dims{rows};
      if (shape.empty()) dims.push_back(observables.size());
      dims.insert(dims.end(), shape.begin(), shape.end());
      std::size_t values_per_row = 1;
      for (std::size_t d = 1; d < dims.size(); ++d) values_per_row *= dims[d];
      std::vector<double> values(rows * values_per_row);
      for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
      if (poison != 0.0 && !values.empty()) values.back() = poison;
      h5::Dataset x = group.create_dataset("x", h5::DataType::float64, dims, std::max<std::size_t>(rows, 1));
      if (rows > 0) x.write_rows(0, rows, values.data());
    }
  }
  file.close();
}

// The message of the InputError that reading throws (fails the test when there is none).
std::string refusal(const std::string& path, const std::string& dataset) {
  try {
    read_observed(path, two_observables(), dataset, " (test)");
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << path;
  return "";
}

TEST(Observed, ReadsTheOnlyDatasetOfAnHdf5File) {
  const std::string path = temporary_path("one.h5");
  write_observed_file(path, {"run1"}, {"a", "b"}, 3);
  const Matrix x = read_observed(path, two_observables(), "", "");
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  ASSERT_EQ(x.extent(0), 3u);
  ASSERT_EQ(x.extent(1), 2u);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 2; ++j) EXPECT_EQ(host(i, j), static_cast<double>(2 * i + j));
  std::remove(path.c_str());
}

TEST(Observed, SelectsANamedDatasetAndRefusesAnAmbiguousFile) {
  const std::string path = temporary_path("two.h5");
  write_observed_file(path, {"run1", "run2"}, {"a", "b"}, 4);
  EXPECT_EQ(read_observed(path, two_observables(), "run2", "").extent(0), 4u);
  const std::string message = refusal(path, "");
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("run1, run2"), std::string::npos) << message;
  EXPECT_NE(refusal(path, "run3").find("/observed/run3/x"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Observed, RefusesBadFilesNamingFileAndDataset) {
  const std::string path = temporary_path("bad.h5");
  {  // no group /observed
    h5::File file = h5::File::create(path, MPI_COMM_SELF);
    { file.root().write_attribute("format", "nsbi-observed"); }
    file.close();
  }
  EXPECT_NE(refusal(path, "").find("has no group /observed"), std::string::npos);
  write_observed_file(path, {"run"}, {"a", "c"}, 2);
  std::string message = refusal(path, "");
  EXPECT_NE(message.find("/observed/run has observables (a, c)"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  write_observed_file(path, {"run"}, {"a", "b"}, 2, std::numeric_limits<double>::infinity());
  message = refusal(path, "");
  EXPECT_NE(message.find("/observed/run/x row 1, column 'b': not finite"), std::string::npos) << message;
  write_observed_file(path, {"run"}, {"a", "b"}, 0);
  EXPECT_NE(refusal(path, "").find("holds no events"), std::string::npos);
  {  // a true θ without its parameter names
    h5::File file = h5::File::create(path, MPI_COMM_SELF);
    {
      h5::Group root = file.root();
      root.write_attribute("format", "nsbi-observed");
      h5::Group group = root.create_group("observed/run");
      group.write_attribute("observables", std::vector<std::string>{"a", "b"});
      group.write_attribute("theta", std::vector<double>{0.5});
      const std::vector<double> values = {1, 2};
      group.create_dataset("x", h5::DataType::float64, {1, 2}, 1).write_rows(0, 1, values.data());
    }
    file.close();
  }
  message = refusal(path, "");
  EXPECT_NE(message.find("/observed/run: the true θ needs the attributes 'parameters' (mu)"),
            std::string::npos)
      << message;
  {  // x of the wrong shape
    h5::File file = h5::File::create(path, MPI_COMM_SELF);
    {
      h5::Group root = file.root();
      root.write_attribute("format", "nsbi-observed");
      h5::Group group = root.create_group("observed/run");
      group.write_attribute("observables", std::vector<std::string>{"a", "b"});
      const std::vector<double> values = {1, 2, 3};
      group.create_dataset("x", h5::DataType::float64, {3}, 3).write_rows(0, 3, values.data());
    }
    file.close();
  }
  message = refusal(path, "");
  EXPECT_NE(message.find("/observed/run/x has shape [3], not [N, 2]"), std::string::npos) << message;
  std::remove(path.c_str());
}

TEST(Observed, ReadsImagesFlattenedAndRefusesOtherShapes) {
  const std::string path = temporary_path("image.h5");
  write_observed_file(path, {"run"}, {"image"}, 2, 0.0, {1, 2, 3});
  const Matrix x = read_observed(path, one_image(), "", "");
  ASSERT_EQ(x.extent(0), 2u);
  ASSERT_EQ(x.extent(1), 6u);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t c = 0; c < 6; ++c) EXPECT_EQ(x(i, c), static_cast<double>(6 * i + c));

  // Another image shape, and tabular events for an image simulator, name the file, dataset and shapes.
  write_observed_file(path, {"run"}, {"image"}, 2, 0.0, {1, 3, 2});
  try {
    read_observed(path, one_image(), "", " (test)");
    ADD_FAILURE() << "no InputError for a [2, 1, 3, 2] image";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 1, 3, 2]"), std::string::npos) << message;
    EXPECT_NE(message.find("[N, 1, 2, 3]"), std::string::npos) << message;
  }
  write_observed_file(path, {"run"}, {"image"}, 2);
  EXPECT_THROW(read_observed(path, one_image(), "", ""), InputError);
  // A non-finite pixel is named by its element index.
  write_observed_file(path, {"run"}, {"image"}, 2, std::numeric_limits<double>::quiet_NaN(), {1, 2, 3});
  try {
    read_observed(path, one_image(), "", "");
    ADD_FAILURE() << "no InputError for a NaN pixel";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("image[0, 1, 2]"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(Observed, RefusesCsvForAnImageSimulator) {
  const std::string path = temporary_path("image.csv");
  {
    std::ofstream out(path);
    out << "image\n1\n";
  }
  try {
    read_observed(path, one_image(), "", "");
    ADD_FAILURE() << "no InputError for CSV images";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("array"), std::string::npos) << message;
  }
  std::remove(path.c_str());
}

TEST(Observed, ReadsCsvInTheSimulatorsOrder) {
  std::istringstream in("# comment\nb, a\n1, 2\n3, 4\n");
  EXPECT_EQ(parse_observed_csv(in, "x.csv", two_observables(), ""), (std::vector<double>{2, 1, 4, 3}));
  std::istringstream bad("a, b\n1, nan\n");
  try {
    parse_observed_csv(bad, "x.csv", two_observables(), "");
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x.csv', line 2, column 'b'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nsbi::inference
