#pragma once
// The stages of a campaign. Each is collective over `world`, resumable, and writes
// <campaign.dir>/<stage>.json when it completes.

#include "nsbi/distributed/communicator.hpp"
#include "nsbi/jobs/campaign.hpp"

namespace nsbi::jobs {

/// simulate: theta ~ proposal, x ~ simulator, into the dataset file (docs/formats.md).
void run_simulate(const Communicator& world, const Campaign& campaign, bool force);

/// train: the classifier (an ensemble of them) from the dataset and its reference into model.h5
/// (docs/formats.md), checkpointed and resumable; diagnostics and train.json with it.
void run_train(const Communicator& world, const Campaign& campaign, bool force);

/// mkdir -p `dir` and a write check (on the calling rank): a ConfigError naming `key` when it fails.
void prepare_directory(const config::Config& config, const std::string& key, const std::string& dir);
/// The directory part of a path ("." when there is none).
std::string parent_directory(const std::string& path);

}  // namespace nsbi::jobs
