#include "nsbi/jobs/infer_datasets.hpp"

#include <algorithm>

#include "nsbi/inference/host_arrays.hpp"
#include "nsbi/inference/observed.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/jobs/inference_stage.hpp"
#include "nsbi/jobs/memory_bounds.hpp"

namespace nsbi::jobs {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
  return text;
}

// The datasets of infer.observed_dataset's list, each held by the file `held` lists.
std::vector<std::string> listed_datasets(const config::Config& config, const std::string& path,
                                         const std::vector<std::string>& held, const std::string& origin) {
  const std::string key = "infer.observed_dataset";
  const auto names = config.get<std::vector<std::string>>(key);
  if (names.empty()) config.fail(key, "lists no dataset: name at least one, or give `all`");
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
        names.begin() + static_cast<std::ptrdiff_t>(i))
      config.fail(key, "names the dataset '" + names[i] + "' twice");
    if (!contains(held, names[i]))
      throw InputError("observed data '" + path + "' has no dataset /observed/" + names[i] + " (it holds " +
                       joined(held) + ")" + origin);
  }
  return names;
}

}  // namespace

InferOutputs infer_outputs(const config::Config& config) {
  InferOutputs outputs;
  if (!config.has("infer.outputs")) {  // everything there is
    const bool grid = !infer_uses_mcmc(config);
    outputs.best_fit = outputs.intervals = outputs.grid = grid;
    return outputs;
  }
  const auto asked = config.get<std::vector<std::string>>("infer.outputs");
  outputs.posterior_samples = contains(asked, "posterior_samples");
  outputs.best_fit = contains(asked, "best_fit");
  outputs.intervals = contains(asked, "intervals");
  outputs.grid = contains(asked, "grid");
  return outputs;
}

InferObserved read_infer_datasets(const Campaign& campaign, const sims::SimulatorInfo& info) {
  const config::Config& config = campaign.config;
  const std::string key = "infer.observed_dataset";
  const std::string path = readable_observed(campaign, "infer.observed");
  const std::string origin = " (" + config.location(key) + ": " + key + ", of infer.observed)";
  const bool listed = config.has(key) && config.get<YAML::Node>(key).IsSequence();
  const std::string name = config.has(key) && !listed ? config.get<std::string>(key) : "";
  std::vector<std::string> held;
  if (listed || name == "all") held = inference::observed_dataset_names(path, origin);
  InferObserved observed;
  observed.per_dataset = listed || name == "all";
  if (!observed.per_dataset) {
    observed.datasets.push_back({name, read_observed(campaign, info, "infer.observed")});
    return observed;
  }
  for (const std::string& dataset : listed ? listed_datasets(config, path, held, origin) : held)
    observed.datasets.push_back({dataset, inference::read_observed(path, info, dataset, origin)});
  return observed;
}

std::vector<std::string> dataset_names(const std::vector<ObservedDataset>& datasets) {
  std::vector<std::string> names;
  for (const ObservedDataset& d : datasets) names.push_back(d.name);
  return names;
}

std::uint64_t total_events(const std::vector<ObservedDataset>& datasets) {
  std::uint64_t events = 0;
  for (const ObservedDataset& d : datasets) events += d.x.extent(0);
  return events;
}

void check_infer_memory(const Communicator& world, const Campaign& campaign, const InferenceContext& context,
                        const std::vector<ObservedDataset>& datasets) {
  // The observed events, now counted, against the memory of a rank (validation assumed the config's).
  std::uint64_t largest = 0;
  for (const ObservedDataset& d : datasets) largest = std::max<std::uint64_t>(largest, d.x.extent(0));
  const MemoryLimit memory = node_memory_limit(ranks_on_this_node(world.get()));
  world.agree([&] {
    check_memory(campaign.config,
                 estimate_stage_memory(campaign.config, context.info(), "infer", world.size(), largest,
                                       datasets.size()),
                 memory);
  });
}

std::string infer_identity(const Campaign& campaign, const InferenceContext& context,
                           const InferObserved& observed) {
  // The prior section, when given, decides the posterior (its default is the model, already there).
  const std::vector<std::string> sections = campaign.config.has("prior")
                                                ? std::vector<std::string>{"infer", "prior"}
                                                : std::vector<std::string>{"infer"};
  if (!observed.per_dataset) return stage_identity(campaign, context, sections, &observed.datasets[0].x);
  return stage_identity(campaign, context, sections, observed.datasets);
}

void write_dataset_group(h5::Group& infer, const ObservedDataset& d, bool per_dataset,
                         const std::function<void(h5::Group&)>& fill) {
  const auto write = [&](h5::Group& group) {
    inference::write_array(group, "observed", {d.x.extent(0), d.x.extent(1)}, inference::host_values(d.x));
    fill(group);
  };
  if (!per_dataset) return write(infer);
  h5::Group group = infer.create_group("datasets/" + d.name);
  write(group);
}

json::Object infer_summary_body(const Campaign& campaign, const InferenceContext& context,
                                const InferObserved& observed,
                                const std::function<void(json::Object&, std::size_t)>& fill) {
  json::Object body;
  body.set("observed", campaign.output_path(campaign.config.get<std::string>("infer.observed")))
      .set("estimators", context.estimator_names);
  if (!observed.per_dataset) {
    fill(body, 0);
    return body;
  }
  json::Object per_dataset;
  for (std::size_t d = 0; d < observed.datasets.size(); ++d) {
    json::Object entry;
    fill(entry, d);
    per_dataset.set(observed.datasets[d].name, entry);
  }
  body.set("datasets", dataset_names(observed.datasets)).set("results_by_dataset", per_dataset);
  return body;
}

json::Object by_estimator(const InferenceContext& context, const std::vector<json::Object>& summaries) {
  json::Object per_estimator;
  for (std::size_t e = 0; e < summaries.size(); ++e)
    per_estimator.set(context.estimator_names[e], summaries[e]);
  return per_estimator;
}

}  // namespace nsbi::jobs
