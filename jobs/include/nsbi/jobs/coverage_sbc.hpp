#pragma once
// The posterior checks of nsbi coverage (coverage.methods `sbc` and `expected_coverage`; docs/statistics.md,
// "Simulation-based calibration"): runs of θ* from the prior, a dataset and a posterior each, spread over the
// ranks as journaled work items (inference/sbc.hpp does a run), summarised as rank histograms with a χ²
// uniformity test and as the empirical coverage of highest-density regions.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/inference/sbc.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {

/// Whether coverage.methods names sbc or expected_coverage.
bool wants_posterior_checks(const config::Config& config);

/// The settings of the checks (coverage.sbc.*, the prior, infer.posterior) and what a run samples with.
/// Filled in place: setup points into prior and grid.
struct PosteriorChecks {
  std::optional<inference::Prior> prior;
  std::optional<inference::Grid> grid;  // the infer grid
  inference::SbcSetup setup;
  std::uint64_t runs = 0;
  std::uint64_t runs_per_item = 0;
  std::size_t bins = 0;
  std::vector<double> levels;     // of expected_coverage
  std::vector<bool> ranked;       // per parameter: varies under the prior, so its ranks are tested
  std::vector<double> reference;  // the estimators' reference point: the infer grid's first
};

/// coverage.sbc.runs and the runs per work item (coverage.sbc.runs_per_item, at most the runs), defaults
/// applied.
std::pair<std::uint64_t, std::uint64_t> posterior_check_runs(const config::Config& config);

/// The work items of the checks, 0 when coverage.methods asks for none (what `nsbi status` counts).
std::uint64_t posterior_check_items(const config::Config& config);

/// Reads and checks the checks' settings for datasets of n_events events (ConfigError naming the key; local,
/// callers wrap it in agree).
void read_posterior_checks(const Campaign& campaign, const InferenceContext& context, std::size_t n_events,
                           PosteriorChecks& checks);

/// The config sections the checks' results depend on besides coverage's own (coverage, infer.grid,
/// infer.refine): infer.posterior and the prior when given.
std::vector<std::string> posterior_check_sections(const Campaign& campaign);

/// Collective: every run of every estimator, journaled in work/coverage_sbc: [runs, estimators, P + 1]
/// (the P ranks, then the credibility); empty for a sliced run.
std::vector<double> run_posterior_checks(const Communicator& world, const Campaign& campaign,
                                         const std::string& identity, inference::Estimators& estimators,
                                         const PosteriorChecks& checks, const StageOptions& options);

/// Estimator e's entries `sbc` and `expected_coverage` of coverage.json into `by_method` (those methods
/// asked for), and its arrays into `group` (/coverage/<estimator>/sbc and .../expected_coverage).
void summarise_posterior_checks(const Campaign& campaign, const PosteriorChecks& checks,
                                const std::vector<double>& merged, std::size_t e, std::size_t n_estimators,
                                json::Object& by_method);
void write_posterior_checks(h5::Group& group, const PosteriorChecks& checks,
                            const std::vector<double>& merged, std::size_t e, std::size_t n_estimators);

/// The checks' settings for coverage.json and /coverage's attributes (θ* of every run: theta_true).
json::Object posterior_checks_json(const PosteriorChecks& checks);
void write_posterior_check_settings(h5::Group& group, const PosteriorChecks& checks);

/// The journal directory of the checks' work items, below campaign.dir.
inline const char* posterior_check_journals() { return "work/coverage_sbc"; }

/// Removes the journals of the checks (after the stage completed).
void remove_posterior_check_journals(const Communicator& world, const Campaign& campaign);

}  // namespace nsbi::jobs
