#include "nsbi/inference/scan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nsbi/core/error.hpp"

namespace nsbi::inference {
namespace {

using Range = std::pair<std::size_t, std::size_t>;

/// Pair values per estimator call: bounds the [events, points] buffer to 32 MiB.
constexpr std::size_t max_pairs_per_call = std::size_t{1} << 22;

/// Solves H δ = −g for a symmetric positive-definite H (Cholesky); false when H is not positive definite.
bool newton_step(std::vector<double> h, const std::vector<double>& g, std::vector<double>& delta) {
  const std::size_t c = g.size();
  for (std::size_t j = 0; j < c; ++j) {
    double d = h[j * c + j];
    for (std::size_t m = 0; m < j; ++m) d -= h[j * c + m] * h[j * c + m];
    if (!(d > 0.0)) return false;
    h[j * c + j] = std::sqrt(d);
    for (std::size_t i = j + 1; i < c; ++i) {
      double s = h[i * c + j];
      for (std::size_t m = 0; m < j; ++m) s -= h[i * c + m] * h[j * c + m];
      h[i * c + j] = s / h[j * c + j];
    }
  }
  std::vector<double> y(c);
  for (std::size_t i = 0; i < c; ++i) {
    double s = -g[i];
    for (std::size_t m = 0; m < i; ++m) s -= h[i * c + m] * y[m];
    y[i] = s / h[i * c + i];
  }
  delta.assign(c, 0.0);
  for (std::size_t i = c; i-- > 0;) {
    double s = y[i];
    for (std::size_t m = i + 1; m < c; ++m) s -= h[m * c + i] * delta[m];
    delta[i] = s / h[i * c + i];
  }
  return true;
}

// The 3^c stencil around `centre`: point s is centre moved by (digit j of s in base 3) − 1 spacings h[j]
// along continuous axis axes[j].
template <class HostMatrix>
void fill_stencil(HostMatrix& stencil_host, const std::vector<double>& centre,
                  const std::vector<std::size_t>& axes, const std::vector<double>& h) {
  const std::size_t c = axes.size();
  for (std::size_t s = 0; s < stencil_host.extent(0); ++s) {
    std::size_t rest = s;
    for (std::size_t p = 0; p < centre.size(); ++p) stencil_host(s, p) = centre[p];
    for (std::size_t j = 0; j < c; ++j) {
      const int offset = static_cast<int>(rest % 3) - 1;
      rest /= 3;
      stencil_host(s, axes[j]) += offset * h[j];
    }
  }
}

// Central differences of the quadratic through the stencil values t (as fill_stencil orders them): the
// gradient g and the Hessian [c, c] at the centre.
void stencil_derivatives(const std::vector<double>& t, const std::vector<double>& h, std::vector<double>& g,
                         std::vector<double>& hessian) {
  const std::size_t c = h.size();
  g.assign(c, 0.0);
  hessian.assign(c * c, 0.0);
  const auto at = [&](const std::vector<int>& offsets) {
    std::size_t s = 0;
    std::size_t stride = 1;
    for (std::size_t j = 0; j < c; ++j, stride *= 3) s += static_cast<std::size_t>(offsets[j] + 1) * stride;
    return t[s];
  };
  const double t0 = at(std::vector<int>(c, 0));
  for (std::size_t a = 0; a < c; ++a) {
    std::vector<int> plus(c, 0);
    std::vector<int> minus(c, 0);
    plus[a] = 1;
    minus[a] = -1;
    g[a] = (at(plus) - at(minus)) / (2.0 * h[a]);
    hessian[a * c + a] = (at(plus) - 2.0 * t0 + at(minus)) / (h[a] * h[a]);
    for (std::size_t b = a + 1; b < c; ++b) {
      std::vector<int> pp(c, 0);
      pp[a] = 1;
      pp[b] = 1;
      std::vector<int> pm = pp;
      pm[b] = -1;
      std::vector<int> mp = pp;
      mp[a] = -1;
      std::vector<int> mm(c, 0);
      mm[a] = -1;
      mm[b] = -1;
      const double mixed = (at(pp) - at(pm) - at(mp) + at(mm)) / (4.0 * h[a] * h[b]);
      hessian[a * c + b] = mixed;
      hessian[b * c + a] = mixed;
    }
  }
}

}  // namespace

std::vector<double> t_at_points(RatioEstimator& estimator, const ConstMatrix& x, const ConstMatrix& theta) {
  const std::size_t n = x.extent(0);
  const std::size_t k_points = theta.extent(0);
  Matrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::log_ratios"), n, k_points);
  estimator.log_ratios(x, theta, out);
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  std::vector<double> t(k_points, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < k_points; ++k) t[k] += host(i, k);
  for (double& v : t) v *= -2.0;
  return t;
}

ScanValues scan_experiments(RatioEstimator& estimator, const ConstMatrix& x, std::size_t n_experiments,
                            std::size_t n_events, const Grid& grid, const ConstMatrix& extra) {
  NSBI_ASSERT(n_events > 0 && x.extent(0) == n_experiments * n_events,
              "scan: x does not hold n_experiments × n_events rows");
  const std::size_t n_grid = grid.size();
  const std::size_t n_extra = extra.extent(0);
  const std::size_t n_points = n_grid + n_extra;
  const std::size_t n_parameters = grid.n_parameters();
  Matrix points(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::scan_points"), n_points,
                n_parameters);
  {
    const Matrix grid_points = grid.points();
    auto host = Kokkos::create_mirror_view(points);
    const auto grid_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grid_points);
    const auto extra_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), extra);
    for (std::size_t k = 0; k < n_grid; ++k)
      for (std::size_t p = 0; p < n_parameters; ++p) host(k, p) = grid_host(k, p);
    for (std::size_t j = 0; j < n_extra; ++j)
      for (std::size_t p = 0; p < n_parameters; ++p) host(n_grid + j, p) = extra_host(j, p);
    Kokkos::deep_copy(points, host);
  }

  ScanValues values;
  values.t.assign(n_experiments * n_grid, 0.0);
  values.t_extra.assign(n_experiments * n_extra, 0.0);
  const std::size_t per_call =
      std::max<std::size_t>(1, max_pairs_per_call / std::max<std::size_t>(1, n_events * n_points));
  Matrix out;
  for (std::size_t first = 0; first < n_experiments; first += per_call) {
    const std::size_t count = std::min(per_call, n_experiments - first);
    const std::size_t rows = count * n_events;
    if (out.extent(0) < rows)
      out = Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::scan_log_ratios"), rows,
                   n_points);
    const auto block_out = Kokkos::subview(out, Range(0, rows), Kokkos::ALL);
    estimator.log_ratios(Kokkos::subview(x, Range(first * n_events, first * n_events + rows), Kokkos::ALL),
                         points, block_out);
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), block_out);
    // Each experiment's sum runs over its own events in order: the same bits whatever the blocking.
    for (std::size_t e = 0; e < count; ++e) {
      double* t = values.t.data() + (first + e) * n_grid;
      double* t_extra = values.t_extra.data() + (first + e) * n_extra;
      for (std::size_t i = e * n_events; i < (e + 1) * n_events; ++i) {
        for (std::size_t k = 0; k < n_grid; ++k) t[k] += host(i, k);
        for (std::size_t j = 0; j < n_extra; ++j) t_extra[j] += host(i, n_grid + j);
      }
      for (std::size_t k = 0; k < n_grid; ++k) t[k] *= -2.0;
      for (std::size_t j = 0; j < n_extra; ++j) t_extra[j] *= -2.0;
    }
  }
  return values;
}

Minimum minimise(RatioEstimator& estimator, const ConstMatrix& x_experiment, const Grid& grid,
                 const std::vector<double>& t_grid, const RefineOptions& options) {
  NSBI_ASSERT(t_grid.size() == grid.size(), "minimise: one t per grid point needed");
  Minimum best;
  best.grid_index = 0;
  for (std::size_t k = 1; k < t_grid.size(); ++k)
    if (t_grid[k] < t_grid[best.grid_index]) best.grid_index = k;
  best.t = t_grid[best.grid_index];
  best.theta.resize(grid.n_parameters());
  grid.point(best.grid_index, best.theta.data());
  // Axes of at least 3 points: a stencil of ±1 spacing then fits inside the range.
  std::vector<std::size_t> axes;
  for (const std::size_t p : grid.continuous_axes())
    if (grid.axes()[p].values.size() >= 3) axes.push_back(p);
  if (!options.enabled || axes.empty() || !std::isfinite(best.t)) return best;

  const std::size_t c = axes.size();
  std::size_t n_stencil = 1;
  for (std::size_t j = 0; j < c; ++j) n_stencil *= 3;
  std::vector<double> h(c);
  for (std::size_t j = 0; j < c; ++j) h[j] = grid.axes()[axes[j]].spacing();
  const std::size_t n_parameters = grid.n_parameters();
  Matrix stencil("nsbi::inference::stencil", n_stencil, n_parameters);
  Matrix candidate("nsbi::inference::candidate", 1, n_parameters);
  auto stencil_host = Kokkos::create_mirror_view(stencil);
  auto candidate_host = Kokkos::create_mirror_view(candidate);

  for (int iteration = 0; iteration < options.iterations; ++iteration) {
    // A 3^c stencil around the best point, moved inside the axis ranges.
    std::vector<double> centre = best.theta;
    for (std::size_t j = 0; j < c; ++j) {
      const GridAxis& axis = grid.axes()[axes[j]];
      centre[axes[j]] = std::clamp(centre[axes[j]], axis.values.front() + h[j], axis.values.back() - h[j]);
    }
    fill_stencil(stencil_host, centre, axes, h);
    Kokkos::deep_copy(stencil, stencil_host);
    const std::vector<double> t = t_at_points(estimator, x_experiment, stencil);
    for (std::size_t s = 0; s < n_stencil; ++s) {
      if (t[s] < best.t) {
        best.t = t[s];
        for (std::size_t p = 0; p < n_parameters; ++p) best.theta[p] = stencil_host(s, p);
      }
    }
    std::vector<double> g;
    std::vector<double> hessian;
    stencil_derivatives(t, h, g, hessian);
    std::vector<double> delta;
    if (newton_step(hessian, g, delta)) {
      for (std::size_t p = 0; p < n_parameters; ++p) candidate_host(0, p) = centre[p];
      for (std::size_t j = 0; j < c; ++j) {
        const GridAxis& axis = grid.axes()[axes[j]];
        const double step = std::clamp(delta[j], -h[j], h[j]);
        candidate_host(0, axes[j]) =
            std::clamp(centre[axes[j]] + step, axis.values.front(), axis.values.back());
      }
      Kokkos::deep_copy(candidate, candidate_host);
      const double t_candidate = t_at_points(estimator, x_experiment, candidate)[0];
      if (t_candidate < best.t) {
        best.t = t_candidate;
        for (std::size_t p = 0; p < n_parameters; ++p) best.theta[p] = candidate_host(0, p);
      }
    }
    for (double& step : h) step *= 0.5;
  }
  return best;
}

Profile profile_out(const Grid& grid, const std::vector<double>& values, const std::vector<bool>& profiled) {
  NSBI_ASSERT(values.size() == grid.size() && profiled.size() == grid.n_parameters(),
              "profile_out: sizes disagree with the grid");
  std::vector<GridAxis> kept;
  for (std::size_t p = 0; p < grid.n_parameters(); ++p)
    if (!profiled[p]) kept.push_back(grid.axes()[p]);
  Profile profile{Grid(kept), {}};
  profile.values.assign(profile.grid.size(), std::numeric_limits<double>::infinity());
  std::vector<std::size_t> sub(kept.size());
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const auto index = grid.unravel(k);
    std::size_t j = 0;
    for (std::size_t p = 0; p < grid.n_parameters(); ++p)
      if (!profiled[p]) sub[j++] = index[p];
    const std::size_t target = profile.grid.ravel(sub);
    profile.values[target] = std::min(profile.values[target], values[k]);
  }
  return profile;
}

}  // namespace nsbi::inference
