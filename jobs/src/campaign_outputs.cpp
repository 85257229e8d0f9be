#include "nsbi/jobs/campaign_outputs.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

// One file or directory of the campaign: its config key (empty for the fixed names) and what it is.
struct CampaignPath {
  std::string key;
  std::string what;
  fs::path path;  // absolute, normal form
};

// `file` as the stages open it (relative to campaign.dir), made absolute and normal: `.` and `..` removed,
// symbolic links resolved as far as the path exists.
fs::path resolve(const fs::path& dir, const std::string& file) {
  fs::path path = fs::path(file).is_relative() ? dir / file : fs::path(file);
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  if (!error) path = absolute;
  const fs::path canonical = fs::weakly_canonical(path, error);
  if (!error) path = canonical;
  path = path.lexically_normal();
  // "a/b/" and "a/b" are the same place.
  if (!path.has_filename() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();
  return path;
}

// Whether `inner` is `outer` or lies inside it.
bool within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

// How two paths of the campaign overlap (as files only: one inside the other does not count when
// `files_only`): empty when they do not.
std::string overlap(const CampaignPath& a, const CampaignPath& b, bool files_only = false) {
  if (a.path == b.path) return "the same file as";
  if (!files_only && within(a.path, b.path)) return "inside";
  if (!files_only && within(b.path, a.path)) return "a directory holding";
  if (a.path.string() == b.path.string() + ".partial") return "the .partial file of";
  if (b.path.string() == a.path.string() + ".partial") return "whose .partial file is";
  return "";
}

// "<key> (<what>)", and its path unless `same` (then the message has given it already).
std::string name(const CampaignPath& p, bool same) {
  return (p.key.empty() ? p.what : p.key + " (" + p.what + ")") +
         (same ? std::string() : " ('" + p.path.string() + "')");
}

}  // namespace

void check_campaign_paths(const config::Config& config) {
  const fs::path dir = resolve(fs::path("."), config.get<std::string>("campaign.dir"));
  const auto at = [&](const std::string& key, const std::string& what) {
    return CampaignPath{key, what, resolve(dir, config.get<std::string>(key))};
  };
  const auto fixed = [&](const std::string& file, const std::string& what) {
    return CampaignPath{"", what, resolve(dir, file)};
  };

  // The outputs, the fixed names first: a clash is reported at the configurable key.
  std::vector<CampaignPath> outputs = {
      fixed("results.h5", "results.h5, the results of infer, test, calibrate and coverage"),
      fixed("checkpoints", "the directory checkpoints/ of train"),
      fixed("work", "the directory work/ of the toy stages' journals"),
      fixed("slurm", "the directory slurm/ of nsbi submit"),
  };
  for (const char* stage : {"simulate", "train", "infer", "test", "calibrate", "coverage"})
    outputs.push_back(fixed(std::string(stage) + ".json", "the summary of " + std::string(stage)));
  outputs.push_back(at("simulate.output", "the training dataset nsbi simulate writes"));
  const bool reference = !config.children("simulate.reference.theta").empty();
  if (reference)
    outputs.push_back(at("simulate.reference.output", "the reference dataset nsbi simulate writes"));
  if (!config.children("simulate.observed.theta").empty())
    outputs.push_back(at("simulate.observed.output", "the observed data nsbi simulate writes"));
  outputs.push_back(at("train.output", "the model nsbi train writes"));

  for (std::size_t j = 0; j < outputs.size(); ++j)
    for (std::size_t i = 0; i < j; ++i) {
      const std::string how = overlap(outputs[j], outputs[i]);
      if (how.empty()) continue;
      config.fail(outputs[j].key, "is '" + outputs[j].path.string() + "', " + how + " " +
                                      name(outputs[i], outputs[i].path == outputs[j].path) +
                                      ": every output of a campaign needs a path of its own (relative "
                                      "paths are inside campaign.dir)");
    }

  // The config file itself (the jobs of nsbi submit read <campaign.dir>/slurm/config.yaml: inside is fine).
  const CampaignPath campaign_file{"", "the campaign's config file", resolve(fs::path("."), config.file())};
  for (const CampaignPath& output : outputs) {
    const std::string how = overlap(output, campaign_file, /*files_only=*/true);
    if (how.empty()) continue;
    config.fail(output.key.empty() ? "campaign.dir" : output.key,
                (output.key.empty() ? "puts " + output.what + " at '" : "is '") + output.path.string() +
                    "', " + how + " " + name(campaign_file, campaign_file.path == output.path) +
                    ": no output may overwrite it");
  }

  // The inputs, each with the only output it may be: the one of the stage that makes it.
  struct Input {
    std::string key;
    std::string producer;
  };
  std::vector<Input> inputs = {{"train.dataset", "simulate.output"}};
  if (config.get<std::string>("train.reference") == "theta")
    inputs.push_back({"train.reference_dataset", "simulate.reference.output"});
  inputs.push_back({"infer.model", "train.output"});
  inputs.push_back({"infer.observed", "simulate.observed.output"});
  inputs.push_back({"test.observed", "simulate.observed.output"});
  for (const Input& input : inputs) {
    const CampaignPath read = at(input.key, "");
    for (const CampaignPath& output : outputs) {
      if (output.key == input.producer && read.path == output.path) continue;
      const std::string how = overlap(read, output);
      if (how.empty()) continue;
      config.fail(input.key, "is '" + read.path.string() + "', " + how + " " +
                                 name(output, output.path == read.path) + ": " + input.key +
                                 " is read, and may be no output of the campaign but " + input.producer);
    }
  }
}

}  // namespace nsbi::jobs
