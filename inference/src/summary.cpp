#include "nsbi/inference/summary.hpp"

namespace nsbi::inference {

std::vector<json::Object> pieces_json(const std::vector<Interval>& pieces) {
  std::vector<json::Object> list;
  for (const auto& piece : pieces) {
    json::Object item;
    item.set("lower", piece.lower)
        .set("upper", piece.upper)
        .set("lower_at_grid_edge", piece.lower_at_edge)
        .set("upper_at_grid_edge", piece.upper_at_edge);
    list.push_back(item);
  }
  return list;
}

json::Object theta_json(const Grid& grid, std::size_t k) {
  std::vector<double> theta(grid.n_parameters());
  grid.point(k, theta.data());
  json::Object out;
  for (std::size_t p = 0; p < theta.size(); ++p) out.set(grid.axes()[p].name, theta[p]);
  return out;
}

}  // namespace nsbi::inference
