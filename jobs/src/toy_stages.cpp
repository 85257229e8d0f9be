#include "nsbi/jobs/toy_stages.hpp"

#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/jobs/inference_stage.hpp"

namespace nsbi::jobs {
namespace {

std::vector<std::vector<double>> grid_points(const inference::Grid& grid) {
  std::vector<std::vector<double>> points(grid.size(), std::vector<double>(grid.n_parameters()));
  for (std::size_t k = 0; k < grid.size(); ++k) grid.point(k, points[k].data());
  return points;
}

}  // namespace

ToyGrids toy_grids(const Campaign& campaign, const InferenceContext& context, const std::string& section) {
  ToyGrids grids{
      grid_from_config(campaign, context, section), grid_from_config(campaign, context, "infer"), {}};
  grids.reference.resize(grids.scan.n_parameters());
  grids.scan.point(0, grids.reference.data());
  auto points = grid_points(grids.points);
  const auto scan_points = grid_points(grids.scan);
  points.insert(points.end(), scan_points.begin(), scan_points.end());
  context.check_exact(section + ".estimators", points, grids.reference);
  return grids;
}

inference::ToyPlan toy_plan(const config::Config& config, const std::string& stage) {
  return inference::ToyPlan(static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".n_toys")),
                            static_cast<std::uint64_t>(config.get<std::int64_t>(stage + ".toys_per_item")),
                            static_cast<std::size_t>(config.get<std::int64_t>(stage + ".n_events")));
}

int degrees_of_freedom(const inference::Grid& scan_grid) {
  return static_cast<int>(scan_grid.continuous_axes().size());
}

std::vector<std::vector<std::vector<double>>> q_toys(const Communicator& world, const Campaign& campaign,
                                                     const std::string& stage, inference::ToyStage toy_stage,
                                                     const std::string& identity,
                                                     const InferenceContext& context,
                                                     inference::Estimators& estimators, const ToyGrids& grids,
                                                     const inference::ToyPlan& plan,
                                                     const StageOptions& options) {
  const profiling::Region region("nsbi/" + stage + "/toys");
  inference::ToySetup setup{context.simulator.get(), campaign.seed, toy_stage, {}};
  setup.refine.enabled = campaign.config.get<bool>("infer.refine");
  Matrix x;
  const std::vector<double> merged = run_toy_items(
      world, campaign, stage, identity, plan.n_items(grids.points.size()),
      plan.toys_per_item * estimators.size(), plan.toys_per_item, "toys", options.force,
      [&](std::uint64_t item, double* out) {
        inference::q_toy_item(setup, estimators, grids.points, grids.scan, plan, item, x, out);
      },
      options.slice);
  if (!options.slice.whole()) return {};  // the slice's items are journaled; the merge run uses them
  return inference::q_toy_table(merged, estimators.size(), grids.points.size(), plan);
}

void write_grid(h5::Group& group, const inference::Grid& grid) {
  for (const auto& axis : grid.axes())
    inference::write_array(group, "grid/" + axis.name, {axis.values.size()}, axis.values);
}

std::vector<double> flatten(const std::vector<std::vector<double>>& rows) {
  std::vector<double> out;
  for (const auto& row : rows) out.insert(out.end(), row.begin(), row.end());
  return out;
}

}  // namespace nsbi::jobs
