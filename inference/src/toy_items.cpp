#include "nsbi/inference/toy_items.hpp"

#include <algorithm>
#include <cmath>

#include "nsbi/inference/host_arrays.hpp"
#include "nsbi/inference/test_statistics.hpp"

namespace nsbi::inference {
namespace {

// x resized (when it must be) to n toys of the plan's events.
void size_buffer(Matrix& x, std::size_t n, const ToyPlan& plan, std::size_t d) {
  if (x.extent(0) != n * plan.n_events)
    x = Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::toys"), n * plan.n_events, d);
}

// One estimator's values of a block into its slot of the item, NaN after them.
void store(const std::vector<double>& values, const ToyPlan& plan, std::size_t e, double* out) {
  double* slot = out + e * plan.toys_per_item;
  std::fill(slot, slot + plan.toys_per_item, std::nan(""));
  std::copy(values.begin(), values.end(), slot);
}

}  // namespace

ToyPlan::ToyPlan(std::uint64_t toys, std::uint64_t per_item, std::size_t events)
    : n_toys(toys),
      toys_per_item(std::min(toys, per_item)),
      blocks_per_point((toys + toys_per_item - 1) / toys_per_item),
      n_events(events) {}

std::size_t ToyPlan::block_size(std::uint64_t b) const {
  return std::min(toys_per_item, n_toys - b * toys_per_item);
}

void q_toy_item(const ToySetup& setup, Estimators& estimators, const Grid& points, const Grid& scan,
                const ToyPlan& plan, std::uint64_t item, Matrix& x, double* out) {
  const std::size_t k = item / plan.blocks_per_point;
  const std::uint64_t first_toy = (item % plan.blocks_per_point) * plan.toys_per_item;
  const std::size_t n = std::min(plan.toys_per_item, plan.n_toys - first_toy);
  std::vector<double> theta(points.n_parameters());
  points.point(k, theta.data());
  size_buffer(x, n, plan, setup.simulator->info().n_observables());
  simulate_toys(*setup.simulator, theta.data(), setup.seed, setup.stage, k, first_toy, plan.n_events, x);
  const Matrix truth = matrix_of_rows({theta});
  for (std::size_t e = 0; e < estimators.size(); ++e)
    store(q_at_points(*estimators[e], x, n, plan.n_events, scan, truth, setup.refine), plan, e, out);
}

std::vector<std::vector<std::vector<double>>> q_toy_table(const std::vector<double>& merged,
                                                          std::size_t n_estimators, std::size_t n_points,
                                                          const ToyPlan& plan) {
  std::vector<std::vector<std::vector<double>>> q(
      n_estimators, std::vector<std::vector<double>>(n_points, std::vector<double>()));
  for (std::size_t k = 0; k < n_points; ++k)
    for (std::uint64_t b = 0; b < plan.blocks_per_point; ++b) {
      const double* item =
          merged.data() + (k * plan.blocks_per_point + b) * plan.toys_per_item * n_estimators;
      const std::size_t n = plan.block_size(b);
      for (std::size_t e = 0; e < n_estimators; ++e)
        q[e][k].insert(q[e][k].end(), item + e * plan.toys_per_item, item + e * plan.toys_per_item + n);
    }
  return q;
}

void simple_test_item(const ToySetup& setup, Estimators& estimators, const ConstMatrix& hypotheses,
                      const ToyPlan& plan, std::uint64_t item, Matrix& x, double* out) {
  const bool alternative = item >= plan.blocks_per_point;
  const std::uint64_t first_toy = (item % plan.blocks_per_point) * plan.toys_per_item;
  const std::size_t n = std::min(plan.toys_per_item, plan.n_toys - first_toy);
  size_buffer(x, n, plan, setup.simulator->info().n_observables());
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), hypotheses);
  std::vector<double> theta(hypotheses.extent(1));
  for (std::size_t p = 0; p < theta.size(); ++p) theta[p] = host(alternative ? 1 : 0, p);
  simulate_toys(*setup.simulator, theta.data(), setup.seed,
                alternative ? ToyStage::test_h1 : ToyStage::test_h0, 0, first_toy, plan.n_events, x);
  for (std::size_t e = 0; e < estimators.size(); ++e)
    store(simple_test_statistic(*estimators[e], x, hypotheses, plan.n_events), plan, e, out);
}

std::vector<std::vector<std::vector<double>>> simple_test_table(const std::vector<double>& merged,
                                                                std::size_t n_estimators,
                                                                const ToyPlan& plan) {
  std::vector<std::vector<std::vector<double>>> t(n_estimators, std::vector<std::vector<double>>(2));
  const std::uint64_t blocks = plan.blocks_per_point;
  for (std::size_t e = 0; e < n_estimators; ++e)
    for (std::uint64_t item = 0; item < 2 * blocks; ++item) {
      const std::size_t n = plan.block_size(item % blocks);
      const double* values = merged.data() + (item * n_estimators + e) * plan.toys_per_item;
      auto& target = t[e][item >= blocks ? 1 : 0];
      target.insert(target.end(), values, values + n);
    }
  return t;
}

}  // namespace nsbi::inference
