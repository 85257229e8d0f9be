#pragma once
// The diagnostics of a trained model (docs/formats.md, "Model", /diagnostics): calibration of the
// classifier, E_θ0[r̂] on a θ grid, and the learned against the exact log ratio where the simulator has it.

#include <cstdint>
#include <map>
#include <string>

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

/// Collective over `group` (its root gets the results; the other ranks' are partial): the diagnostics of
/// docs/formats.md ("Model") for the trained (ensemble) model `record`:
///   calibration [bins, 4]: per bin of the predicted class-1 probability σ(log r̂) over the held-out
///     examples: bin centre, mean prediction, observed fraction of class 1, examples;
///   expected_ratio [grid, P + 3]: θ, mean r̂ over held-out class-0 x (θ0 events, or the marginal), its
///     standard error, the events used (about settings.diagnostics_events, chosen by row, whatever the number
///     of ranks);
///   exact_log_ratio [grid, P + 3] when `simulator` has an exact likelihood and the reference is θ0: θ,
///     RMS and mean of log r̂ − log r, over settings.diagnostics_events fresh events x ~ p(x|θ) per grid
///     point.
/// The θ grid: settings.diagnostics_grid_points cell centres across each parameter's training range, or every
/// hypothesis of a discrete parameter when `simulator` is the dataset's.
TrainingDiagnostics training_diagnostics(const Communicator& group, const TrainingData& data,
                                         const Settings& settings, const ModelRecord& record,
                                         const sims::Simulator* simulator);

}  // namespace nsbi::training
