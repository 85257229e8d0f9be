#include "nsbi/jobs/inference_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "nsbi/inference/observed.hpp"
#include "nsbi/sims/registry.hpp"

namespace nsbi::jobs {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// The range a grid along `p` may cover without --allow-extrapolation, and the simulator's domain.
struct Bounds {
  double low;
  double high;
  bool from_model;
};

Bounds bounds_of(const InferenceContext& context, std::size_t p) {
  const sims::Parameter& parameter = context.info().parameters[p];
  if (context.model) return {context.model->parameter_min(p), context.model->parameter_max(p), true};
  return {parameter.min, parameter.max, false};
}

void check_value(const Campaign& campaign, const InferenceContext& context, std::size_t p, double value,
                 const std::string& key) {
  const sims::Parameter& parameter = context.info().parameters[p];
  if (parameter.is_discrete()) {
    if (std::find(parameter.hypotheses.begin(), parameter.hypotheses.end(), value) ==
        parameter.hypotheses.end())
      campaign.config.fail(key,
                           parameter.name + " = " + format_number(value) + " is not one of the hypotheses");
    return;
  }
  if (value < parameter.min || value > parameter.max)
    campaign.config.fail(key, parameter.name + " = " + format_number(value) + " is outside the domain [" +
                                  format_number(parameter.min) + ", " + format_number(parameter.max) +
                                  "] of " + context.info().name);
  const Bounds bounds = bounds_of(context, p);
  if (bounds.from_model && !context.allow_extrapolation && (value < bounds.low || value > bounds.high))
    campaign.config.fail(
        key, parameter.name + " = " + format_number(value) + " is outside the model's training range [" +
                 format_number(bounds.low) + ", " + format_number(bounds.high) + "] ('" + context.model_path +
                 "'): the network would extrapolate (--allow-extrapolation to do it anyway)");
}

}  // namespace

std::vector<std::string> InferenceContext::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& p : info().parameters) names.push_back(p.name);
  return names;
}

std::vector<std::unique_ptr<inference::RatioEstimator>> InferenceContext::make_estimators(
    const std::vector<double>& exact_reference) const {
  std::vector<std::unique_ptr<inference::RatioEstimator>> out;
  for (const auto& name : estimator_names) {
    if (name == "learned")
      out.push_back(model->estimator(precision));
    else
      out.push_back(std::make_unique<inference::ExactEstimator>(*simulator, exact_reference));
  }
  return out;
}

void InferenceContext::check_exact(const std::string& key, const std::vector<std::vector<double>>& points,
                                   const std::vector<double>& reference) const {
  if (!contains(estimator_names, "exact")) return;
  for (const auto& point : points) {
    const std::string why = simulator->exact_ratio_unavailable(point.data(), reference.data());
    if (!why.empty()) throw ConfigError(key + ": the `exact` estimator cannot be used here: " + why);
  }
}

InferenceContext load_inference(const Communicator& world, const Campaign& campaign, const std::string& stage,
                                bool allow_extrapolation) {
  const config::Config& config = campaign.config;
  const std::string estimators_key = stage + ".estimators";
  const std::string model_key = "infer.model";
  InferenceContext context;
  context.simulator = make_simulator(config);
  context.estimator_names = config.get<std::vector<std::string>>(estimators_key);
  context.allow_extrapolation = allow_extrapolation;
  if (context.estimator_names.empty()) config.fail(estimators_key, "name at least one estimator");
  for (std::size_t i = 0; i < context.estimator_names.size(); ++i)
    if (std::count(context.estimator_names.begin(), context.estimator_names.end(),
                   context.estimator_names[i]) > 1)
      config.fail(estimators_key, "'" + context.estimator_names[i] + "' is listed twice");
  // infer alone offers bf16: in the toy stages it moved toys' q by more than they may move (issue 16's
  // 0.05 at the 99th percentile; benchmarks/results/toys_bf16.json), so they evaluate in f32.
  if (stage == "infer") {
    context.precision = *kernels::parse_precision(config.get<std::string>("infer.precision"));  // one_of
    const std::string unsupported = kernels::unsupported_reason(context.precision);
    if (!unsupported.empty()) config.fail("infer.precision", unsupported);
  }
  if (!contains(context.estimator_names, "learned")) return context;

  context.model_path = campaign.output_path(config.get<std::string>(model_key));
  world.agree([&] {
    context.model = inference::TrainedModel::read(context.model_path);
    const inference::TrainedModel& model = *context.model;
    const sims::SimulatorInfo& info = context.info();
    if (model.simulator() != info.name)
      throw InputError("model '" + context.model_path + "' was trained for simulator '" + model.simulator() +
                       "', but this campaign's simulator is '" + info.name + "' (" +
                       config.location(model_key) + ": " + model_key + ")");
    if (model.parameter_names() != context.parameter_names() ||
        model.observable_names() != info.observables || model.observable_shape() != info.observable_shape)
      throw InputError("model '" + context.model_path +
                       "' has other parameter or observable names (or shape) than " + info.name +
                       " declares: it was trained on data of another simulator");
    if (model.loss() == "sally")
      throw InputError(
          "model '" + context.model_path +
          "' was trained with loss sally: it learned the score at θ0 (the gradient of its output), "
          "not log r(x|θ, θ0), so it cannot be a `learned` estimator (" +
          config.location(model_key) + ": " + model_key + ")");
  });
  return context;
}

inference::Grid grid_from_config(const Campaign& campaign, const InferenceContext& context,
                                 const std::string& section) {
  const config::Config& config = campaign.config;
  std::vector<inference::GridAxis> axes;
  for (std::size_t p = 0; p < context.info().n_parameters(); ++p) {
    const sims::Parameter& parameter = context.info().parameters[p];
    const std::string prefix = section + ".grid." + parameter.name;
    inference::GridAxis axis;
    axis.name = parameter.name;
    axis.discrete = parameter.is_discrete();
    if (config.has(prefix + ".values")) {
      axis.values = config.get<std::vector<double>>(prefix + ".values");
      if (axis.values.empty()) config.fail(prefix + ".values", "give at least one value");
      for (std::size_t i = 1; i < axis.values.size(); ++i)
        if (!(axis.values[i] > axis.values[i - 1]))
          config.fail(prefix + ".values", "the values must be increasing");
      if (!axis.discrete && axis.values.size() >= 3) {
        // Refinement and interpolation assume even spacing.
        const double h =
            (axis.values.back() - axis.values.front()) / static_cast<double>(axis.values.size() - 1);
        for (std::size_t i = 0; i < axis.values.size(); ++i)
          if (std::abs(axis.values[i] - (axis.values.front() + h * static_cast<double>(i))) >
              1e-9 * (1 + std::abs(h)))
            config.fail(prefix + ".values", "the values must be evenly spaced (or use min, max and points)");
      }
      for (std::size_t i = 0; i < axis.values.size(); ++i)
        check_value(campaign, context, p, axis.values[i], prefix + ".values");
    } else if (axis.discrete) {
      axis.values = parameter.hypotheses;
    } else {
      const Bounds bounds = bounds_of(context, p);
      const double low = config.has(prefix + ".min") ? config.get<double>(prefix + ".min") : bounds.low;
      const double high = config.has(prefix + ".max") ? config.get<double>(prefix + ".max") : bounds.high;
      const auto points = static_cast<std::size_t>(config.get<std::int64_t>(prefix + ".points"));
      check_value(campaign, context, p, low, config.has(prefix + ".min") ? prefix + ".min" : prefix);
      check_value(campaign, context, p, high, config.has(prefix + ".max") ? prefix + ".max" : prefix);
      if (points > 1 && !(high > low))
        config.fail(prefix + ".max", "must be larger than min for several points");
      axis.values = inference::linspace(low, high, points);
    }
    axes.push_back(std::move(axis));
  }
  return inference::Grid(std::move(axes));
}

inference::Prior prior_from_config(const Campaign& campaign, const InferenceContext& context) {
  const sims::SimulatorInfo& info = context.info();
  const auto training_proposal = [&] {
    if (!context.model || context.model->proposal().empty()) return sims::Proposal::default_for(info);
    try {
      return sims::Proposal::from_yaml(context.model->proposal(),
                                       "model '" + context.model_path + "', attribute proposal", info);
    } catch (const ConfigError& e) {
      throw InputError(e.what());
    }
  };
  return inference::Prior::from_config(campaign.config, "prior", info,
                                       inference::Prior(training_proposal(), info));
}

std::vector<double> point_from_config(const Campaign& campaign, const InferenceContext& context,
                                      const std::string& section) {
  std::vector<double> point;
  for (std::size_t p = 0; p < context.info().n_parameters(); ++p) {
    const std::string key = section + "." + context.info().parameters[p].name;
    if (!campaign.config.has(key))
      campaign.config.fail(key, "is required: give every parameter of the point");
    point.push_back(campaign.config.get<double>(key));
    check_value(campaign, context, p, point.back(), key);
  }
  return point;
}

bool infer_uses_mcmc(const config::Config& config) {
  return config.has("infer.posterior") && config.get<std::string>("infer.posterior") == "mcmc";
}

inference::McmcSettings mcmc_settings(const config::Config& config) {
  inference::McmcSettings settings;
  const auto read = [&](const std::string& key, auto& value) {
    if (config.has(key))
      value = static_cast<std::remove_reference_t<decltype(value)>>(config.get<std::int64_t>(key));
  };
  read("infer.mcmc.chains", settings.chains);
  read("infer.mcmc.warmup", settings.warmup);
  read("infer.mcmc.samples", settings.samples);
  read("infer.mcmc.thin", settings.thin);
  settings.seed = static_cast<std::uint64_t>(config.get<std::int64_t>("campaign.seed"));
  read("infer.mcmc.seed", settings.seed);
  return settings;
}

std::string readable_observed(const Campaign& campaign, const std::string& key) {
  const std::string path = campaign.output_path(campaign.config.get<std::string>(key));
  if (access(path.c_str(), R_OK) != 0)
    throw InputError(
        "observed data '" + path + "' cannot be read: " + std::strerror(errno) + " (" +
        campaign.config.location(key) + ": " + key + ")" +
        (campaign.config.get<std::string>(key) == campaign.config.get<std::string>("simulate.observed.output")
             ? "; `nsbi simulate` writes it when simulate.observed.theta is set"
             : ""));
  return path;
}

Matrix read_observed(const Campaign& campaign, const sims::SimulatorInfo& info, const std::string& key) {
  const std::string path = readable_observed(campaign, key);
  const std::string dataset_key = key + "_dataset";
  const std::string dataset =
      campaign.config.has(dataset_key) ? campaign.config.get<std::string>(dataset_key) : std::string();
  const std::string origin = " (" + campaign.config.location(key) + ": " + key + ")";
  return inference::read_observed(path, info, dataset, origin);
}

}  // namespace nsbi::jobs
