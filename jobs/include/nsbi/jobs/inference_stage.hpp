#pragma once
// What every inference stage (infer, test, calibrate, coverage) does around the library's work: its identity,
// the check whether it is already complete, the toys spread over the ranks and journaled, and its outputs:
// its group of results.h5 (docs/formats.md, "Results") and <stage>.json.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"

namespace nsbi::jobs {

/// How a stage evaluated its networks, recorded in results.h5 and the summary.
struct Evaluation {
  std::string precision;            // of the learned estimator's GEMMs (InferenceContext::precision)
  std::string gemm_implementation;  // oneDNN's, of the learned estimator's GEMMs ("" without one)
};

/// The evaluation of `estimators` (context.make_estimators), after they ran.
Evaluation evaluation_of(const InferenceContext& context,
                         const std::vector<std::unique_ptr<inference::RatioEstimator>>& estimators);

/// Collective; rank 0 works: replaces the group `stage` of <campaign.dir>/results.h5 by what `fill` writes
/// (through a copy written to results.h5.partial and renamed, so results.h5 is always complete), with the
/// stage's identity (stage_identity), config, seed, provenance and evaluation as attributes. The other
/// groups are kept.
void write_results(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const Evaluation& evaluation,
                   const std::function<void(h5::Group&)>& fill);
/// What decides a stage's results: the seed, the simulator, the model file's identity (its canonical path,
/// creation time and seed) when a learned estimator is used, the listed config sections and, when given, the
/// observed events (their count and a digest of their values), emitted as YAML. Journals, the summary and
/// the stage's group of results.h5 carry it; a stage is resumed or skipped only when it matches.
std::string stage_identity(const Campaign& campaign, const InferenceContext& context,
                           const std::vector<std::string>& sections, const Matrix* observed = nullptr);
/// As above for several named observed datasets: each one's name, event count and digest, in order.
std::string stage_identity(const Campaign& campaign, const InferenceContext& context,
                           const std::vector<std::string>& sections,
                           const std::vector<ObservedDataset>& datasets);

/// Collective: writes <campaign.dir>/<stage>.json with the fields every summary has (stage, complete, a
/// digest of `identity`, seed, simulator, ranks, precision and GEMM implementation, version, created)
/// before `body`'s.
void write_summary(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const Evaluation& evaluation, const json::Object& body);

/// Collective: whether the stage is complete for this identity: <campaign.dir>/<stage>.json says it completed
/// with it AND results.h5 holds the group /<stage> recording it. It is then skipped. A missing summary,
/// results.h5 or group is not complete (the stage runs). Without `force`, a summary or a group made from
/// another identity is a ConfigError (exit 2) naming the file, the group, what differs and --force, and an
/// unreadable results.h5 an InputError (exit 3): nothing is replaced. With `force`: false, nothing checked.
bool stage_complete(const Communicator& world, const Campaign& campaign, const std::string& stage,
                    const std::string& identity, bool force);

/// Collective: stage_complete, and when the stage is complete, a log line saying that it is skipped.
bool skip_if_complete(const Communicator& world, const Campaign& campaign, const std::string& stage,
                      const std::string& identity, bool force);

/// Collective: runs the work items of a toy stage over the ranks (distributed/work_queue.hpp), each of
/// toys_per_item toys (or SBC runs: `unit` names them in the progress line), journaled in
/// <campaign.dir>/work/<stage>/ (removed first with `force`), with progress on rank 0. Returns the merged
/// results [n_items × item_size]; throws CollectiveError (exit 4) when a signal stopped it, and ConfigError
/// when the journals there are from another identity. A sliced run (`nsbi calibrate --slice k/K`, one task
/// of a job array) computes only its slice's items and returns nothing: they stay in the journals for the
/// unsliced run that merges them (`force` then removes nothing: the journals are shared with other slices).
std::vector<double> run_toy_items(const Communicator& world, const Campaign& campaign,
                                  const std::string& stage, const std::string& identity,
                                  std::uint64_t n_items, std::size_t item_size, std::uint64_t toys_per_item,
                                  const std::string& unit, bool force,
                                  const std::function<void(std::uint64_t item, double* out)>& work,
                                  const distributed::WorkSlice& slice = {});
/// Removes the journals of a finished stage (its results are written).
void remove_toy_journals(const Communicator& world, const Campaign& campaign, const std::string& stage);

}  // namespace nsbi::jobs
