#pragma once
// What the q toy stages (calibrate, coverage) share: their grids and toy plan from the config, and their toys
// run as journaled work items over the ranks (inference/toy_items.hpp does the work of an item).

#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/toy_items.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {

/// The grids of a toy stage: the points whose toys it runs (<section>.grid) and the scan grid each toy is
/// minimised over (infer.grid), with the exact estimator's reference point (the scan's first).
struct ToyGrids {
  inference::Grid points;
  inference::Grid scan;
  std::vector<double> reference;
};

/// The grids of <section>, checked (ConfigError naming the key); local (callers wrap it in agree).
ToyGrids toy_grids(const Campaign& campaign, const InferenceContext& context, const std::string& section);

/// <stage>.n_toys, toys_per_item and n_events.
inference::ToyPlan toy_plan(const config::Config& config, const std::string& stage);

/// The Wilks degrees of freedom of a toy's q: the continuous axes of the scan grid.
int degrees_of_freedom(const inference::Grid& scan_grid);

/// Collective: the toys of every point of grids.points, q[estimator][point][toy] (run_toy_items journals
/// them; profiling region "nsbi/<stage>/toys"); empty for a sliced run, whose items stay in the journals.
std::vector<std::vector<std::vector<double>>> q_toys(const Communicator& world, const Campaign& campaign,
                                                     const std::string& stage, inference::ToyStage toy_stage,
                                                     const std::string& identity,
                                                     const InferenceContext& context,
                                                     inference::Estimators& estimators, const ToyGrids& grids,
                                                     const inference::ToyPlan& plan,
                                                     const StageOptions& options);

/// grid/<parameter> of each axis into a stage's group.
void write_grid(h5::Group& group, const inference::Grid& grid);
/// The rows one after the other.
std::vector<double> flatten(const std::vector<std::vector<double>>& rows);

}  // namespace nsbi::jobs
