#include "nsbi/kernels/standardize.hpp"

#include <cmath>

#include "nsbi/core/error.hpp"

namespace nsbi::kernels {

namespace {

using RowPolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>;
using HostSums = Kokkos::View<double*, Kokkos::HostSpace>;

// Per-column sums of (x - shift)^power over rows, power 1 or 2: the mean (shift 0) and M2 (shift the mean).
template <int power>
struct ColumnPowerSums {
  using value_type = double[];
  std::size_t value_count;  // columns
  ConstMatrix rows;
  ConstVector shift;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t row, value_type sums) const {
    for (std::size_t j = 0; j < value_count; ++j) {
      const double d = rows(row, j) - shift(j);
      sums[j] += power == 1 ? d : d * d;
    }
  }
  KOKKOS_INLINE_FUNCTION void init(value_type sums) const {
    for (std::size_t j = 0; j < value_count; ++j) sums[j] = 0.0;
  }
  KOKKOS_INLINE_FUNCTION void join(volatile value_type into, const volatile value_type from) const {
    for (std::size_t j = 0; j < value_count; ++j) into[j] += from[j];
  }
};

Vector to_device(const std::vector<double>& values, const std::string& label) {
  Vector device(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), values.size());
  Kokkos::deep_copy(device, Kokkos::View<const double*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                                values.data(), values.size()));
  return device;
}

}  // namespace

void ColumnStatistics::merge(const ColumnStatistics& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  NSBI_ASSERT(mean.size() == other.mean.size(),
              "nsbi::kernels::ColumnStatistics::merge: column counts differ");
  const auto n_a = static_cast<double>(count);
  const auto n_b = static_cast<double>(other.count);
  const double n = n_a + n_b;
  for (std::size_t j = 0; j < mean.size(); ++j) {
    const double delta = other.mean[j] - mean[j];
    mean[j] += delta * (n_b / n);
    m2[j] += other.m2[j] + delta * delta * (n_a * n_b / n);
  }
  count += other.count;
}

std::vector<double> ColumnStatistics::standard_deviation() const {
  std::vector<double> sd(mean.size(), 0.0);
  if (count > 0)
    for (std::size_t j = 0; j < sd.size(); ++j) sd[j] = std::sqrt(m2[j] / static_cast<double>(count));
  return sd;
}

ColumnStatistics column_statistics(const ExecutionSpace& space, const ConstMatrix& rows) {
  const std::size_t n = rows.extent(0);
  const std::size_t columns = rows.extent(1);
  ColumnStatistics statistics{n, std::vector<double>(columns, 0.0), std::vector<double>(columns, 0.0)};
  if (n == 0) return statistics;
  const HostSums sums("nsbi::kernels::column_statistics::sums", columns);
  // Summing deviations from the first row keeps the mean's rounding error relative to the spread, not to
  // the offset (a column near 1e6 with spread 1e-3 would lose 9 digits in a plain sum).
  const Vector first_row(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::kernels::column_statistics::first_row"),
      columns);
  Kokkos::deep_copy(space, first_row, Kokkos::subview(rows, 0, Kokkos::ALL));
  Kokkos::parallel_reduce("nsbi::kernels::column_statistics::mean", RowPolicy(space, 0, n),
                          ColumnPowerSums<1>{columns, rows, first_row}, sums);
  const auto first = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), first_row);
  for (std::size_t j = 0; j < columns; ++j) statistics.mean[j] = first(j) + sums(j) / static_cast<double>(n);
  const Vector mean = to_device(statistics.mean, "nsbi::kernels::column_statistics::mean");
  Kokkos::parallel_reduce("nsbi::kernels::column_statistics::m2", RowPolicy(space, 0, n),
                          ColumnPowerSums<2>{columns, rows, mean}, sums);
  for (std::size_t j = 0; j < columns; ++j) statistics.m2[j] = sums(j);
  return statistics;
}

Standardization::Standardization(const std::vector<double>& mean_values,
                                 const std::vector<double>& scale_values)
    : mean(to_device(mean_values, "nsbi::kernels::Standardization::mean")),
      scale(to_device(scale_values, "nsbi::kernels::Standardization::scale")) {
  NSBI_ASSERT(mean_values.size() == scale_values.size(),
              "nsbi::kernels::Standardization: mean and scale differ in length");
}

namespace {

std::vector<double> scale_of(const ColumnStatistics& statistics) {
  std::vector<double> scale = statistics.standard_deviation();
  for (std::size_t j = 0; j < scale.size(); ++j)
    if (scale[j] <= 1e-12 * std::max(1.0, std::fabs(statistics.mean[j]))) scale[j] = 1.0;
  return scale;
}

}  // namespace

Standardization::Standardization(const ColumnStatistics& statistics)
    : Standardization(statistics.mean, scale_of(statistics)) {}

void standardize(const ExecutionSpace& space, const Standardization& standardization, const ConstMatrix& in,
                 std::size_t first_column, const FloatMatrix& out) {
  const std::size_t columns = in.extent(1);
  NSBI_ASSERT(in.extent(0) == out.extent(0), "nsbi::kernels::standardize: in and out differ in rows");
  NSBI_ASSERT(
      first_column + columns <= out.extent(1) && first_column + columns <= standardization.n_columns(),
      "nsbi::kernels::standardize: columns out of range");
  const ConstVector mean = standardization.mean;
  const ConstVector scale = standardization.scale;
  Kokkos::parallel_for(
      "nsbi::kernels::standardize", RowPolicy(space, 0, in.extent(0)), KOKKOS_LAMBDA(std::size_t i) {
        for (std::size_t j = 0; j < columns; ++j) {
          const std::size_t c = first_column + j;
          out(i, c) = static_cast<float>((in(i, j) - mean(c)) / scale(c));
        }
      });
}

}  // namespace nsbi::kernels
