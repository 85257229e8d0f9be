// nsbi test: simple hypothesis H0 against H1 (docs/statistics.md): t = −2 Σ_i log r(x_i|H1, H0), small t
// favouring H1, with its distribution from toys under both hypotheses (inference/hypothesis.hpp).

#include <unistd.h>

#include <cmath>
#include <optional>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"
#include "nsbi/inference/host_arrays.hpp"
#include "nsbi/inference/hypothesis.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/inference/test_statistics.hpp"
#include "nsbi/inference/toy_items.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

// The hypotheses and the observed data (when there are) from the config, checked (collective).
struct TestInputs {
  std::vector<double> h0;
  std::vector<double> h1;
  std::optional<Matrix> observed;
};

TestInputs test_inputs(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                       std::size_t n_events) {
  const config::Config& config = campaign.config;
  TestInputs in;
  world.agree([&] {
    in.h0 = point_from_config(campaign, context, "test.h0");
    in.h1 = point_from_config(campaign, context, "test.h1");
    if (in.h0 == in.h1) config.fail("test.h1", "is the same point as test.h0");
    context.check_exact("test.estimators", {in.h0, in.h1}, in.h0);
    const std::string path = campaign.output_path(config.get<std::string>("test.observed"));
    if (access(path.c_str(), R_OK) == 0) {
      in.observed = read_observed(campaign, context.info(), "test.observed");
      if (in.observed->extent(0) != n_events)
        config.fail("test.n_events", "is " + std::to_string(n_events) + ", but the observed data '" + path +
                                         "' has " + std::to_string(in.observed->extent(0)) +
                                         " events: toys must have as many events as the data");
    }
  });
  return in;
}

json::Object point_json(const InferenceContext& context, const std::vector<double>& theta) {
  json::Object out;
  for (std::size_t j = 0; j < theta.size(); ++j) out.set(context.info().parameters[j].name, theta[j]);
  return out;
}

}  // namespace

void run_test(const Communicator& world, const Campaign& campaign, const StageOptions& options) {
  const config::Config& config = campaign.config;
  std::optional<profiling::Region> load("nsbi/test/load");
  const InferenceContext context = load_inference(world, campaign, "test", options.allow_extrapolation);
  const inference::ToyPlan plan(static_cast<std::uint64_t>(config.get<std::int64_t>("test.n_toys")),
                                static_cast<std::uint64_t>(config.get<std::int64_t>("test.toys_per_item")),
                                static_cast<std::size_t>(config.get<std::int64_t>("test.n_events")));
  const TestInputs in = test_inputs(world, campaign, context, plan.n_events);
  // The toys' journals do not depend on the observed data; the results do.
  const std::string toy_identity = stage_identity(campaign, context, {"test"});
  const std::string identity =
      stage_identity(campaign, context, {"test"}, in.observed ? &*in.observed : nullptr);
  if (skip_if_complete(world, campaign, "test", identity, options.force)) return;
  if (!in.observed) log::info("test: no observed data: toy distributions and expected p-values only");
  auto estimators = context.make_estimators(in.h0);
  const Matrix hypotheses = inference::matrix_of_rows({in.h0, in.h1});
  load.reset();

  std::optional<profiling::Region> toys("nsbi/test/toys");
  log::info("test: ", plan.n_toys, " toys of ", plan.n_events, " events under each hypothesis on ",
            world.size(), " rank(s)");
  inference::ToySetup setup{context.simulator.get(), campaign.seed, inference::ToyStage::test_h0, {}};
  Matrix x;
  const auto t = inference::simple_test_table(
      run_toy_items(world, campaign, "test", toy_identity, 2 * plan.blocks_per_point,
                    plan.toys_per_item * estimators.size(), plan.toys_per_item, "toys", options.force,
                    [&](std::uint64_t item, double* out) {
                      inference::simple_test_item(setup, estimators, hypotheses, plan, item, x, out);
                    }),
      estimators.size(), plan);
  toys.reset();

  const profiling::Region write("nsbi/test/write");
  json::Object per_estimator;
  std::vector<double> t_obs(estimators.size(), std::nan(""));
  for (std::size_t e = 0; e < estimators.size(); ++e) {
    std::optional<double> observed_t;
    if (in.observed) {
      world.agree([&] {
        t_obs[e] =
            inference::simple_test_statistic(*estimators[e], *in.observed, hypotheses, plan.n_events)[0];
      });
      observed_t = t_obs[e];
    }
    per_estimator.set(context.estimator_names[e],
                      inference::simple_test_summary(t[e][0], t[e][1], observed_t));
  }
  const Evaluation evaluation = evaluation_of(context, estimators);
  write_results(world, campaign, "test", identity, evaluation, [&](h5::Group& group) {
    inference::write_array(group, "h0", {in.h0.size()}, in.h0);
    inference::write_array(group, "h1", {in.h1.size()}, in.h1);
    group.write_attribute("n_events", static_cast<std::int64_t>(plan.n_events));
    group.write_attribute("estimators", context.estimator_names);
    for (std::size_t e = 0; e < estimators.size(); ++e) {
      h5::Group g = group.create_group(context.estimator_names[e]);
      inference::write_array(g, "t_h0", {t[e][0].size()}, t[e][0]);
      inference::write_array(g, "t_h1", {t[e][1].size()}, t[e][1]);
      if (in.observed) g.write_attribute("t_observed", t_obs[e]);
    }
  });
  json::Object body;
  body.set("h0", point_json(context, in.h0))
      .set("h1", point_json(context, in.h1))
      .set("n_events", static_cast<std::int64_t>(plan.n_events))
      .set("n_toys_per_hypothesis", static_cast<std::int64_t>(plan.n_toys))
      .set("results_by_estimator", per_estimator);
  write_summary(world, campaign, "test", identity, evaluation, body);
  remove_toy_journals(world, campaign, "test");
}

}  // namespace nsbi::jobs
