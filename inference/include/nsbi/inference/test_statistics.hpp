#pragma once
// The test statistics of data sets and pseudo-experiments: q_θ(D) = t(D|θ) − min t (the minimum found on the
// scan grid and refined as for real data), what calibrate and coverage compute per toy, and the simple
// hypothesis test's t = −2 Σ_i log r(x_i|H1, H0).

#include <cstddef>
#include <vector>

#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/scan.hpp"

namespace nsbi::inference {

/// out[e] = q_θ(D_e) for the n_experiments experiments of x (n_events rows each), for each θ row of points
/// [J, P]: out[e · J + j]. The minimum for point j is the smaller of the refined scan minimum and t at point
/// j itself, so q ≥ 0, and q at a point is computed the same way whether the point is a toy's true θ or one
/// of many points tested on observed data (which the Neyman construction needs).
std::vector<double> q_at_points(RatioEstimator& estimator, const ConstMatrix& x, std::size_t n_experiments,
                                std::size_t n_events, const Grid& scan_grid, const ConstMatrix& points,
                                const RefineOptions& refine);

/// t = −2 Σ_i [log r(x_i|H1) − log r(x_i|H0)] of each experiment of x (n_events rows each), hypotheses [2, P]
/// holding H0 then H1: small t favours H1.
std::vector<double> simple_test_statistic(RatioEstimator& estimator, const ConstMatrix& x,
                                          const ConstMatrix& hypotheses, std::size_t n_events);

}  // namespace nsbi::inference
