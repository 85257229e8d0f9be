#pragma once
// The observed datasets and outputs of one `nsbi infer` run (docs/config.md, `infer`; docs/formats.md,
// "/infer"): infer.observed_dataset names one dataset (results directly in /infer, as always) or several (a
// list, or `all`: each dataset's results in /infer/datasets/<name>), and infer.outputs which results are
// written. Shared by the grid (infer.cpp) and the chains (infer_mcmc.cpp).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"

namespace nsbi::jobs {

/// What infer.outputs asks to be written (each dataset's and estimator's).
struct InferOutputs {
  bool posterior_samples = true;  // the posterior samples
  bool best_fit = true;           // θ̂, t_min and the degrees of freedom
  bool intervals = true;          // the 1-D profiles and intervals of the parameters of interest
  bool grid = true;               // the full-grid arrays (t, q, the profile q, regions, posterior, HPD sets)
};
/// infer.outputs; absent: all four, or posterior_samples alone with infer.posterior: mcmc.
InferOutputs infer_outputs(const config::Config& config);

/// The observed datasets infer analyses, and whether results are per dataset: when infer.observed_dataset
/// names several (a list, even of one, or `all`), each dataset's results go to /infer/datasets/<name> and
/// infer.json's `results_by_dataset`; else (one name, or none) to /infer itself, as always.
struct InferObserved {
  std::vector<ObservedDataset> datasets;
  bool per_dataset = false;
};

/// The datasets infer reads from infer.observed, in the order infer.observed_dataset lists them. `all`: the
/// file's, in name order (a dataset named `all` is named in a list, `[all]`).
/// ConfigError at infer.observed_dataset for an empty list or a name given twice; InputError naming the
/// file and infer.observed_dataset for a dataset the file does not hold (listing those it holds), and
/// read_observed's errors.
InferObserved read_infer_datasets(const Campaign& campaign, const sims::SimulatorInfo& info);

/// The datasets' names, in order.
std::vector<std::string> dataset_names(const std::vector<ObservedDataset>& datasets);
/// The datasets' events, all together.
std::uint64_t total_events(const std::vector<ObservedDataset>& datasets);

/// Collective: the infer stage's memory estimate with the datasets read (their largest event count and
/// their number), against a rank's share of the node (ConfigError when it does not fit).
void check_infer_memory(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                        const std::vector<ObservedDataset>& datasets);

/// infer's identity (stage_identity): the `infer` section (so the datasets named and the outputs asked), the
/// `prior` section when given, and the observed events: one dataset's as every stage's, several as their
/// names with each one's event count and digest.
std::string infer_identity(const Campaign& campaign, const InferenceContext& context,
                           const InferObserved& observed);

/// Writes dataset `d`'s `observed` [N, D], then what `fill` writes, in the group of `infer` (the stage's
/// group of results.h5) its results go to: `infer` itself for one dataset, datasets/<name> (created) with
/// `per_dataset`.
void write_dataset_group(h5::Group& infer, const ObservedDataset& d, bool per_dataset,
                         const std::function<void(h5::Group&)>& fill);

/// infer.json's body: `observed` and `estimators`, then what `fill(object, d)` sets for dataset d: for one
/// dataset in the body itself, for several in `results_by_dataset` ({name: object}) after `datasets` (their
/// names, in order).
json::Object infer_summary_body(const Campaign& campaign, const InferenceContext& context,
                                const InferObserved& observed,
                                const std::function<void(json::Object&, std::size_t)>& fill);

/// {estimator name: summary} for `results_by_estimator`.
json::Object by_estimator(const InferenceContext& context, const std::vector<json::Object>& summaries);

}  // namespace nsbi::jobs
