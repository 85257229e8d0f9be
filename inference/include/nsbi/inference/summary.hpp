#pragma once
// The pieces of the stages' JSON summaries that several stages share (docs/formats.md, "The inference
// stages' JSON summaries").

#include <cstddef>
#include <vector>

#include "nsbi/core/json.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/statistics.hpp"

namespace nsbi::inference {

/// [{lower, upper, lower_at_grid_edge, upper_at_grid_edge}] of the pieces of an interval.
std::vector<json::Object> pieces_json(const std::vector<Interval>& pieces);

/// {parameter: value} of grid point k.
json::Object theta_json(const Grid& grid, std::size_t k);

}  // namespace nsbi::inference
