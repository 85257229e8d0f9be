#pragma once
// Reads a dataset file (docs/formats.md, "How nsbi reads a dataset") whoever wrote it: validates the schema
// on opening, so that every later stage can trust shapes and names, and scans for NaN/Inf before training.
//
// Each process opens the file on its own (MPI_COMM_SELF): ranks read disjoint rows at different moments
// (streamed shards), which collective reads would force into lock-step for no gain.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"

namespace nsbi::distributed {

class DatasetReader {
 public:
  /// Serial (any rank may call it alone): opens `path` read-only and validates it. Throws InputError naming
  /// the file and the problem: not HDF5, truncated, foreign (no format "nsbi-dataset"), unfinished
  /// (complete != 1, e.g. a .partial file), from a newer format version, no rows, /theta and /x missing, not
  /// 2-D (/x: [N, shape...] for an array observable), of another element type than float64/float32, with
  /// different row counts, or with `names` missing or of the wrong length (an array has one name).
  /// Collective callers wrap it in Communicator::agree.
  explicit DatasetReader(std::string path);

  const std::string& path() const { return path_; }
  std::uint64_t n_rows() const { return n_rows_; }
  std::size_t n_parameters() const { return parameter_names_.size(); }
  /// Values per row of x: the columns of tabular x, the product of the shape of an array observable (whose
  /// rows read_rows returns flattened row-major).
  std::size_t n_observables() const { return n_observables_; }
  /// The shape of one row's x for an array observable (e.g. {1, 64, 64}: /x is [N, 1, 64, 64]); empty for
  /// tabular x.
  const std::vector<std::size_t>& observable_shape() const { return observable_shape_; }
  bool is_array() const { return !observable_shape_.empty(); }
  /// The name of one column of the rows read_rows returns, for messages: the observable's name, or for an
  /// array its name and element index ("image[0, 3, 4]").
  std::string observable_column(std::size_t column) const;
  /// Throws InputError naming the file, '/x' and both shapes unless x's per-row shape is `shape` (a
  /// simulator's SimulatorInfo::observable_shape: empty for tabular x).
  void check_observable_shape(const std::vector<std::size_t>& shape) const;
  const std::vector<std::string>& parameter_names() const { return parameter_names_; }
  const std::vector<std::string>& observable_names() const { return observable_names_; }
  /// The `simulator` and `prior` (YAML) root attributes; empty where a foreign writer left them out.
  const std::string& simulator() const { return simulator_; }
  const std::string& prior() const { return prior_; }
  /// Whether the file has gold (docs/formats.md): /gold/log_r [N] and /gold/score [N, P], and optionally
  /// /gold/theta [N, P], the θ each log r is evaluated at (/theta where absent).
  bool has_gold() const { return gold_log_r_.has_value(); }
  bool has_gold_theta() const { return gold_theta_.has_value(); }
  /// θ0 of the joint log ratios (the /gold/log_r attribute `theta0`); empty without gold.
  const std::vector<double>& gold_theta0() const { return gold_theta0_; }
  /// Doubles per row that read_gold writes: log r, the P scores, and the P gold θ when the file has them.
  std::size_t gold_columns() const {
    return has_gold() ? 1 + n_parameters() * (has_gold_theta() ? 2 : 1) : 0;
  }

  /// Rows per HDF5 chunk where the file records it (nsbi's writer: progress/block_rows, at most n_rows).
  std::optional<std::uint64_t> recorded_chunk_rows() const { return recorded_chunk_rows_; }

  /// Independent: rows [begin, begin + count) into row-major buffers of count * n_parameters() and
  /// count * n_observables() doubles (float32 files are widened exactly).
  void read_rows(std::uint64_t begin, std::uint64_t count, double* theta, double* x) const;
  /// Independent, only with gold: rows [begin, begin + count) of the gold into a row-major buffer of
  /// count * gold_columns() doubles, each row (log r, score, gold θ).
  void read_gold(std::uint64_t begin, std::uint64_t count, double* gold) const;
  /// Independent: the theta of rows [begin, begin + count) only.
  void read_theta(std::uint64_t begin, std::uint64_t count, double* theta) const;

  /// Collective: scans every value of /theta, /x and the gold arrays for NaN and ±Inf, each rank a contiguous
  /// 1/size of the rows, reading memory_budget_bytes - hdf5_memory_bytes() at a time (at least one row).
  /// Throws (on every rank, exit code 3) naming the first offending row of the file: its global index, the
  /// array and the column. Every block read, once checked, is also handed to `visit` (first row, row count,
  /// theta, x), so that callers gather what else they need (column statistics) in the same pass; an
  /// InputError it throws is reported like a non-finite value.
  using RowVisitor =
      std::function<void(std::uint64_t first_row, std::uint64_t count, const double* theta, const double* x)>;
  void check_finite(const Communicator& comm, std::uint64_t memory_budget_bytes,
                    const RowVisitor& visit = {}) const;

  /// What HDF5 itself holds while this file is read, which memory budgets set aside (HDF5's defaults: the
  /// wrapper does not tune its caches): 1 MiB of chunk cache for each array read (/theta, /x and the gold
  /// arrays), 4 MiB for the open file (2 MiB measured on opening, and the metadata cache's initial 2 MiB),
  /// and the chunk index once every chunk was read: per array, a v1 B-tree node of at most 64 chunks, half
  /// full after splits, takes ~18 KiB in memory, so 18 KiB / 32 per chunk and array, up to the metadata
  /// cache's 32 MiB cap. Chunks are the recorded ones, else assumed of 4096 rows; an array observable's /x
  /// counts its own (smaller) chunks.
  std::uint64_t hdf5_memory_bytes() const;

 private:
  void open_gold(const h5::Group& root);

  std::string path_;
  h5::File file_;
  std::optional<h5::Dataset> theta_;
  std::optional<h5::Dataset> x_;
  std::optional<h5::Dataset> gold_log_r_;
  std::optional<h5::Dataset> gold_score_;
  std::optional<h5::Dataset> gold_theta_;
  std::vector<double> gold_theta0_;
  std::uint64_t n_rows_ = 0;
  std::vector<std::string> parameter_names_;
  std::vector<std::string> observable_names_;
  std::vector<std::size_t> observable_shape_;
  std::size_t n_observables_ = 0;
  std::string simulator_;
  std::string prior_;
  std::optional<std::uint64_t> recorded_chunk_rows_;
};

}  // namespace nsbi::distributed
