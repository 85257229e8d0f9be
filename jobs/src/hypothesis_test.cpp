// nsbi test: simple hypothesis H0 against H1 (specs/statistics.md, "Simple hypothesis test"):
// t = −2 Σ_i log r(x_i|H1, H0), small t favouring H1, with its distribution from toys under both hypotheses.

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "nsbi/core/log.hpp"
#include "nsbi/inference/statistics.hpp"
#include "nsbi/inference/toys.hpp"
#include "nsbi/jobs/inference_setup.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

// t of each experiment of x (n_events rows each) for H1 against H0.
std::vector<double> test_statistic(inference::RatioEstimator& estimator, const ConstMatrix& x,
                                   const ConstMatrix& hypotheses, std::size_t n_events) {
  const std::size_t rows = x.extent(0);
  Matrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::test::log_ratios"), rows, 2);
  estimator.log_ratios(x, hypotheses, out);
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  std::vector<double> t(rows / n_events, 0.0);
  for (std::size_t i = 0; i < rows; ++i) t[i / n_events] += host(i, 1) - host(i, 0);
  for (double& v : t) v *= -2.0;
  return t;
}

json::Object fraction_json(std::uint64_t k, std::uint64_t n) {
  const auto interval = inference::clopper_pearson(k, n, 0.6826894921370859);
  json::Object out;
  out.set("value", static_cast<double>(k) / static_cast<double>(n))
      .set("count", static_cast<std::int64_t>(k))
      .set("n_toys", static_cast<std::int64_t>(n))
      .set("standard_error", inference::binomial_standard_error(k, n))
      .set("clopper_pearson_68", std::vector<double>{interval.lower, interval.upper});
  return out;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

void run_test(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  InferenceContext context =
      load_inference(world, campaign, "test.estimators", "infer.model", options.allow_extrapolation);
  std::vector<double> h0;
  std::vector<double> h1;
  const auto n_events = static_cast<std::size_t>(config.get<std::int64_t>("test.n_events"));
  const auto n_toys = static_cast<std::uint64_t>(config.get<std::int64_t>("test.n_toys"));
  const auto toys_per_item =
      std::min(n_toys, static_cast<std::uint64_t>(config.get<std::int64_t>("test.toys_per_item")));
  std::optional<Matrix> observed;
  world.agree([&] {
    h0 = point_from_config(campaign, context, "test.h0");
    h1 = point_from_config(campaign, context, "test.h1");
    if (h0 == h1) config.fail("test.h1", "is the same point as test.h0");
    context.check_exact("test.estimators", {h0, h1}, h0);
    const std::string path = campaign.output_path(config.get<std::string>("test.observed"));
    if (access(path.c_str(), R_OK) == 0) {
      observed = read_observed(campaign, context.info(), "test.observed");
      if (observed->extent(0) != n_events)
        config.fail("test.n_events", "is " + std::to_string(n_events) + ", but the observed data '" + path +
                                         "' has " + std::to_string(observed->extent(0)) +
                                         " events: toys must have as many events as the data");
    }
  });
  // The toys' journals do not depend on the observed data; the results do.
  const std::string toy_identity = stage_identity(campaign, context, {"test"});
  const std::string identity = stage_identity(campaign, context, {"test"}, observed ? &*observed : nullptr);
  if (stage_complete(world, campaign, "test", identity, options.force)) {
    log::info("test: complete for this config: nothing to do (--force redoes it)");
    return;
  }
  if (!observed) log::info("test: no observed data: toy distributions and expected p-values only");

  auto estimators = context.make_estimators(h0);
  const std::size_t n_estimators = estimators.size();
  const std::size_t p = h0.size();
  Matrix hypotheses("nsbi::test::hypotheses", 2, p);
  {
    auto host = Kokkos::create_mirror_view(hypotheses);
    for (std::size_t j = 0; j < p; ++j) {
      host(0, j) = h0[j];
      host(1, j) = h1[j];
    }
    Kokkos::deep_copy(hypotheses, host);
  }
  const std::uint64_t blocks = (n_toys + toys_per_item - 1) / toys_per_item;
  log::info("test: ", n_toys, " toys of ", n_events, " events under each hypothesis on ", world.size(),
            " rank(s)");
  Matrix x;
  const std::vector<double> merged = run_toy_items(
      world, campaign, "test", toy_identity, 2 * blocks, toys_per_item * n_estimators, toys_per_item,
      options.force, [&](std::uint64_t item, double* out) {
        const bool alternative = item >= blocks;
        const std::uint64_t first_toy = (item % blocks) * toys_per_item;
        const std::size_t n = std::min(toys_per_item, n_toys - first_toy);
        if (x.extent(0) != n * n_events)
          x = Matrix(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::toys"), n * n_events,
                     context.info().n_observables());
        inference::simulate_toys(*context.simulator, alternative ? h1.data() : h0.data(), campaign.seed,
                                 alternative ? inference::ToyStage::test_h1 : inference::ToyStage::test_h0, 0,
                                 first_toy, n_events, x);
        for (std::size_t e = 0; e < n_estimators; ++e) {
          const std::vector<double> t = test_statistic(*estimators[e], x, hypotheses, n_events);
          double* slot = out + e * toys_per_item;
          std::fill(slot, slot + toys_per_item, std::nan(""));
          std::copy(t.begin(), t.end(), slot);
        }
      });

  json::Object per_estimator;
  std::vector<std::vector<double>> t_h0(n_estimators);
  std::vector<std::vector<double>> t_h1(n_estimators);
  std::vector<double> t_obs(n_estimators, std::nan(""));
  for (std::size_t e = 0; e < n_estimators; ++e) {
    for (std::uint64_t item = 0; item < 2 * blocks; ++item) {
      const std::size_t n = std::min(toys_per_item, n_toys - (item % blocks) * toys_per_item);
      const double* values = merged.data() + (item * n_estimators + e) * toys_per_item;
      auto& target = item >= blocks ? t_h1[e] : t_h0[e];
      target.insert(target.end(), values, values + n);
    }
    const double median_h1 = median(t_h1[e]);
    std::uint64_t below_median = 0;
    for (const double v : t_h0[e]) below_median += v <= median_h1 ? 1 : 0;
    json::Object summary;
    summary.set("median_t_under_h1", median_h1)
        .set("expected_p_value_h0_under_h1", fraction_json(below_median, n_toys));
    if (observed) {
      world.agree([&] { t_obs[e] = test_statistic(*estimators[e], *observed, hypotheses, n_events)[0]; });
      std::uint64_t h0_below = 0;
      std::uint64_t h1_above = 0;
      for (const double v : t_h0[e]) h0_below += v <= t_obs[e] ? 1 : 0;
      for (const double v : t_h1[e]) h1_above += v >= t_obs[e] ? 1 : 0;
      const double p_value = static_cast<double>(h0_below) / static_cast<double>(n_toys);
      summary.set("t_observed", t_obs[e])
          .set("p_value_h0", fraction_json(h0_below, n_toys))
          .set("significance_h0", h0_below > 0 ? -inference::normal_quantile(p_value) : std::nan(""))
          .set("p_value_h1", fraction_json(h1_above, n_toys));
      if (h0_below == 0)
        summary.set("note", "no H0 toy reached t_observed: the p-value is below " +
                                std::to_string(1.0 / n_toys) + "; raise test.n_toys");
    }
    per_estimator.set(context.estimator_names[e], summary);
  }
  write_results(world, campaign, "test", identity, [&](h5::Group& group) {
    inference::write_array(group, "h0", {p}, h0);
    inference::write_array(group, "h1", {p}, h1);
    group.write_attribute("n_events", static_cast<std::int64_t>(n_events));
    group.write_attribute("estimators", context.estimator_names);
    for (std::size_t e = 0; e < n_estimators; ++e) {
      h5::Group g = group.create_group(context.estimator_names[e]);
      inference::write_array(g, "t_h0", {t_h0[e].size()}, t_h0[e]);
      inference::write_array(g, "t_h1", {t_h1[e].size()}, t_h1[e]);
      if (observed) g.write_attribute("t_observed", t_obs[e]);
    }
  });
  json::Object body;
  json::Object hypotheses_json;
  json::Object h0_json;
  json::Object h1_json;
  for (std::size_t j = 0; j < p; ++j) {
    h0_json.set(context.info().parameters[j].name, h0[j]);
    h1_json.set(context.info().parameters[j].name, h1[j]);
  }
  body.set("h0", h0_json)
      .set("h1", h1_json)
      .set("n_events", static_cast<std::int64_t>(n_events))
      .set("n_toys_per_hypothesis", static_cast<std::int64_t>(n_toys))
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "test", identity, body);
  remove_toy_journals(world, campaign, "test");
}

}  // namespace nsbi::jobs
