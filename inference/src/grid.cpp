#include "nsbi/inference/grid.hpp"

#include <algorithm>
#include <cmath>

#include "nsbi/core/error.hpp"

namespace nsbi::inference {

double GridAxis::spacing() const {
  if (!continuous()) return 0.0;
  return (values.back() - values.front()) / static_cast<double>(values.size() - 1);
}

Grid::Grid(std::vector<GridAxis> axes) : axes_(std::move(axes)), strides_(axes_.size()), size_(1) {
  for (std::size_t p = axes_.size(); p-- > 0;) {
    NSBI_ASSERT(!axes_[p].values.empty(), "grid axis " + axes_[p].name + " has no values");
    NSBI_ASSERT(
        std::is_sorted(axes_[p].values.begin(), axes_[p].values.end()) &&
            std::adjacent_find(axes_[p].values.begin(), axes_[p].values.end()) == axes_[p].values.end(),
        "grid axis " + axes_[p].name + " is not increasing");
    strides_[p] = size_;
    size_ *= axes_[p].values.size();
  }
}

std::vector<std::size_t> Grid::unravel(std::size_t k) const {
  NSBI_ASSERT(k < size_, "grid point index out of range");
  std::vector<std::size_t> index(axes_.size());
  for (std::size_t p = 0; p < axes_.size(); ++p) {
    index[p] = k / strides_[p];
    k %= strides_[p];
  }
  return index;
}

std::size_t Grid::ravel(const std::vector<std::size_t>& index) const {
  NSBI_ASSERT(index.size() == axes_.size(), "grid index has the wrong length");
  std::size_t k = 0;
  for (std::size_t p = 0; p < axes_.size(); ++p) {
    NSBI_ASSERT(index[p] < axes_[p].values.size(), "grid index out of range");
    k += index[p] * strides_[p];
  }
  return k;
}

void Grid::point(std::size_t k, double* theta) const {
  const auto index = unravel(k);
  for (std::size_t p = 0; p < axes_.size(); ++p) theta[p] = axes_[p].values[index[p]];
}

Matrix Grid::points() const {
  Matrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::Grid::points"), size_,
             axes_.size());
  for (std::size_t k = 0; k < size_; ++k) point(k, &out(k, 0));
  return out;
}

double Grid::cell_volume(std::size_t k) const {
  const auto index = unravel(k);
  double volume = 1.0;
  for (std::size_t p = 0; p < axes_.size(); ++p) {
    const GridAxis& axis = axes_[p];
    if (!axis.continuous()) continue;
    const double h = axis.spacing();
    const bool edge = index[p] == 0 || index[p] + 1 == axis.values.size();
    volume *= edge ? 0.5 * h : h;
  }
  return volume;
}

std::vector<std::size_t> Grid::continuous_axes() const {
  std::vector<std::size_t> out;
  for (std::size_t p = 0; p < axes_.size(); ++p)
    if (axes_[p].continuous()) out.push_back(p);
  return out;
}

std::vector<double> linspace(double min, double max, std::size_t points) {
  NSBI_ASSERT(points >= 1, "linspace needs at least one point");
  std::vector<double> values(points, min);
  if (points == 1) return values;
  for (std::size_t i = 0; i < points; ++i)
    values[i] = min + (max - min) * static_cast<double>(i) / static_cast<double>(points - 1);
  values.back() = max;
  return values;
}

double interpolate(const Grid& grid, const std::vector<double>& values, const double* theta) {
  NSBI_ASSERT(values.size() == grid.size(), "interpolate: one value per grid point needed");
  const std::size_t n = grid.n_parameters();
  // Per axis: the lower corner index and the weight of the upper one.
  std::vector<std::size_t> lower(n);
  std::vector<double> weight(n, 0.0);
  std::vector<std::size_t> varying;
  for (std::size_t p = 0; p < n; ++p) {
    const GridAxis& axis = grid.axes()[p];
    if (!axis.continuous()) {
      const auto it = std::find(axis.values.begin(), axis.values.end(), theta[p]);
      NSBI_ASSERT(it != axis.values.end(),
                  "interpolate: " + axis.name + " = " + std::to_string(theta[p]) + " is not a grid value");
      lower[p] = static_cast<std::size_t>(it - axis.values.begin());
      continue;
    }
    const double v = std::clamp(theta[p], axis.values.front(), axis.values.back());
    std::size_t i = static_cast<std::size_t>(std::upper_bound(axis.values.begin(), axis.values.end(), v) -
                                             axis.values.begin());
    i = std::clamp<std::size_t>(i, 1, axis.values.size() - 1) - 1;
    lower[p] = i;
    weight[p] = (v - axis.values[i]) / (axis.values[i + 1] - axis.values[i]);
    varying.push_back(p);
  }
  double sum = 0.0;
  for (std::size_t corner = 0; corner < (std::size_t{1} << varying.size()); ++corner) {
    std::vector<std::size_t> index = lower;
    double w = 1.0;
    for (std::size_t j = 0; j < varying.size(); ++j) {
      const bool upper = (corner >> j) & 1U;
      index[varying[j]] += upper ? 1 : 0;
      w *= upper ? weight[varying[j]] : 1.0 - weight[varying[j]];
    }
    if (w != 0.0) sum += w * values[grid.ravel(index)];
  }
  return sum;
}

}  // namespace nsbi::inference
