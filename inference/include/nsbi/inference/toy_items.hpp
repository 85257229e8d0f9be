#pragma once
// The pseudo-experiments of the toy stages (calibrate, coverage, test) cut into work items: an item is a
// block of toys of one parameter point, whatever rank computes it, so that items can be spread over ranks,
// journaled and merged in any order (the journaling is the caller's).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nsbi/inference/estimator.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/scan.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::inference {

/// The toys of each point in blocks of toys_per_item (the last block of a point may be shorter).
struct ToyPlan {
  std::uint64_t n_toys = 0;         // per point
  std::uint64_t toys_per_item = 0;  // at most n_toys
  std::uint64_t blocks_per_point = 0;
  std::size_t n_events = 0;  // per toy

  ToyPlan(std::uint64_t toys, std::uint64_t per_item, std::size_t events);
  std::uint64_t n_items(std::size_t points) const { return points * blocks_per_point; }
  /// Toys in block b of a point.
  std::size_t block_size(std::uint64_t b) const;
};

using Estimators = std::vector<std::unique_ptr<RatioEstimator>>;

/// What the toys of a stage are simulated from and scanned with.
struct ToySetup {
  const sims::Simulator* simulator = nullptr;
  std::uint64_t seed = 0;  // the campaign's
  ToyStage stage = ToyStage::calibrate;
  RefineOptions refine;
};

/// Work item `item` of a q stage (calibrate, coverage) over the points of `points`: simulates its toys at
/// their point θ_k (x is the reused event buffer) and writes q_θk of each toy, the minimum sought on `scan`,
/// per estimator: out[e · toys_per_item + j] (NaN after a short block). Item size: toys_per_item ·
/// estimators.
void q_toy_item(const ToySetup& setup, Estimators& estimators, const Grid& points, const Grid& scan,
                const ToyPlan& plan, std::uint64_t item, Matrix& x, double* out);

/// The merged items of a q stage as q[estimator][point][toy].
std::vector<std::vector<std::vector<double>>> q_toy_table(const std::vector<double>& merged,
                                                          std::size_t n_estimators, std::size_t n_points,
                                                          const ToyPlan& plan);

/// Work item `item` of the simple hypothesis test (toys under H0: items [0, B), under H1: [B, 2B) with B =
/// blocks_per_point; the setup's stage is ignored): t of each toy per estimator, laid out as q_toy_item's.
/// hypotheses [2, P] holds H0 then H1.
void simple_test_item(const ToySetup& setup, Estimators& estimators, const ConstMatrix& hypotheses,
                      const ToyPlan& plan, std::uint64_t item, Matrix& x, double* out);

/// The merged items of the test as t[estimator][hypothesis (0: H0, 1: H1)][toy].
std::vector<std::vector<std::vector<double>>> simple_test_table(const std::vector<double>& merged,
                                                                std::size_t n_estimators,
                                                                const ToyPlan& plan);

}  // namespace nsbi::inference
