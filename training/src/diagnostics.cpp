#include "nsbi/training/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/normal.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/core/signals.hpp"

namespace nsbi::training {
namespace {

constexpr std::size_t calibration_bins = 10;
constexpr std::uint64_t block_rows = 16384;  // fresh events simulated and evaluated at a time

// The θ grid: per parameter its hypotheses (discrete, built-in simulator) or `points` cell centres of its
// training range; the product, the last parameter fastest.
std::vector<std::vector<double>> theta_grid(const TrainingData& data, const sims::Simulator* simulator,
                                            std::uint64_t points) {
  std::vector<std::vector<double>> axes;
  for (std::size_t p = 0; p < data.n_parameters(); ++p) {
    std::vector<double> axis;
    if (simulator != nullptr && simulator->info().parameters[p].is_discrete()) {
      axis = simulator->info().parameters[p].hypotheses;
    } else if (data.theta_min[p] == data.theta_max[p]) {
      axis = {data.theta_min[p]};
    } else {
      for (std::uint64_t i = 0; i < points; ++i)
        axis.push_back(data.theta_min[p] + (data.theta_max[p] - data.theta_min[p]) *
                                               (static_cast<double>(i) + 0.5) / static_cast<double>(points));
    }
    axes.push_back(axis);
  }
  std::vector<std::vector<double>> grid{{}};
  for (const auto& axis : axes) {
    std::vector<std::vector<double>> next;
    for (const auto& point : grid)
      for (const double v : axis) {
        next.push_back(point);
        next.back().push_back(v);
      }
    grid = std::move(next);
  }
  return grid;
}

void stop_if_requested(const Communicator& group, bool stopped) {
  if (group.any(stopped))
    throw Interrupted(
        "train: stopped by a signal during the diagnostics; the trained members are saved "
        "(checkpoints): run the same command to compute the diagnostics and write the model (a "
        "change of train.diagnostics keeps them)");
}

Matrix repeated_point(const std::vector<double>& theta, std::uint64_t n) {
  Matrix out = make_matrix("nsbi::train::diagnostics::theta", n, theta.size());
  for (std::uint64_t i = 0; i < n; ++i)
    for (std::size_t p = 0; p < theta.size(); ++p) out(i, p) = theta[p];
  return out;
}

// The sums of the held-out pass, this rank's: per calibration bin and class (1, then 0) Σ prediction and
// examples; per grid point Σ r̂, Σ r̂² and count over the kept class-0 x.
struct HeldOutSums {
  std::vector<double> bins;
  std::vector<double> ratio_sums;
};

// Thrown by a held-out pass on the rank that got a stop signal: the pass reads no further rows.
struct PassStopped {};

void poll_stop() {
  if (stop_requested()) throw PassStopped{};
}

// The calibration bins of n examples of one class with log r̂ `values`.
void add_calibration(const Vector& values, std::uint64_t n, float label, std::vector<double>& bins) {
  for (std::uint64_t i = 0; i < n; ++i) {
    const double prediction = 1.0 / (1.0 + std::exp(-values(i)));
    const auto bin = std::min(calibration_bins - 1, static_cast<std::size_t>(prediction * calibration_bins));
    const std::size_t c = label == 1.0f ? 0 : 2;
    bins[4 * bin + c] += prediction;
    bins[4 * bin + c + 1] += 1.0;
  }
}

// E[r̂] at every grid point over the kept ones of n class-0 x (each with probability `keep`, drawn from its
// row index), into the ratio sums; `log_r` and `kept_x` are scratch.
void add_expected_ratio(LikelihoodRatioEstimator& estimator, const std::vector<std::vector<double>>& grid,
                        std::uint64_t n, std::size_t n_x, const double* x, const std::uint64_t* rows,
                        std::uint64_t seed, double keep, const Vector& log_r, std::vector<double>& kept_x,
                        std::vector<double>& ratio_sums) {
  kept_x.clear();
  for (std::uint64_t i = 0; i < n; ++i)
    if (rng::Stream(seed, rng::Purpose::split, rows[i]).uniform() < keep)
      kept_x.insert(kept_x.end(), x + i * n_x, x + (i + 1) * n_x);
  const std::uint64_t used = kept_x.size() / n_x;
  if (used == 0) return;
  const ConstMatrix x_used(kept_x.data(), used, n_x);
  const Vector used_values = Kokkos::subview(log_r, std::make_pair(std::size_t{0}, used));
  for (std::size_t k = 0; k < grid.size(); ++k) {
    poll_stop();
    estimator.log_ratio(x_used, repeated_point(grid[k], used), used_values);
    for (std::uint64_t i = 0; i < used; ++i) {
      const double r = std::exp(used_values(i));
      ratio_sums[3 * k] += r;
      ratio_sums[3 * k + 1] += r * r;
      ratio_sums[3 * k + 2] += 1.0;
    }
  }
}

// Calibration over every held-out example, and E[r̂] over about n_events held-out class-0 x, into `sums`.
// Returns whether a stop signal ended the pass on this rank.
bool held_out_pass(const Communicator& group, const TrainingData& data, const Settings& settings,
                   LikelihoodRatioEstimator& estimator, const std::vector<std::vector<double>>& grid,
                   HeldOutSums& sums) {
  const std::size_t n_x = data.n_observables();
  const std::size_t n_theta = data.n_parameters();
  distributed::ShardedBatchStream dataset_stream(group, *data.dataset,
                                                 settings.stream_options(0, false, data.dataset->n_rows()));
  std::optional<distributed::ShardedBatchStream> reference_stream;
  if (data.reference != nullptr)
    reference_stream.emplace(group, *data.reference,
                             settings.stream_options(0, true, data.reference->n_rows()));
  Vector log_r("nsbi::train::diagnostics::log_r", dataset_stream.local_batch_rows());
  // E[r̂] uses each held-out class-0 row with probability n_events / (their number), drawn from its row
  // index.
  const std::uint64_t class0_rows =
      reference_stream ? reference_stream->validation_rows() : dataset_stream.validation_rows();
  const double keep =
      class0_rows > 0 ? static_cast<double>(settings.diagnostics_events) / static_cast<double>(class0_rows)
                      : 0.0;
  const std::uint64_t seed = settings.diagnostics_seed();
  std::vector<double> kept_x;
  try {
    for_each_validation_example(
        data, dataset_stream, reference_stream ? &*reference_stream : nullptr,
        [&](std::uint64_t n, const double* x, const double* theta, float label, const double*,
            const std::uint64_t* rows) {
          poll_stop();
          const Vector values =
              Kokkos::subview(log_r, std::make_pair(std::size_t{0}, static_cast<std::size_t>(n)));
          estimator.log_ratio(ConstMatrix(x, n, n_x), ConstMatrix(theta, n, n_theta), values);
          add_calibration(values, n, label, sums.bins);
          if (label != 0.0f) return;
          add_expected_ratio(estimator, grid, n, n_x, x, rows, seed, keep, log_r, kept_x, sums.ratio_sums);
        });
  } catch (const PassStopped&) {
    return true;
  }
  return false;
}

// The calibration curve of the summed bins, and the expected calibration error: Σ_bins weight |mean
// prediction − class-1 fraction| over the total weight.
void set_calibration(const std::vector<double>& bins, TrainingDiagnostics& out) {
  DiagnosticArray calibration{{calibration_bins, 4}, {}};
  double totals[2] = {0.0, 0.0};
  for (std::size_t b = 0; b < calibration_bins; ++b) {
    totals[0] += bins[4 * b + 1];
    totals[1] += bins[4 * b + 3];
  }
  double calibration_error = 0.0;
  for (std::size_t b = 0; b < calibration_bins; ++b) {
    const double w1 = totals[0] > 0 ? 1.0 / totals[0] : 0.0;
    const double w0 = totals[1] > 0 ? 1.0 / totals[1] : 0.0;
    const double weight = w1 * bins[4 * b + 1] + w0 * bins[4 * b + 3];
    const double prediction = weight > 0 ? (w1 * bins[4 * b] + w0 * bins[4 * b + 2]) / weight : std::nan("");
    const double fraction = weight > 0 ? w1 * bins[4 * b + 1] / weight : std::nan("");
    const double count = bins[4 * b + 1] + bins[4 * b + 3];
    calibration.values.insert(calibration.values.end(), {(static_cast<double>(b) + 0.5) / calibration_bins,
                                                         prediction, fraction, count});
    if (weight > 0) calibration_error += weight * std::abs(prediction - fraction);
  }
  if (totals[0] > 0 && totals[1] > 0) calibration_error /= 2.0;  // the weights sum to 2
  out.arrays["calibration"] = calibration;
  out.summary.set("calibration_error", calibration_error)
      .set("held_out_examples", static_cast<std::int64_t>(totals[0] + totals[1]));
}

// "θ = (a, b)" for the log.
std::string theta_text(const std::vector<double>& theta) {
  std::ostringstream out;
  out << "θ = (";
  for (std::size_t p = 0; p < theta.size(); ++p) out << (p > 0 ? ", " : "") << theta[p];
  out << ")";
  return out.str();
}

// E_θ0[r̂] per grid point from the summed ratio sums: mean, its standard error, count; the z-scores and
// effective events; the check's summary and its log line.
void set_expected_ratio(const std::vector<std::vector<double>>& grid, const std::vector<double>& ratio_sums,
                        std::size_t n_theta, double tolerance, TrainingDiagnostics& out) {
  const ExpectedRatioCheck check = check_expected_ratio(ratio_sums, tolerance);
  DiagnosticArray expected{{grid.size(), n_theta + 3}, {}};
  DiagnosticArray significance{{grid.size(), n_theta + 2}, {}};
  double worst_ratio = 1.0;
  double least_effective = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double mean = check.mean[k];
    expected.values.insert(expected.values.end(), grid[k].begin(), grid[k].end());
    expected.values.insert(expected.values.end(), {mean, check.standard_error[k], ratio_sums[3 * k + 2]});
    significance.values.insert(significance.values.end(), grid[k].begin(), grid[k].end());
    significance.values.insert(significance.values.end(), {check.z[k], check.effective_events[k]});
    if (std::abs(mean - 1.0) > std::abs(worst_ratio - 1.0)) worst_ratio = mean;
    least_effective = std::fmin(least_effective, check.effective_events[k]);  // fmin skips a NaN
  }
  out.arrays["expected_ratio"] = expected;
  out.arrays["expected_ratio_significance"] = significance;
  const bool has_worst = check.worst < grid.size();
  out.summary.set("expected_ratio_farthest_from_1", worst_ratio)
      .set("expected_ratio_largest_z", has_worst ? check.z[check.worst] : std::nan(""))
      .set("expected_ratio_largest_z_theta", has_worst ? grid[check.worst] : std::vector<double>{})
      .set("expected_ratio_z_threshold", check.threshold)
      .set("expected_ratio_tolerance", tolerance)
      .set("expected_ratio_least_effective_events", least_effective)
      .set("expected_ratio_failed_points", static_cast<std::int64_t>(check.failed))
      .set("expected_ratio_noise_limited_points", static_cast<std::int64_t>(check.noise_limited))
      .set("expected_ratio_significant_points", static_cast<std::int64_t>(check.significant))
      .set("expected_ratio_verdict", check.verdict);
  std::ostringstream rule;
  rule << " (beyond noise: |z| > " << check.threshold << "; tolerance " << tolerance << "; " << check.failed
       << " failed, " << check.noise_limited << " noise-limited, " << check.significant
       << " beyond noise within the tolerance): " << check.verdict;
  if (!has_worst) {
    log::info("train: E_θ0[r̂] on ", grid.size(), " grid points: none has 2 events", rule.str());
    return;
  }
  const std::size_t k = check.worst;
  log::info("train: E_θ0[r̂] on ", grid.size(), " grid points, largest |z| at ", theta_text(grid[k]), ": ",
            check.mean[k], " ± ", check.standard_error[k], " (z = ", check.z[k], ", ",
            check.effective_events[k], " effective events)", rule.str());
}

// Per grid point, this rank's Σ d² and Σ d with d = log r̂ − log r over its share of n_events fresh events
// (contiguous ranges over the ranks). Sets `stopped` when a stop signal ends the pass.
std::vector<double> exact_ratio_sums(const Communicator& group, const TrainingData& data,
                                     const Settings& settings, LikelihoodRatioEstimator& estimator,
                                     const sims::Simulator& simulator,
                                     const std::vector<std::vector<double>>& grid, bool& stopped) {
  const std::uint64_t n_events = settings.diagnostics_events;
  const auto size = static_cast<std::uint64_t>(group.size());
  const auto rank = static_cast<std::uint64_t>(group.rank());
  const std::uint64_t first = n_events / size * rank + std::min(rank, n_events % size);
  const std::uint64_t end = first + n_events / size + (rank < n_events % size ? 1 : 0);
  const std::uint64_t capacity = std::max<std::uint64_t>(1, std::min(block_rows, end - first));
  Matrix x = make_matrix("nsbi::train::diagnostics::x", capacity, data.n_observables());
  Vector log_r("nsbi::train::diagnostics::log_r", capacity);
  Vector log_p("nsbi::train::diagnostics::log_p", capacity);
  Vector log_p0("nsbi::train::diagnostics::log_p0", capacity);
  const Matrix theta0 = repeated_point(data.theta0, capacity);
  std::vector<double> sums(grid.size() * 2, 0.0);
  for (std::size_t k = 0; k < grid.size() && !stopped; ++k) {
    const Matrix theta = repeated_point(grid[k], capacity);
    for (std::uint64_t begin = first; begin < end && !(stopped = stop_requested()); begin += capacity) {
      const std::uint64_t n = std::min(capacity, end - begin);
      const auto rows = std::make_pair(std::size_t{0}, static_cast<std::size_t>(n));
      const Matrix theta_n = Kokkos::subview(theta, rows, Kokkos::ALL);
      const Matrix x_n = Kokkos::subview(x, rows, Kokkos::ALL);
      simulator.simulate(theta_n, x_n, k * n_events + begin, settings.diagnostics_seed());
      simulator.log_likelihood(theta_n, x_n, Kokkos::subview(log_p, rows));
      simulator.log_likelihood(Kokkos::subview(theta0, rows, Kokkos::ALL), x_n,
                               Kokkos::subview(log_p0, rows));
      estimator.log_ratio(x_n, theta_n, Kokkos::subview(log_r, rows));
      for (std::uint64_t i = 0; i < n; ++i) {
        const double d = log_r(i) - (log_p(i) - log_p0(i));
        sums[2 * k] += d * d;
        sums[2 * k + 1] += d;
      }
    }
  }
  return sums;
}

// The learned against the exact log ratio per grid point from the summed sums: RMS and mean of the
// difference, events.
void set_exact_log_ratio(const std::vector<std::vector<double>>& grid, const std::vector<double>& sums,
                         std::uint64_t n_events, std::size_t n_theta, TrainingDiagnostics& out) {
  DiagnosticArray exact{{grid.size(), n_theta + 3}, {}};
  double worst_rms = 0.0;
  double total = 0.0;
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double rms = std::sqrt(sums[2 * k] / static_cast<double>(n_events));
    exact.values.insert(exact.values.end(), grid[k].begin(), grid[k].end());
    exact.values.insert(exact.values.end(), {rms, sums[2 * k + 1] / static_cast<double>(n_events),
                                             static_cast<double>(n_events)});
    worst_rms = std::max(worst_rms, rms);
    total += sums[2 * k];
  }
  out.arrays["exact_log_ratio"] = exact;
  out.summary.set("exact_log_ratio_rms", std::sqrt(total / static_cast<double>(n_events * grid.size())))
      .set("exact_log_ratio_rms_worst_grid_point", worst_rms);
}

}  // namespace

ExpectedRatioCheck check_expected_ratio(const std::vector<double>& sums, double tolerance) {
  const std::size_t points = sums.size() / 3;
  NSBI_ASSERT(points > 0 && sums.size() == 3 * points, "check_expected_ratio: sums are not [G > 0, 3]");
  ExpectedRatioCheck check;
  // Two-sided, the family of G points at the 1 % level: −Φ⁻¹(0.005 / G) keeps the tail's precision.
  check.threshold = -normal::quantile(0.005 / static_cast<double>(points));
  check.worst = points;
  double worst_z = -1.0;
  for (std::size_t k = 0; k < points; ++k) {
    const double total = sums[3 * k];
    const double squares = sums[3 * k + 1];
    const double count = sums[3 * k + 2];
    const double mean = count > 0 ? total / count : std::nan("");
    double standard_error = std::nan("");
    double z = std::nan("");
    double effective = squares > 0 ? total * total / squares : 0.0;
    if (count >= 2) {
      const double variance = (squares - count * mean * mean) / (count - 1);
      standard_error = std::sqrt(std::max(variance, 0.0) / count);
    }
    if (count < 2) {
      ++check.noise_limited;
    } else if (!std::isfinite(total) || !std::isfinite(squares)) {  // an r̂ overflowed
      z = std::numeric_limits<double>::infinity();
      effective = std::nan("");
      ++check.failed;
    } else {
      z = standard_error > 0 ? (mean - 1.0) / standard_error
          : mean == 1.0      ? 0.0
                             : std::copysign(std::numeric_limits<double>::infinity(), mean - 1.0);
      const bool beyond_noise = std::abs(z) > check.threshold;
      if (effective < min_effective_events)
        ++check.noise_limited;
      else if (beyond_noise && std::abs(mean - 1.0) > tolerance)
        ++check.failed;
      else if (check.threshold * standard_error > tolerance)
        ++check.noise_limited;
      else if (beyond_noise)
        ++check.significant;
    }
    if (!std::isnan(z) && std::abs(z) > worst_z) {
      worst_z = std::abs(z);
      check.worst = k;
    }
    check.mean.push_back(mean);
    check.standard_error.push_back(standard_error);
    check.z.push_back(z);
    check.effective_events.push_back(effective);
  }
  check.verdict = check.failed > 0 ? "failure" : check.noise_limited > 0 ? "noise-limited" : "consistent";
  return check;
}

TrainingDiagnostics training_diagnostics(const Communicator& group, const TrainingData& data,
                                         const Settings& settings, const ModelRecord& record,
                                         const sims::Simulator* simulator) {
  TrainingDiagnostics out;
  // A signal ends a pass on the rank that got it; the group agrees on it after the pass (exit 4: the
  // trained checkpoints are kept, and the next run computes the diagnostics again). A rank without the
  // signal finishes its pass first (mpirun and srun send it to every rank).
  LikelihoodRatioEstimator estimator(record);
  const auto grid = theta_grid(data, simulator, settings.diagnostics_grid_points);
  // The classes are weighted to equal totals, as in training, whatever the number of held-out rows of
  // each file.
  HeldOutSums sums{std::vector<double>(calibration_bins * 4, 0.0), std::vector<double>(grid.size() * 3, 0.0)};
  bool stopped = held_out_pass(group, data, settings, estimator, grid, sums);
  stop_if_requested(group, stopped);
  group.sum_in_place(sums.bins.data(), sums.bins.size());
  group.sum_in_place(sums.ratio_sums.data(), sums.ratio_sums.size());
  set_calibration(sums.bins, out);
  set_expected_ratio(grid, sums.ratio_sums, data.n_parameters(), settings.diagnostics_tolerance, out);

  if (simulator == nullptr || !simulator->info().has_exact_likelihood || data.reference == nullptr)
    return out;
  std::vector<double> exact = exact_ratio_sums(group, data, settings, estimator, *simulator, grid, stopped);
  stop_if_requested(group, stopped);
  group.sum_in_place(exact.data(), exact.size());
  set_exact_log_ratio(grid, exact, settings.diagnostics_events, data.n_parameters(), out);
  return out;
}

}  // namespace nsbi::training
