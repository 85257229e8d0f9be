#pragma once
// `nsbi c2st`: compares two sample sets outside any campaign (docs/statistics.md, "Comparing two sample
// sets").

#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"

namespace nsbi::jobs {

/// `nsbi c2st A B [--out FILE] [--seed N]` (argv as main gets it): the classifier two-sample test of two
/// sample sets (results.h5 posterior samples or CSV files), printed and optionally written as JSON
/// (docs/formats.md). Rank 0 computes it; the other ranks only share its errors.
void run_c2st(const Communicator& world, const std::vector<std::string>& argv);

}  // namespace nsbi::jobs
