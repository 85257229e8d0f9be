#pragma once
// The diagnostics of a trained model (docs/formats.md, "Model", /diagnostics): calibration of the
// classifier, E_θ0[r̂] on a θ grid, and the learned against the exact log ratio where the simulator has it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/sims/simulator.hpp"
#include "nsbi/training/data.hpp"
#include "nsbi/training/model_file.hpp"
#include "nsbi/training/settings.hpp"

namespace nsbi::training {

/// What is written with the model (model.h5 /diagnostics, train.json "diagnostics").
struct TrainingDiagnostics {
  std::map<std::string, DiagnosticArray> arrays;
  json::Object summary;
};

/// The check that E_θ0[r̂] = 1 at every point of a θ grid (docs/statistics.md, "Is E[r̂] = 1?"): per point the
/// mean of r̂ over n held-out class-0 events, its standard error sqrt(s²/n) (s² the sample variance), the
/// z-score (mean − 1) / standard error and the effective events (Σ r̂)² / Σ r̂²; and a verdict over the grid.
/// A point with at least min_effective_events:
///   fails if |z| > threshold and |mean − 1| > tolerance (a deviation beyond noise, and larger than
///   accepted); is noise-limited if threshold × standard error > tolerance (the check cannot see a deviation
///   of the
///     tolerance's size);
///   is significant, yet passes, if |z| > threshold within the tolerance.
/// A point with fewer (or fewer than 2 events) is noise-limited: its standard error cannot decide.
struct ExpectedRatioCheck {
  std::vector<double> mean, standard_error, z, effective_events;  // per grid point
  double threshold =
      0;  // the |z| of a deviation beyond noise: Φ⁻¹(1 − 0.01 / (2 G)), Bonferroni over G points
  std::size_t worst = 0;  // the grid point of the largest |z| (of those with a z); G if none has one
  std::size_t failed = 0;
  std::size_t noise_limited = 0;
  std::size_t significant = 0;  // points that pass with |z| > threshold
  std::string verdict;  // "failure" if any point failed, else "noise-limited" if any is, else "consistent"
};

/// The effective events a point needs for its standard error to decide: with fewer, the mean rests on a few
/// large r̂ and its relative standard error is about 1/sqrt(effective events) or more, itself uncertain.
constexpr double min_effective_events = 100;

/// The check of E_θ0[r̂] = 1 within `tolerance` (> 0) from `sums`: per grid point Σ r̂, Σ r̂², n ([G, 3],
/// row-major). A point whose sums are not finite (an r̂ that overflowed) fails with z = inf; one without
/// spread has z = 0 at mean 1 and ±inf elsewhere.
ExpectedRatioCheck check_expected_ratio(const std::vector<double>& sums, double tolerance);

/// Collective over `group` (its root gets the results; the other ranks' are partial): the diagnostics of
/// docs/formats.md ("Model") for the trained (ensemble) model `record`:
///   calibration [bins, 4]: per bin of the predicted class-1 probability σ(log r̂) over the held-out
///     examples: bin centre, mean prediction, observed fraction of class 1, examples;
///   expected_ratio [grid, P + 3]: θ, mean r̂ over held-out class-0 x (θ0 events, or the marginal), its
///     standard error, the events used (about settings.diagnostics_events, chosen by row, whatever the number
///     of ranks);
///   expected_ratio_significance [grid, P + 2]: θ, the z-score of the mean against 1, the effective events
///     (check_expected_ratio within settings.diagnostics_tolerance); the summary has the verdict, the largest
///     |z| and where;
///   exact_log_ratio [grid, P + 3] when `simulator` has an exact likelihood and the reference is θ0: θ,
///     RMS and mean of log r̂ − log r, over settings.diagnostics_events fresh events x ~ p(x|θ) per grid
///     point.
/// The θ grid: settings.diagnostics_grid_points cell centres across each parameter's training range, or every
/// hypothesis of a discrete parameter when `simulator` is the dataset's.
TrainingDiagnostics training_diagnostics(const Communicator& group, const TrainingData& data,
                                         const Settings& settings, const ModelRecord& record,
                                         const sims::Simulator* simulator);

}  // namespace nsbi::training
