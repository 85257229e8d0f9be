#pragma once
// Input standardisation (docs/statistics.md, "Inputs"): per-column statistics that ranks can
// merge, and the transform x' = (x − mean) / scale into the network's float inputs.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nsbi/kernels/views.hpp"

namespace nsbi::kernels {

/// Count, mean and sum of squared deviations (M2) per column of the rows summarised. Two summaries merge
/// into the summary of the union (Chan, Golub & LeVeque 1979), so ranks combine their shards' statistics
/// with an allgather or a custom reduction, without a second pass over the data.
struct ColumnStatistics {
  std::uint64_t count = 0;
  std::vector<double> mean;
  std::vector<double> m2;

  void merge(const ColumnStatistics& other);
  /// sqrt(M2 / count) per column (the population standard deviation).
  std::vector<double> standard_deviation() const;
};

/// The statistics of rows [N, C] (two passes: the mean, then the squared deviations from it).
ColumnStatistics column_statistics(const ExecutionSpace& space, const ConstMatrix& rows);
inline ColumnStatistics column_statistics(const ConstMatrix& rows) {
  return column_statistics(ExecutionSpace(), rows);
}

/// mean and scale per input column. A column whose standard deviation is at most 1e-12 max(1, |mean|) (a
/// constant column, e.g. a fixed parameter) gets scale 1, as in scikit-learn's StandardScaler: it is centred,
/// and values the training data never showed stay moderate instead of being divided by ~0.
struct Standardization {
  explicit Standardization(const ColumnStatistics& statistics);
  Standardization(const std::vector<double>& mean, const std::vector<double>& scale);  // e.g. from model.h5
  std::size_t n_columns() const { return mean.extent(0); }

  Vector mean;
  Vector scale;
};

/// out(i, first_column + j) = (in(i, j) − mean[first_column + j]) / scale[first_column + j], as float: writes
/// the columns [first_column, first_column + C) of the network's inputs, e.g. x first and θ after it.
void standardize(const ExecutionSpace& space, const Standardization& standardization, const ConstMatrix& in,
                 std::size_t first_column, const FloatMatrix& out);
inline void standardize(const Standardization& standardization, const ConstMatrix& in,
                        std::size_t first_column, const FloatMatrix& out) {
  standardize(ExecutionSpace(), standardization, in, first_column, out);
}

}  // namespace nsbi::kernels
