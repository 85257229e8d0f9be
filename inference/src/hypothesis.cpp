#include "nsbi/inference/hypothesis.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "nsbi/inference/statistics.hpp"

namespace nsbi::inference {
namespace {

json::Object fraction_json(std::uint64_t k, std::uint64_t n) {
  const auto interval = clopper_pearson(k, n, 0.6826894921370859);
  json::Object out;
  out.set("value", static_cast<double>(k) / static_cast<double>(n))
      .set("count", static_cast<std::int64_t>(k))
      .set("n_toys", static_cast<std::int64_t>(n))
      .set("standard_error", binomial_standard_error(k, n))
      .set("clopper_pearson_68", std::vector<double>{interval.lower, interval.upper});
  return out;
}

}  // namespace

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

json::Object simple_test_summary(const std::vector<double>& t_h0, const std::vector<double>& t_h1,
                                 std::optional<double> t_observed) {
  const std::uint64_t n_toys = t_h0.size();
  const double median_h1 = median(t_h1);
  std::uint64_t below_median = 0;
  for (const double v : t_h0) below_median += v <= median_h1 ? 1 : 0;
  json::Object summary;
  summary.set("median_t_under_h1", median_h1)
      .set("expected_p_value_h0_under_h1", fraction_json(below_median, n_toys));
  if (!t_observed) return summary;
  std::uint64_t h0_below = 0;
  std::uint64_t h1_above = 0;
  for (const double v : t_h0) h0_below += v <= *t_observed ? 1 : 0;
  for (const double v : t_h1) h1_above += v >= *t_observed ? 1 : 0;
  const double p_value = static_cast<double>(h0_below) / static_cast<double>(n_toys);
  summary.set("t_observed", *t_observed)
      .set("p_value_h0", fraction_json(h0_below, n_toys))
      .set("significance_h0", h0_below > 0 ? -normal_quantile(p_value) : std::nan(""))
      .set("p_value_h1", fraction_json(h1_above, n_toys));
  if (h0_below == 0)
    summary.set("note", "no H0 toy reached t_observed: the p-value is below " + std::to_string(1.0 / n_toys) +
                            "; raise test.n_toys");
  return summary;
}

}  // namespace nsbi::inference
