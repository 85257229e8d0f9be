#pragma once
// The files a campaign writes and reads, checked against each other when the config is validated, so that
// no stage overwrites another's output or its own input (docs/config.md, "Where outputs go").

#include "nsbi/core/config.hpp"

namespace nsbi::jobs {

/// Checks a config validated against campaign_schema(): after resolving every path against campaign.dir
/// (absolute and relative forms, `.`, `..` and symbolic links of existing directories are alike),
/// - every output is its own file: simulate.output, simulate.reference.output and simulate.observed.output
///   (when simulate makes them), train.output, results.h5, the summaries <stage>.json and the directories
///   checkpoints/, work/ and slurm/ neither coincide nor lie inside one another, nor is one another's
///   `.partial` file, and none is the config file (config.file()) or its `.partial` file;
/// - an input is no output but the one of the stage that makes it: train.dataset may only be
///   simulate.output, train.reference_dataset (with train.reference: theta) simulate.reference.output,
///   infer.model train.output, infer.observed and test.observed simulate.observed.output.
/// Throws ConfigError (exit 2) at the later key's location naming both keys (or the fixed file) and the
/// path.
void check_campaign_paths(const config::Config& config);

}  // namespace nsbi::jobs
