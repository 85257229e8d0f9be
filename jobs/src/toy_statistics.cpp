#include "nsbi/jobs/toy_statistics.hpp"

#include <algorithm>

namespace nsbi::jobs {

std::vector<double> q_at_points(inference::RatioEstimator& estimator, const ConstMatrix& x,
                                std::size_t n_experiments, std::size_t n_events,
                                const inference::Grid& scan_grid, const ConstMatrix& points,
                                const inference::RefineOptions& refine) {
  const std::size_t n_grid = scan_grid.size();
  const std::size_t n_points = points.extent(0);
  const inference::ScanValues values =
      inference::scan_experiments(estimator, x, n_experiments, n_events, scan_grid, points);
  std::vector<double> q(n_experiments * n_points);
  for (std::size_t e = 0; e < n_experiments; ++e) {
    const auto rows = std::make_pair(e * n_events, (e + 1) * n_events);
    const std::vector<double> t_grid(values.t.begin() + static_cast<std::ptrdiff_t>(e * n_grid),
                                     values.t.begin() + static_cast<std::ptrdiff_t>((e + 1) * n_grid));
    const inference::Minimum best =
        inference::minimise(estimator, Kokkos::subview(x, rows, Kokkos::ALL), scan_grid, t_grid, refine);
    const double* t_points = values.t_extra.data() + e * n_points;
    for (std::size_t j = 0; j < n_points; ++j)
      q[e * n_points + j] = t_points[j] - std::min(best.t, t_points[j]);
  }
  return q;
}

}  // namespace nsbi::jobs
