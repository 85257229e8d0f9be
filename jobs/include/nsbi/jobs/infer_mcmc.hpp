#pragma once
// nsbi infer with infer.posterior: mcmc (docs/statistics.md, "Posterior sampling"): posterior samples of
// every estimator from Markov chains spread over the ranks, with R̂ and effective sample sizes, and no grid.

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/inference/grid.hpp"
#include "nsbi/inference/mcmc.hpp"
#include "nsbi/inference/prior.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {

/// The box the chains move in: each parameter's range on `grid` (the infer grid; one value: held there)
/// within the prior's support, with the prior's log density (the returned box refers to `prior`). ConfigError
/// naming `prior` (or infer.grid) where the two do not overlap or the prior is zero in the box's middle, and
/// infer.posterior when every parameter is held.
inference::McmcPrior mcmc_box(const config::Config& config, const inference::Grid& grid,
                              const inference::Prior& prior);

/// Collective: the rest of run_infer when infer.posterior is mcmc; writes /infer of results.h5 and
/// infer.json.
void run_infer_mcmc(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                    const StageOptions& options);

}  // namespace nsbi::jobs
