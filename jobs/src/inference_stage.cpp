#include "nsbi/jobs/inference_stage.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nsbi/core/log.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/distributed/work_queue.hpp"
#include "nsbi/inference/host_arrays.hpp"
#include "nsbi/inference/results_file.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {

Evaluation evaluation_of(const InferenceContext& context,
                         const std::vector<std::unique_ptr<inference::RatioEstimator>>& estimators) {
  Evaluation evaluation;
  evaluation.precision = kernels::to_string(context.precision);
  for (const auto& estimator : estimators)
    if (!estimator->gemm_implementations().empty())
      evaluation.gemm_implementation = estimator->gemm_implementations();
  return evaluation;
}

void write_results(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const Evaluation& evaluation,
                   const std::function<void(h5::Group&)>& fill) {
  inference::ResultsStamp stamp;
  stamp.identity = identity;
  stamp.config = campaign.config.resolved_yaml();
  stamp.seed = campaign.seed;
  stamp.nsbi_version = campaign.provenance.nsbi_version;
  stamp.created = world.broadcast(campaign.provenance.created_utc);
  stamp.command_line = campaign.provenance.command_line;
  stamp.precision = evaluation.precision;
  stamp.gemm_implementation = evaluation.gemm_implementation;
  world.agree([&] { inference::write_results_group(campaign.output_path("results.h5"), stage, stamp, fill); },
              /*root_only=*/true);
}

namespace {

std::string digest(const std::string& text) {
  // FNV-1a: a short fingerprint of an identity (for the summaries) or of the observed events.
  std::uint64_t hash = 1469598103934665603ULL;
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

}  // namespace

namespace {

// What stage_identity holds of every stage's config, without the observed events.
YAML::Node base_identity(const Campaign& campaign, const InferenceContext& context,
                         const std::vector<std::string>& sections) {
  YAML::Node identity;
  identity["seed"] = campaign.seed;
  identity["simulator"] = campaign.config.get<YAML::Node>("simulator");
  if (context.model) {
    // The model file however it is addressed (`run/model.h5`, `./run/model.h5`, an absolute path).
    std::error_code error;
    const std::filesystem::path path = std::filesystem::weakly_canonical(context.model_path, error);
    identity["model"]["path"] = error ? context.model_path : path.string();
    identity["model"]["created"] = context.model->created();
    identity["model"]["seed"] = context.model->seed();
  }
  for (const auto& section : sections) identity[section] = campaign.config.get<YAML::Node>(section);
  return identity;
}

// The events themselves, their count and digest: new data under the same file name is another identity.
void set_observed(YAML::Node node, const Matrix& observed) {
  const std::vector<double> host = inference::host_values(observed);
  const std::string values(reinterpret_cast<const char*>(host.data()), host.size() * sizeof(double));
  node["events"] = static_cast<std::uint64_t>(observed.extent(0));
  node["digest"] = digest(values);
}

std::string emitted(const YAML::Node& identity) {
  YAML::Emitter out;
  out << YAML::Flow << identity;
  return out.c_str();
}

}  // namespace

std::string stage_identity(const Campaign& campaign, const InferenceContext& context,
                           const std::vector<std::string>& sections, const Matrix* observed) {
  YAML::Node identity = base_identity(campaign, context, sections);
  if (observed != nullptr) set_observed(identity["observed"], *observed);
  return emitted(identity);
}

std::string stage_identity(const Campaign& campaign, const InferenceContext& context,
                           const std::vector<std::string>& sections,
                           const std::vector<ObservedDataset>& datasets) {
  YAML::Node identity = base_identity(campaign, context, sections);
  for (const ObservedDataset& d : datasets) {
    YAML::Node entry;
    entry["name"] = d.name;
    set_observed(entry, d.x);
    identity["observed"]["datasets"].push_back(entry);
  }
  return emitted(identity);
}

void write_summary(const Communicator& world, const Campaign& campaign, const std::string& stage,
                   const std::string& identity, const Evaluation& evaluation, const json::Object& body) {
  const std::string created = world.broadcast(campaign.provenance.created_utc);
  world.agree(
      [&] {
        json::Object summary;
        summary.set("stage", stage)
            .set("complete", true)
            .set("identity_digest", digest(identity))
            .set("simulator", campaign.config.get<std::string>("simulator.name"))
            .set("seed", static_cast<std::int64_t>(campaign.seed))
            .set("mpi_ranks", static_cast<std::int64_t>(world.size()))
            .set("results", campaign.output_path("results.h5"))
            .set("precision", evaluation.precision)
            .set("gemm_implementation", evaluation.gemm_implementation)
            .set("nsbi_version", campaign.provenance.nsbi_version)
            .set("created", created);
        std::string text = summary.dump();
        const std::string rest = body.dump();
        // Splice the body's members after the common ones (both are JSON objects).
        if (rest != "{}") text = text.substr(0, text.size() - 2) + "," + rest.substr(1);
        json::write_file_atomically(campaign.output_path(stage + ".json"), text + "\n");
      },
      /*root_only=*/true);
}

namespace {

// "key: old -> new" for the leaves where two identities (YAML maps) differ, in the new one's order.
void identity_differences(const YAML::Node& before, const YAML::Node& now, const std::string& path,
                          std::vector<std::string>& out) {
  const auto flow = [](const YAML::Node& node) -> std::string {
    if (!node.IsDefined()) return "(absent)";
    YAML::Emitter text;
    text << YAML::Flow << node;
    return text.c_str();
  };
  // A key on one side only is an invalid node on the other: Type() would throw, IsDefined() is false.
  if (before.IsDefined() && now.IsDefined() && before.IsMap() && now.IsMap()) {
    for (const auto& entry : now) {
      const std::string key = entry.first.as<std::string>();
      identity_differences(before[key], entry.second, path.empty() ? key : path + "." + key, out);
    }
    for (const auto& entry : before) {
      const std::string key = entry.first.as<std::string>();
      if (!now[key].IsDefined()) out.push_back((path.empty() ? key : path + "." + key) + " was set");
    }
    return;
  }
  const std::string old_text = flow(before);
  const std::string new_text = flow(now);
  if (old_text != new_text) out.push_back(path + ": " + old_text + " -> " + new_text);
}

// What differs between the identity an output was made with and this config's, for the refusal message.
std::string describe_difference(const std::string& recorded, const std::string& identity) {
  if (recorded.empty()) return " (it records no config identity)";
  std::vector<std::string> differences;
  try {
    identity_differences(YAML::Load(recorded), YAML::Load(identity), "", differences);
  } catch (const YAML::Exception&) {
    return "";
  }
  if (differences.empty()) return "";
  std::string text;
  const std::size_t shown = std::min<std::size_t>(differences.size(), 4);
  for (std::size_t i = 0; i < shown; ++i) text += (i ? "; " : "") + differences[i];
  if (differences.size() > shown) text += "; and " + std::to_string(differences.size() - shown) + " more";
  return " (" + text + ")";
}

// The identity digest a summary records: nullopt when there is no summary, "" when it records none.
std::optional<std::string> summary_digest(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  const std::string field = "\"identity_digest\": \"";
  const std::size_t at = content.find(field);
  if (content.find("\"complete\": true") == std::string::npos || at == std::string::npos) return "";
  const std::size_t start = at + field.size();
  return content.substr(start, content.find('"', start) - start);
}

}  // namespace

bool stage_complete(const Communicator& world, const Campaign& campaign, const std::string& stage,
                    const std::string& identity, bool force) {
  if (force) return false;
  bool complete = false;
  world.agree(
      [&] {
        const std::string results = campaign.output_path("results.h5");
        const std::string summary = campaign.output_path(stage + ".json");
        const std::string replace =
            "; --force replaces /" + stage + " and " + stage + ".json (the other stages' results are kept)";
        // The group /<stage> of results.h5 and the identity it records ("" for none).
        std::optional<std::string> recorded;
        std::error_code error;  // a results.h5 that cannot be looked at is not there: writing it will say why
        if (std::filesystem::exists(results, error)) {
          try {
            const h5::File file = h5::File::open(results, MPI_COMM_SELF, h5::Access::read);
            const h5::Group root = file.root();
            if (root.exists(stage)) {
              const h5::Group group = root.open_group(stage);
              recorded = group.attribute_exists("identity") ? group.read_attribute<std::string>("identity")
                                                            : std::string();
            }
          } catch (const h5::Error& e) {
            throw InputError(stage + ": cannot read the results file '" + results + "' (" + e.what() +
                             "); it holds the results of every inference stage: repair it, or move it "
                             "away to start them over");
          }
        }
        if (recorded && *recorded != identity)
          throw ConfigError(stage + ": '" + results + "' holds /" + stage + " made from another config" +
                            describe_difference(*recorded, identity) + replace);
        const std::optional<std::string> digested = summary_digest(summary);
        if (digested && *digested != digest(identity))
          throw ConfigError(stage + ": '" + summary + "' holds the results of " + stage +
                            " made from another config (identity digest " +
                            (digested->empty() ? "none" : *digested) + ", this config's " + digest(identity) +
                            ")" + replace);
        complete = recorded && digested;
      },
      /*root_only=*/true);
  return world.any(complete);
}

bool skip_if_complete(const Communicator& world, const Campaign& campaign, const std::string& stage,
                      const std::string& identity, bool force) {
  if (!stage_complete(world, campaign, stage, identity, force)) return false;
  log::info(stage, ": complete for this config: nothing to do (--force redoes it)");
  return true;
}

std::vector<double> run_toy_items(const Communicator& world, const Campaign& campaign,
                                  const std::string& stage, const std::string& identity,
                                  std::uint64_t n_items, std::size_t item_size, std::uint64_t toys_per_item,
                                  const std::string& unit, bool force,
                                  const std::function<void(std::uint64_t item, double* out)>& work,
                                  const distributed::WorkSlice& slice) {
  const std::string directory = campaign.output_path("work/" + stage);
  if (force && slice.whole()) distributed::remove_work_journals(world, directory);
  world.agree([&] { prepare_directory(campaign.config, "campaign.dir", directory); }, /*root_only=*/true);
  std::optional<Progress> progress;
  distributed::WorkQueueOptions options;
  options.directory = directory;
  options.identity = identity;
  options.n_items = n_items;
  options.item_size = item_size;
  options.slice = slice;
  options.stop_requested = [] { return stop_requested(); };
  const std::uint64_t slice_items = slice.size(n_items);
  const std::string what = slice.whole() ? stage + " " + unit
                                         : stage + " " + unit + " (slice " + std::to_string(slice.index) +
                                               "/" + std::to_string(slice.count) + ")";
  options.progress = [&](std::uint64_t done, std::uint64_t done_at_start) {
    if (!progress) {
      progress.emplace(what, slice_items * toys_per_item, unit, world.is_root(),
                       done_at_start * toys_per_item);
      if (done_at_start > 0)
        log::info(stage, ": resuming: ", done_at_start, " of ", slice_items, " work items already done");
    }
    progress->update(std::min(done * toys_per_item, slice_items * toys_per_item));
  };
  distributed::WorkQueueResult result;
  try {
    result = distributed::run_work_queue(world, options, work);
  } catch (const CollectiveError& e) {  // every rank alike; a stop, wherever a rank saw it, reads as one
    if (e.code() != ExitCode::interrupted) throw;
    throw CollectiveError(ExitCode::interrupted,
                          stage + ": stopped by a signal; the finished work items are kept in '" + directory +
                              "': run the same command to resume");
  }
  if (progress) progress->finish();
  if (!slice.whole())
    log::info(stage, ": slice ", slice.index, "/", slice.count, ": its ", slice_items, " of ", n_items,
              " work items are done and journaled in '", directory,
              "'; the unsliced command merges every slice's into the results");
  return std::move(result.results);
}

void remove_toy_journals(const Communicator& world, const Campaign& campaign, const std::string& stage) {
  distributed::remove_work_journals(world, campaign.output_path("work/" + stage));
}

}  // namespace nsbi::jobs
