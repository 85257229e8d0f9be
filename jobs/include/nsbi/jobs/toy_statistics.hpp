#pragma once
// The per-toy numbers the toy stages (calibrate, coverage) compute: q_θ(D) = t(D|θ) − min t for a block of
// pseudo-experiments, the minimum found on the scan grid and refined as for real data.

#include <cstddef>
#include <vector>

#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/scan.hpp"

namespace nsbi::jobs {

/// out[e] = q_θ(D_e) for the n_experiments experiments of x (n_events rows each), for each θ row of points
/// [J, P]: out[e · J + j]. The minimum for point j is the smaller of the refined scan minimum and t at point
/// j itself, so q ≥ 0, and q at a point is computed the same way whether the point is a toy's true θ or one
/// of many points tested on observed data (which the Neyman construction needs).
std::vector<double> q_at_points(inference::RatioEstimator& estimator, const ConstMatrix& x,
                                std::size_t n_experiments, std::size_t n_events,
                                const inference::Grid& scan_grid, const ConstMatrix& points,
                                const inference::RefineOptions& refine);

}  // namespace nsbi::jobs
