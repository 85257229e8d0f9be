#pragma once
// nsbi infer with infer.posterior: mcmc (docs/statistics.md, "Posterior sampling"): posterior samples of
// every estimator from Markov chains spread over the ranks, with R̂ and effective sample sizes, and no grid.

#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/jobs/campaign.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {

/// Collective: the rest of run_infer when infer.posterior is mcmc; writes /infer of results.h5 and
/// infer.json.
void run_infer_mcmc(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                    const StageOptions& options);

}  // namespace nsbi::jobs
