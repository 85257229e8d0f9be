#pragma once
// A θ grid: the cartesian product of one axis of values per parameter (continuous parameters: evenly spaced
// points; discrete ones: their hypotheses; a parameter held fixed: one value). Points are numbered with the
// last parameter fastest, as C arrays: point k ↔ (i_0, …, i_{P−1}).

#include <cstddef>
#include <string>
#include <vector>

#include "nsbi/kernels/views.hpp"

namespace nsbi::inference {

struct GridAxis {
  std::string name;
  std::vector<double> values;  // increasing, at least one
  bool discrete = false;       // hypothesis labels: no interpolation or refinement between values
  /// Spacing of an evenly spaced continuous axis with ≥ 2 values (0 otherwise).
  double spacing() const;
  bool continuous() const { return !discrete && values.size() >= 2; }
};

class Grid {
 public:
  Grid() = default;
  explicit Grid(std::vector<GridAxis> axes);

  const std::vector<GridAxis>& axes() const { return axes_; }
  std::size_t n_parameters() const { return axes_.size(); }
  std::size_t size() const { return size_; }
  /// Multi-index of point k, and back.
  std::vector<std::size_t> unravel(std::size_t k) const;
  std::size_t ravel(const std::vector<std::size_t>& index) const;
  /// θ of point k.
  void point(std::size_t k, double* theta) const;
  /// All points as a [size, P] matrix.
  Matrix points() const;
  /// The volume of point k's cell: the product over continuous axes of the axis length covered by the point
  /// (half a spacing on each side, clipped to the axis range); discrete and single-valued axes count 1.
  double cell_volume(std::size_t k) const;
  /// Indices of the continuous axes (the ones refined and interpolated).
  std::vector<std::size_t> continuous_axes() const;

 private:
  std::vector<GridAxis> axes_;
  std::vector<std::size_t> strides_;
  std::size_t size_ = 0;
};

/// Evenly spaced values from min to max (both included); one value (min) when points is 1.
std::vector<double> linspace(double min, double max, std::size_t points);

/// Multilinear interpolation of values given on `grid`'s points (values[k] at point k) at θ, along the
/// continuous axes; along discrete or single-valued axes θ must equal one of the values (InternalError
/// otherwise). θ outside an axis range is clamped to it.
double interpolate(const Grid& grid, const std::vector<double>& values, const double* theta);

}  // namespace nsbi::inference
