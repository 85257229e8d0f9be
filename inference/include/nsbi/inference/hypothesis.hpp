#pragma once
// The simple hypothesis test H0 against H1 from pseudo-experiments (docs/statistics.md): p-values of observed
// data and the expected p-value, each a fraction of toys with its uncertainty.

#include <cstdint>
#include <optional>
#include <vector>

#include "nsbi/core/json.hpp"

namespace nsbi::inference {

/// The median of `values` (the mean of the two middle ones for an even count).
double median(std::vector<double> values);

/// The summary of the test for one estimator (docs/formats.md, test.json): the median t under H1, the
/// expected p-value of H0 under H1 (H0 toys with t ≤ that median) and, given t of the observed data, the
/// p-value of H0 (H0 toys with t ≤ t_observed), its significance and the p-value of H1 (H1 toys with t ≥
/// t_observed). Each p-value is {value, count, n_toys, standard_error, clopper_pearson_68}.
json::Object simple_test_summary(const std::vector<double>& t_h0, const std::vector<double>& t_h1,
                                 std::optional<double> t_observed);

}  // namespace nsbi::inference
