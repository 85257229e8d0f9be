#pragma once
// The stages of a campaign. Each is collective over `world`, resumable, and writes
// <campaign.dir>/<stage>.json when it completes.

#include "nsbi/distributed/communicator.hpp"
#include "nsbi/jobs/campaign.hpp"

namespace nsbi::jobs {

/// simulate: theta ~ proposal, x ~ simulator, into the dataset file (docs/formats.md).
void run_simulate(const Communicator& world, const Campaign& campaign, bool force);

}  // namespace nsbi::jobs
