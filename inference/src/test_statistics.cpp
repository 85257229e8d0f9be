#include "nsbi/inference/test_statistics.hpp"

#include <algorithm>

#include "nsbi/core/error.hpp"
#include "nsbi/core/signals.hpp"

namespace nsbi::inference {

std::vector<double> q_at_points(RatioEstimator& estimator, const ConstMatrix& x, std::size_t n_experiments,
                                std::size_t n_events, const Grid& scan_grid, const ConstMatrix& points,
                                const RefineOptions& refine) {
  const std::size_t n_grid = scan_grid.size();
  const std::size_t n_points = points.extent(0);
  // The toys are scanned in the blocks the scan itself uses (2^22 (event, point) pairs, at least one toy),
  // so that a signal stops a long work item between blocks and between toys: the item is not journaled,
  // those finished before it are, and the next run resumes from them. Each toy's t is the same bits
  // whatever the blocking.
  const std::size_t per_scan = std::max<std::size_t>(
      1, (std::size_t{1} << 22) / std::max<std::size_t>(1, n_events * (n_grid + n_points)));
  const auto stop_if_requested = [] {
    if (stop_requested())
      throw Interrupted(
          "stopped by a signal in the middle of a work item; the finished work items are "
          "journaled: run the same command to resume");
  };
  std::vector<double> q(n_experiments * n_points);
  for (std::size_t first = 0; first < n_experiments; first += per_scan) {
    stop_if_requested();
    const std::size_t count = std::min(per_scan, n_experiments - first);
    const ConstMatrix block =
        Kokkos::subview(x, std::make_pair(first * n_events, (first + count) * n_events), Kokkos::ALL);
    const ScanValues values = scan_experiments(estimator, block, count, n_events, scan_grid, points);
    for (std::size_t e = 0; e < count; ++e) {
      stop_if_requested();
      const auto rows = std::make_pair(e * n_events, (e + 1) * n_events);
      const std::vector<double> t_grid(values.t.begin() + static_cast<std::ptrdiff_t>(e * n_grid),
                                       values.t.begin() + static_cast<std::ptrdiff_t>((e + 1) * n_grid));
      const Minimum best =
          minimise(estimator, Kokkos::subview(block, rows, Kokkos::ALL), scan_grid, t_grid, refine);
      const double* t_points = values.t_extra.data() + e * n_points;
      for (std::size_t j = 0; j < n_points; ++j)
        q[(first + e) * n_points + j] = t_points[j] - std::min(best.t, t_points[j]);
    }
  }
  return q;
}

std::vector<double> simple_test_statistic(RatioEstimator& estimator, const ConstMatrix& x,
                                          const ConstMatrix& hypotheses, std::size_t n_events) {
  const std::size_t rows = x.extent(0);
  Matrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::test::log_ratios"), rows, 2);
  estimator.log_ratios(x, hypotheses, out);
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  std::vector<double> t(rows / n_events, 0.0);
  for (std::size_t i = 0; i < rows; ++i) t[i / n_events] += host(i, 1) - host(i, 0);
  for (double& v : t) v *= -2.0;
  return t;
}

}  // namespace nsbi::inference
