#pragma once
// Small dataset files for the reader and stream tests (tests only): nsbi's own writer for valid files, and
// the HDF5 wrapper directly for the broken ones a foreign writer could produce. Every value is a known
// function of (row, column), exact in float32 and float64, so a test can check any row it is handed.

#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/distributed/dataset_writer.hpp"

namespace nsbi::test {

inline double theta_value(std::uint64_t row, std::uint64_t column) {
  return static_cast<double>(row * 4 + column);
}
inline double x_value(std::uint64_t row, std::uint64_t column) {
  return -static_cast<double>(row * 8 + column) - 0.5;
}

/// Gold column c of a row (docs/formats.md order): log r, then the scores, then the gold θ.
inline double gold_value(std::uint64_t row, std::uint64_t column) {
  return 0.25 * static_cast<double>(row) + 1000.0 * static_cast<double>(column);
}

inline std::vector<std::string> numbered(const std::string& prefix, std::size_t n) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

/// A directory of its own for this test program and rank count (CTest runs the np variants concurrently).
/// Collective.
inline std::string scratch_directory(const Communicator& comm, const std::string& test) {
  const std::string directory = "/tmp/nsbi-test-" + test + "-np" + std::to_string(comm.size());
  if (comm.is_root()) std::filesystem::create_directories(directory);
  comm.barrier();
  return directory;
}

/// Collective: a complete file written by DatasetWriter (chunks of block_rows rows), values theta_value and
/// x_value; n_parameters + n_observables columns. With gold, /gold/log_r and /gold/score against θ0 = (0.5,
/// ...) (and /gold/theta with gold_theta) holding gold_value.
inline void write_nsbi_dataset(const Communicator& comm, const std::string& path, std::uint64_t n_rows,
                               std::uint64_t block_rows, std::size_t n_parameters, std::size_t n_observables,
                               bool gold = false, bool gold_theta = false) {
  distributed::DatasetDescription description;
  description.simulator = "counting";
  description.parameter_names = numbered("t", n_parameters);
  description.observable_names = numbered("x", n_observables);
  description.proposal_yaml = "t0: {kind: uniform, min: 0, max: 1}";
  description.seed = 7;
  description.identity = "test " + path;
  description.provenance = collect_provenance({"test"}, comm.size());
  description.n_rows = n_rows;
  description.block_rows = block_rows;
  if (gold) description.gold_theta0.assign(n_parameters, 0.5);
  description.gold_theta = gold_theta;
  distributed::DatasetWriter writer(comm, path, description, /*force=*/true, /*checkpoint_seconds=*/0.0);
  const auto& pending = writer.pending_blocks();
  const std::uint64_t rounds = distributed::BlockSchedule::rounds(pending.size(), comm.size());
  for (std::uint64_t round = 0; round < rounds; ++round) {
    const auto block = distributed::BlockSchedule::block_for(pending, round, comm.rank(), comm.size());
    const distributed::RowRange rows = block ? writer.schedule().rows(*block) : distributed::RowRange{};
    std::vector<double> theta(rows.size() * n_parameters);
    std::vector<double> x(rows.size() * n_observables);
    for (std::uint64_t i = 0; i < rows.size(); ++i) {
      for (std::size_t c = 0; c < n_parameters; ++c)
        theta[i * n_parameters + c] = theta_value(rows.begin + i, c);
      for (std::size_t c = 0; c < n_observables; ++c) x[i * n_observables + c] = x_value(rows.begin + i, c);
    }
    // Gold arrays, each row-major, column c of the gold at gold_value(row, c).
    std::vector<double> log_r(rows.size() + 1);
    std::vector<double> score(rows.size() * n_parameters + 1);
    std::vector<double> at(rows.size() * n_parameters + 1);
    for (std::uint64_t i = 0; i < rows.size(); ++i) {
      log_r[i] = gold_value(rows.begin + i, 0);
      for (std::size_t c = 0; c < n_parameters; ++c) {
        score[i * n_parameters + c] = gold_value(rows.begin + i, 1 + c);
        at[i * n_parameters + c] = gold_value(rows.begin + i, 1 + n_parameters + c);
      }
    }
    writer.write_round(
        block, theta.data(), x.data(),
        gold ? distributed::GoldRows{log_r.data(), score.data(), at.data()} : distributed::GoldRows{});
  }
  writer.finish();
}

/// What a foreign writer may put in a file; the defaults make a valid one with the Python example's
/// attributes (docs/formats.md) and contiguous-looking data (no progress group).
struct ForeignFile {
  std::uint64_t theta_rows = 100;
  std::uint64_t x_rows = 100;
  std::uint64_t n_parameters = 2;
  std::uint64_t n_observables = 3;
  h5::DataType x_type = h5::DataType::float64;
  bool has_format = true;
  std::string format = "nsbi-dataset";
  std::int64_t complete = 1;
  bool theta_has_names = true;
  std::size_t n_x_names = 3;
  /// Values replaced after the known ones: (row, column, value) in /theta and in /x.
  struct Value {
    std::uint64_t row;
    std::uint64_t column;
    double value;
  };
  std::vector<Value> theta_overrides;
  std::vector<Value> x_overrides;
};

namespace detail {
template <class T>
void write_array(h5::Group& root, const std::string& name, h5::DataType type, std::uint64_t rows,
                 std::uint64_t columns, double (*value)(std::uint64_t, std::uint64_t),
                 const std::vector<ForeignFile::Value>& overrides) {
  std::vector<T> data(rows * columns);
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < columns; ++c) data[r * columns + c] = static_cast<T>(value(r, c));
  for (const auto& o : overrides) data[o.row * columns + o.column] = static_cast<T>(o.value);
  h5::Dataset array = root.create_dataset(name, type, {rows, columns}, std::max<std::uint64_t>(rows, 1));
  // HDF5 cannot write an empty selection to an empty contiguous dataset (it has no address yet).
  if (rows > 0) array.write_rows(0, rows, data.data());
}
}  // namespace detail

/// Serial (MPI_COMM_SELF): writes `spec` to `path`.
inline void write_foreign_file(const std::string& path, const ForeignFile& spec) {
  h5::File file = h5::File::create(path, MPI_COMM_SELF);
  h5::Group root = file.root();
  detail::write_array<double>(root, "theta", h5::DataType::float64, spec.theta_rows, spec.n_parameters,
                              theta_value, spec.theta_overrides);
  if (spec.x_type == h5::DataType::float32) {
    detail::write_array<float>(root, "x", spec.x_type, spec.x_rows, spec.n_observables, x_value,
                               spec.x_overrides);
  } else if (spec.x_type == h5::DataType::int64) {
    detail::write_array<std::int64_t>(root, "x", spec.x_type, spec.x_rows, spec.n_observables, theta_value,
                                      spec.x_overrides);
  } else {
    detail::write_array<double>(root, "x", spec.x_type, spec.x_rows, spec.n_observables, x_value,
                                spec.x_overrides);
  }
  if (spec.theta_has_names)
    root.open_dataset("theta").write_attribute("names", numbered("t", spec.n_parameters));
  root.open_dataset("x").write_attribute("names", numbered("x", spec.n_x_names));
  if (spec.has_format) root.write_attribute("format", spec.format);
  root.write_attribute("format_version", std::int64_t{1});
  root.write_attribute("complete", spec.complete);
  root.write_attribute("simulator", "mine");
  root.write_attribute("prior", "t0: {kind: uniform, min: -1, max: 1}");
}

}  // namespace nsbi::test
