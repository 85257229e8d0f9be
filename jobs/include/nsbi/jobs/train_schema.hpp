#pragma once
// The train section of a campaign (docs/config.md, "train"): its keys, and their conversion into the
// training library's settings.

#include <string>

#include "nsbi/core/config.hpp"
#include "nsbi/training/settings.hpp"

namespace nsbi::jobs {

/// Declares train.*; `dataset` and `reference` are the defaults of train.dataset and train.reference_dataset
/// (what simulate writes).
void declare_train(config::Schema& schema, const std::string& dataset, const std::string& reference);

/// The training settings of a validated config; ConfigError naming the key for a combination of keys the
/// trainer cannot use (a gold loss with reference: marginal, a score loss with relu, a batch that does not
/// split over the shards, early stopping without held-out rows).
training::Settings train_settings(const config::Config& config);

}  // namespace nsbi::jobs
