// `nsbi c2st A B`: the classifier two-sample test of two sample sets (docs/statistics.md, "Comparing two
// sample sets"), read from a results.h5 or a CSV file; rank 0 computes it alone (it is small).
#include "nsbi/jobs/c2st.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/inference/c2st.hpp"
#include "nsbi/inference/observed.hpp"

namespace nsbi::jobs {
namespace {

// One sample set: where it came from, its column names (empty when the file has none) and its rows.
struct SampleSet {
  std::string source;  // FILE or FILE:DATASET as read
  std::vector<std::string> columns;
  std::vector<double> values;
  std::size_t dimension = 0;
  std::size_t rows() const { return dimension == 0 ? 0 : values.size() / dimension; }
};

struct C2stArguments {
  std::string a;
  std::string b;
  std::string out;
  std::uint64_t seed = 0;
};

[[noreturn]] void c2st_usage_error(const std::string& what) {
  throw ConfigError(what + "\nusage: nsbi c2st A B [--out FILE] [--seed N]");
}

C2stArguments parse_c2st(const std::vector<std::string>& argv) {
  C2stArguments args;
  std::vector<std::string> positional;
  for (std::size_t i = 2; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    const auto value = [&](const std::string& option) -> std::string {
      if (arg.rfind(option + "=", 0) == 0) return arg.substr(option.size() + 1);
      if (i + 1 >= argv.size()) c2st_usage_error(option + " needs a value");
      return argv[++i];
    };
    if (arg == "--out" || arg.rfind("--out=", 0) == 0) {
      args.out = value("--out");
    } else if (arg == "--seed" || arg.rfind("--seed=", 0) == 0) {
      const std::string digits = value("--seed");
      if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string::npos)
        c2st_usage_error("--seed " + digits + ": expected a whole number >= 0");
      args.seed = std::stoull(digits);
    } else if (arg.size() > 1 && arg[0] == '-') {
      c2st_usage_error("unknown option '" + arg + "' of nsbi c2st");
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) c2st_usage_error("nsbi c2st needs two sample sets, A and B");
  args.a = positional[0];
  args.b = positional[1];
  return args;
}

SampleSet read_csv_samples(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("c2st: sample file '" + path + "' cannot be opened");
  std::stringstream text;
  text << in.rdbuf();
  SampleSet set;
  std::size_t line_number = 0;
  std::istringstream header_text(text.str());
  set.columns = inference::csv_header(header_text, line_number);
  if (set.columns.empty()) throw InputError("c2st: sample file '" + path + "' is empty: no header line");
  sims::SimulatorInfo columns;  // the header's names, so that the observed-data reader checks every row
  columns.name = "the header";
  columns.observables = set.columns;
  std::istringstream rows(text.str());
  set.values = inference::parse_observed_csv(rows, path, columns, "");
  set.dimension = set.columns.size();
  return set;
}

// `dataset` of an HDF5 file; empty: the posterior samples of the only estimator in /infer.
SampleSet read_hdf5_samples(const std::string& path, std::string dataset) {
  const h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  const h5::Group root = file.root();
  SampleSet set;
  if (root.exists("infer"))
    set.columns = root.open_group("infer").read_attribute<std::vector<std::string>>("parameters");
  if (dataset.empty()) {
    if (!root.exists("infer"))
      throw InputError("c2st: '" + path + "' has no /infer group; name the samples as FILE:DATASET");
    const h5::Group infer = root.open_group("infer");
    if (infer.attribute_exists("datasets"))
      throw InputError("c2st: '" + path +
                       "' holds the posteriors of several observed datasets; name one as " + path +
                       ":/infer/datasets/<dataset>/<estimator>/posterior_samples");
    const auto estimators = infer.read_attribute<std::vector<std::string>>("estimators");
    if (estimators.size() != 1)
      throw InputError("c2st: '" + path + "' holds " + std::to_string(estimators.size()) +
                       " estimators' posteriors; name one as " + path +
                       ":/infer/<estimator>/posterior_samples");
    dataset = "/infer/" + estimators[0] + "/posterior_samples";
  }
  if (dataset.front() != '/') dataset = "/" + dataset;  // named from the root either way
  const std::string relative = dataset.substr(1);
  if (relative.empty() || !root.exists(relative))
    throw InputError("c2st: '" + path + "' has no dataset '" + dataset + "'");
  const h5::Dataset samples = root.open_dataset(relative);
  const auto dims = samples.dims();
  if (dims.size() != 2)
    throw InputError("c2st: dataset '" + dataset + "' of '" + path +
                     "' is not a 2-D array [samples, parameters]");
  if (dataset.rfind("/infer/", 0) != 0 || set.columns.size() != dims[1]) set.columns.clear();
  set.dimension = dims[1];
  set.values.resize(dims[0] * dims[1]);
  if (dims[0] > 0) samples.read_rows(0, dims[0], set.values.data());
  return set;
}

// FILE or FILE:DATASET (split at the last ':' unless the whole argument names a file).
SampleSet read_samples(const std::string& argument) {
  std::string path = argument;
  std::string dataset;
  const std::size_t colon = argument.rfind(':');
  if (!std::ifstream(argument) && colon != std::string::npos) {
    path = argument.substr(0, colon);
    dataset = argument.substr(colon + 1);
  }
  const bool hdf5 = h5::is_hdf5(path);
  if (!dataset.empty() && !hdf5)
    throw InputError("c2st: '" + path + "' is not an HDF5 file: only HDF5 files hold datasets to name");
  SampleSet set = hdf5 ? read_hdf5_samples(path, dataset) : read_csv_samples(path);
  set.source = argument;
  return set;
}

void check_comparable(const SampleSet& a, const SampleSet& b) {
  if (a.dimension != b.dimension)
    throw InputError("c2st: A (" + a.source + ") has " + std::to_string(a.dimension) + " columns, B (" +
                     b.source + ") has " + std::to_string(b.dimension));
  if (!a.columns.empty() && !b.columns.empty() && a.columns != b.columns)
    throw InputError("c2st: A (" + a.source + ") and B (" + b.source +
                     ") name their columns differently (the same parameters, in the same order, are needed)");
}

json::Object c2st_json(const C2stArguments& args, const SampleSet& a, const SampleSet& b,
                       const inference::C2stSettings& s, const inference::C2stResult& r) {
  std::vector<double> epochs(r.fold_epochs.begin(), r.fold_epochs.end());
  json::Object settings;
  settings.set("folds", static_cast<std::int64_t>(s.folds))
      .set("hidden_layers", std::vector<double>(2, static_cast<double>(s.hidden)))
      .set("max_epochs", static_cast<std::int64_t>(s.max_epochs))
      .set("batch_size", static_cast<std::int64_t>(s.batch_size))
      .set("learning_rate", s.learning_rate)
      .set("tolerance", s.tolerance)
      .set("patience", static_cast<std::int64_t>(s.patience));
  json::Object out;
  out.set("a", args.a)
      .set("b", args.b)
      .set("n_a", static_cast<std::int64_t>(a.rows()))
      .set("n_b", static_cast<std::int64_t>(b.rows()))
      .set("dimension", static_cast<std::int64_t>(a.dimension))
      .set("columns", a.columns.empty() ? b.columns : a.columns)
      .set("seed", static_cast<std::int64_t>(args.seed))
      .set("settings", settings)
      .set("fold_accuracies", r.fold_accuracies)
      .set("fold_epochs", epochs)
      .set("accuracy", r.accuracy)
      .set("standard_error", r.standard_error);
  return out;
}

void c2st_on_root(const C2stArguments& args) {
  const SampleSet a = read_samples(args.a);
  const SampleSet b = read_samples(args.b);
  check_comparable(a, b);
  inference::C2stSettings settings;
  settings.seed = args.seed;
  settings.hidden = 10 * a.dimension;  // sbibm's width, explicit so that the JSON records it
  for (const auto& [name, set] : {std::make_pair("A", &a), std::make_pair("B", &b)})
    if (set->rows() < settings.folds)
      throw InputError(std::string("c2st: ") + name + " (" + set->source + ") has " +
                       std::to_string(set->rows()) + " samples; " + std::to_string(settings.folds) +
                       " folds need at least " + std::to_string(settings.folds));
  const inference::C2stResult r = inference::c2st(a.values, b.values, a.dimension, settings);
  std::printf("c2st: accuracy %.4f +- %.4f (%zu folds; A: %zu samples, B: %zu; 0.5: indistinguishable)\n",
              r.accuracy, r.standard_error, settings.folds, a.rows(), b.rows());
  if (!args.out.empty()) {
    json::write_file_atomically(args.out, c2st_json(args, a, b, settings, r).dump(2) + "\n");
    std::printf("c2st: written to %s\n", args.out.c_str());
  }
}

}  // namespace

void run_c2st(const Communicator& world, const std::vector<std::string>& argv) {
  C2stArguments args;
  world.agree([&] { args = parse_c2st(argv); });
  world.agree([&] { c2st_on_root(args); }, /*root_only=*/true);
}

}  // namespace nsbi::jobs
