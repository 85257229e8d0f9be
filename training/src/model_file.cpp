#include "nsbi/training/model_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <set>
#include <utility>

#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"

namespace nsbi::training {

namespace {

constexpr const char* format_name = "nsbi-model";
constexpr std::int64_t format_version = 1;
constexpr std::size_t block_rows = 1024;  // a power of two (see evaluate_block)

std::string member_path(std::size_t member) { return "members/" + std::to_string(member); }

std::string layer_path(std::size_t member, std::size_t layer) {
  return member_path(member) + "/layer_" + std::to_string(layer);
}

std::string history_path(std::size_t member) { return "history/" + std::to_string(member); }

template <class T>
bool all_finite(const std::vector<T>& values) {
  return std::all_of(values.begin(), values.end(), [](T v) { return std::isfinite(v); });
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (std::size_t d = 0; d < dims.size(); ++d) text += (d ? ", " : "") + std::to_string(dims[d]);
  return text + "]";
}

// ---------------------------------------------------------------------------------------------------------
// Writing

template <class T>
void write_array(h5::Group& group, const std::string& name, const std::vector<hsize_t>& dims, const T* data) {
  h5::Dataset dataset =
      group.create_dataset(name, h5::data_type_of<T>::value, dims, std::max<hsize_t>(dims[0], 1));
  if (std::find(dims.begin(), dims.end(), hsize_t{0}) == dims.end()) dataset.write_rows(0, dims[0], data);
}

template <class T>
void write_vector(h5::Group& group, const std::string& name, const std::vector<T>& values) {
  write_array(group, name, {static_cast<hsize_t>(values.size())}, values.data());
}

void write_history(h5::Group& root, std::size_t member, const TrainingHistory& history) {
  h5::Group group = root.create_group(history_path(member));
  write_vector(group, "step", history.step);
  write_vector(group, "epoch", history.epoch);
  write_vector(group, "train_loss", history.train_loss);
  write_vector(group, "validation_loss", history.validation_loss);
  write_vector(group, "learning_rate", history.learning_rate);
}

// Everything but the final `complete` = 1; the groups close on return, so the file can be closed.
void write_contents(const h5::File& file, const ModelRecord& record) {
  h5::Group root = file.root();
  root.write_attribute("format", format_name);
  root.write_attribute("format_version", format_version);
  root.write_attribute("complete", std::int64_t{0});
  root.write_attribute("simulator", record.simulator);
  root.write_attribute("parameter_names", record.parameter_names);
  root.write_attribute("observable_names", record.observable_names);
  if (!record.observable_shape.empty())
    root.write_attribute("observable_shape",
                         std::vector<double>(record.observable_shape.begin(), record.observable_shape.end()));
  root.write_attribute("parameter_min", record.parameter_min);
  root.write_attribute("parameter_max", record.parameter_max);
  root.write_attribute("reference", record.reference);
  root.write_attribute("proposal", record.proposal);
  root.write_attribute("loss", record.loss);
  root.write_attribute("loss_alpha", record.loss_alpha);
  root.write_attribute("precision", record.precision);
  root.write_attribute("n_members", static_cast<std::int64_t>(record.n_members()));
  root.write_attribute("config", record.config);
  root.write_attribute("seed", static_cast<std::int64_t>(record.seed));
  root.write_attribute("nsbi_version", record.provenance.nsbi_version);
  root.write_attribute("created", record.provenance.created_utc);
  root.write_attribute("host", record.provenance.hostname);
  root.write_attribute("command", record.provenance.command_line);
  root.write_attribute("mpi_ranks", static_cast<std::int64_t>(record.provenance.mpi_ranks));
  root.write_attribute("summary", record.summary);

  const kernels::MlpArchitecture& arch = record.architecture;
  h5::Group architecture = root.create_group("architecture");
  architecture.write_attribute("n_inputs", static_cast<std::int64_t>(arch.n_inputs));
  // The wrapper's only numeric list attribute is float64; widths are exact in it.
  architecture.write_attribute("hidden", std::vector<double>(arch.hidden.begin(), arch.hidden.end()));
  architecture.write_attribute("activation", kernels::activation_name(arch.activation));
  // Only on a residual network: a file without it (every file before residual blocks) is a plain MLP.
  if (arch.residual) architecture.write_attribute("residual", std::int64_t{1});
  architecture.write_attribute("input_order", record.input_order());

  h5::Group standardization = root.create_group("standardization");
  write_vector(standardization, "mean", record.standardization_mean);
  write_vector(standardization, "scale", record.standardization_scale);

  for (std::size_t k = 0; k < record.n_members(); ++k) {
    const float* parameters = record.members[k].data();
    for (std::size_t l = 0; l < arch.n_layers(); ++l) {
      h5::Group layer = root.create_group(layer_path(k, l));
      const hsize_t n_out = arch.layer_outputs(l);
      write_array(layer, "weight", {n_out, static_cast<hsize_t>(arch.layer_inputs(l))},
                  parameters + arch.weight_offset(l));
      write_array(layer, "bias", {n_out}, parameters + arch.bias_offset(l));
    }
    write_history(root, k, record.history[k]);
  }

  if (!record.diagnostics.empty()) {
    h5::Group diagnostics = root.create_group("diagnostics");
    std::vector<std::string> names;
    for (const auto& [name, array] : record.diagnostics) {
      write_array(diagnostics, name, std::vector<hsize_t>(array.shape.begin(), array.shape.end()),
                  array.values.data());
      names.push_back(name);
    }
    // The wrapper cannot list a group's members, so the group lists them (h5py readers may ignore it).
    diagnostics.write_attribute("names", names);
  }
}

void write_model_alone(const std::string& path, const ModelRecord& record) {
  const std::string problem = record.inconsistency();
  NSBI_ASSERT(problem.empty(),
              "nsbi::training::write_model: inconsistent model for '" + path + "': " + problem);
  const std::string partial = path + ".partial";
  h5::File file = h5::File::create(partial, MPI_COMM_SELF);
  write_contents(file, record);
  file.root().write_attribute("complete", std::int64_t{1});
  file.close();
  if (std::rename(partial.c_str(), path.c_str()) != 0)
    throw InputError("nsbi::training::write_model: cannot rename '" + partial + "' to '" + path +
                     "': " + describe_system_error(errno, path));
}

[[noreturn]] void throw_error(ExitCode code, const std::string& message) {
  switch (code) {
    case ExitCode::usage:
      throw ConfigError(message);
    case ExitCode::bad_input:
      throw InputError(message);
    case ExitCode::interrupted:
      throw Interrupted(message);
    default:
      throw InternalError(message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading

// Reads one model file; every failure is an InputError naming the file and what is wrong with it.
class ModelReader {
 public:
  ModelReader(h5::Group root, std::string path) : root_(std::move(root)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& reason) const {
    throw InputError("nsbi::training::read_model: '" + path_ + "' is not a valid nsbi model: " + reason);
  }

  template <class T>
  T attribute(const h5::Object& object, const std::string& name) const {
    if (!object.attribute_exists(name))
      fail("attribute '" + name + "' of '" + object.name() + "' is missing");
    return object.read_attribute<T>(name);
  }

  h5::Group group(const std::string& name) const {
    if (!root_.exists(name)) fail("group '/" + name + "' is missing");
    return root_.open_group(name);
  }

  // The dataset `name` under `group`, whose shape must be `dims`.
  template <class T>
  std::vector<T> array(const h5::Group& parent, const std::string& name,
                       const std::vector<hsize_t>& dims) const {
    const std::string full_name = (parent.name() == "/" ? "/" : parent.name() + "/") + name;
    if (!parent.exists(name)) fail("dataset '" + full_name + "' is missing");
    const h5::Dataset dataset = parent.open_dataset(name);
    const std::vector<hsize_t> stored = dataset.dims();
    if (stored != dims)
      fail("dataset '" + full_name + "' has shape " + shape_text(stored) + ", expected " + shape_text(dims));
    return read_all<T>(dataset);
  }

  // A one-dimensional dataset of any length.
  template <class T>
  std::vector<T> series(const h5::Group& parent, const std::string& name) const {
    if (!parent.exists(name)) fail("dataset '" + parent.name() + "/" + name + "' is missing");
    const h5::Dataset dataset = parent.open_dataset(name);
    const std::vector<hsize_t> dims = dataset.dims();
    if (dims.size() != 1)
      fail("dataset '" + dataset.name() + "' has shape " + shape_text(dims) + ", expected one dimension");
    return read_all<T>(dataset);
  }

  template <class T>
  std::vector<T> read_all(const h5::Dataset& dataset) const {
    const std::vector<hsize_t> dims = dataset.dims();
    if (dims.empty()) fail("dataset '" + dataset.name() + "' is a scalar, not an array");
    hsize_t size = 1;
    for (hsize_t d : dims) size *= d;
    std::vector<T> values(size);
    if (size > 0) dataset.read_rows(0, dims[0], values.data());
    return values;
  }

  void check_identity() const {
    if (!root_.attribute_exists("format")) fail("it has no 'format' attribute (a foreign HDF5 file)");
    const auto format = root_.read_attribute<std::string>("format");
    if (format != format_name) fail("its format is '" + format + "', not '" + format_name + "'");
    const auto version = attribute<std::int64_t>(root_, "format_version");
    if (version != format_version)
      fail("format_version " + std::to_string(version) + ": this nsbi reads version " +
           std::to_string(format_version));
    if (attribute<std::int64_t>(root_, "complete") != 1)
      fail("it is unfinished (attribute 'complete' is not 1): the run writing it stopped or failed");
  }

  kernels::MlpArchitecture architecture() const {
    const h5::Group group = this->group("architecture");
    kernels::MlpArchitecture arch;
    const auto n_inputs = attribute<std::int64_t>(group, "n_inputs");
    if (n_inputs < 1) fail("/architecture n_inputs is " + std::to_string(n_inputs));
    arch.n_inputs = static_cast<std::size_t>(n_inputs);
    for (double width : attribute<std::vector<double>>(group, "hidden")) {
      if (!(width >= 1.0 && width <= 1e9 && width == std::floor(width)))
        fail("/architecture hidden holds a width that is not a positive integer");
      arch.hidden.push_back(static_cast<std::size_t>(width));
    }
    const auto activation = attribute<std::string>(group, "activation");
    try {
      arch.activation = kernels::activation_from_name(activation);
    } catch (const ConfigError& e) {
      fail(e.what());
    }
    if (group.attribute_exists("residual")) {
      const auto residual = attribute<std::int64_t>(group, "residual");
      if (residual != 0 && residual != 1) fail("/architecture residual is " + std::to_string(residual));
      arch.residual = residual == 1;
    }
    return arch;
  }

  // The flat buffer of mlp.hpp is W_0, b_0, W_1, b_1, ... (each W row-major): the layers' datasets in order.
  // Appended as read, so memory never exceeds what the file holds, whatever /architecture claims.
  std::vector<float> member(std::size_t k, const kernels::MlpArchitecture& arch) const {
    std::vector<float> parameters;
    for (std::size_t l = 0; l < arch.n_layers(); ++l) {
      const h5::Group layer = group(layer_path(k, l));
      const hsize_t n_out = arch.layer_outputs(l);
      const auto weight = array<float>(layer, "weight", {n_out, static_cast<hsize_t>(arch.layer_inputs(l))});
      const auto bias = array<float>(layer, "bias", {n_out});
      parameters.insert(parameters.end(), weight.begin(), weight.end());
      parameters.insert(parameters.end(), bias.begin(), bias.end());
    }
    if (root_.exists(layer_path(k, arch.n_layers())))
      fail("'/" + layer_path(k, arch.n_layers()) + "' exists: more layers than /architecture describes");
    return parameters;
  }

  TrainingHistory history(std::size_t k) const {
    const h5::Group group = this->group(history_path(k));
    return {series<std::int64_t>(group, "step"), series<std::int64_t>(group, "epoch"),
            series<double>(group, "train_loss"), series<double>(group, "validation_loss"),
            series<double>(group, "learning_rate")};
  }

  std::map<std::string, DiagnosticArray> diagnostics() const {
    std::map<std::string, DiagnosticArray> arrays;
    if (!root_.exists("diagnostics")) return arrays;
    const h5::Group group = root_.open_group("diagnostics");
    for (const std::string& name : attribute<std::vector<std::string>>(group, "names")) {
      if (name.empty() || name.find('/') != std::string::npos || !group.exists(name))
        fail("/diagnostics names '" + name + "', which is not a dataset of /diagnostics");
      const h5::Dataset dataset = group.open_dataset(name);
      const std::vector<hsize_t> dims = dataset.dims();
      arrays[name] = {std::vector<std::uint64_t>(dims.begin(), dims.end()), read_all<double>(dataset)};
    }
    return arrays;
  }

  ModelRecord record() const {
    check_identity();
    ModelRecord r;
    r.simulator = attribute<std::string>(root_, "simulator");
    r.parameter_names = attribute<std::vector<std::string>>(root_, "parameter_names");
    r.observable_names = attribute<std::vector<std::string>>(root_, "observable_names");
    if (root_.attribute_exists("observable_shape")) {
      for (const double extent : attribute<std::vector<double>>(root_, "observable_shape")) {
        if (!(extent >= 1 && extent <= 1e9 && extent == std::floor(extent)))
          fail("observable_shape holds " + std::to_string(extent) + ", not a positive integer");
        r.observable_shape.push_back(static_cast<std::size_t>(extent));
      }
    }
    r.parameter_min = attribute<std::vector<double>>(root_, "parameter_min");
    r.parameter_max = attribute<std::vector<double>>(root_, "parameter_max");
    r.reference = attribute<std::string>(root_, "reference");
    // Models written before the proposal was recorded have none; they stay readable.
    if (root_.attribute_exists("proposal")) r.proposal = root_.read_attribute<std::string>("proposal");
    r.loss = attribute<std::string>(root_, "loss");
    r.loss_alpha = attribute<double>(root_, "loss_alpha");
    // Models written before precision was a choice have no attribute: they were trained in f32.
    if (root_.attribute_exists("precision")) r.precision = attribute<std::string>(root_, "precision");
    r.config = attribute<std::string>(root_, "config");
    r.seed = static_cast<std::uint64_t>(attribute<std::int64_t>(root_, "seed"));
    r.provenance.nsbi_version = attribute<std::string>(root_, "nsbi_version");
    r.provenance.created_utc = attribute<std::string>(root_, "created");
    r.provenance.hostname = attribute<std::string>(root_, "host");
    r.provenance.command_line = attribute<std::string>(root_, "command");
    r.provenance.mpi_ranks = static_cast<int>(attribute<std::int64_t>(root_, "mpi_ranks"));
    // Models written before the summary was stored have none; they stay readable.
    if (root_.attribute_exists("summary")) r.summary = root_.read_attribute<std::string>("summary");

    r.architecture = architecture();
    if (r.architecture.n_inputs != r.n_observables() + r.parameter_names.size())
      fail("/architecture n_inputs is " + std::to_string(r.architecture.n_inputs) + " for " +
           std::to_string(r.n_observables()) + " observable values and " +
           std::to_string(r.parameter_names.size()) + " parameters");
    if (attribute<std::vector<std::string>>(group("architecture"), "input_order") != r.input_order())
      fail("/architecture input_order is not observable_names followed by parameter_names");

    const hsize_t n_inputs = r.architecture.n_inputs;
    const h5::Group standardization = group("standardization");
    r.standardization_mean = array<double>(standardization, "mean", {n_inputs});
    r.standardization_scale = array<double>(standardization, "scale", {n_inputs});

    const auto n_members = attribute<std::int64_t>(root_, "n_members");
    if (n_members < 1) fail("n_members is " + std::to_string(n_members));
    for (std::size_t k = 0; k < static_cast<std::size_t>(n_members); ++k) {
      r.members.push_back(member(k, r.architecture));
      r.history.push_back(history(k));
    }
    if (root_.exists(member_path(r.n_members())))
      fail("'/" + member_path(r.n_members()) + "' exists but n_members is " + std::to_string(n_members));
    r.diagnostics = diagnostics();

    const std::string problem = r.inconsistency();
    if (!problem.empty()) fail(problem);
    return r;
  }

 private:
  h5::Group root_;
  std::string path_;
};

bool file_exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation

// The smallest power of two >= n (n >= 1).
std::size_t power_of_two_at_least(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p *= 2;
  return p;
}

using RowPolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<std::size_t>>;

// out(offset + i) = log mean_k exp(logits(k, i)), as max_k + log mean_k exp(logit_k − max_k): every
// exponent is <= 0, so nothing overflows whatever the logits. Optionally the members' sample spread.
struct EnsembleLogRatio {
  ConstFloatMatrix logits;  // [K, block]
  Vector out;
  Vector spread;  // empty: not asked for
  std::size_t offset;

  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i) const {
    const std::size_t n_members = logits.extent(0);
    double largest = logits(0, i);
    for (std::size_t k = 1; k < n_members; ++k) largest = largest > logits(k, i) ? largest : logits(k, i);
    double sum = 0.0;
    double mean = 0.0;
    for (std::size_t k = 0; k < n_members; ++k) {
      sum += Kokkos::Experimental::exp(logits(k, i) - largest);
      mean += logits(k, i);
    }
    out(offset + i) = largest + Kokkos::Experimental::log(sum / static_cast<double>(n_members));
    if (spread.data() == nullptr) return;
    mean /= static_cast<double>(n_members);
    double squares = 0.0;
    for (std::size_t k = 0; k < n_members; ++k) {
      const double d = logits(k, i) - mean;
      squares += d * d;
    }
    spread(offset + i) =
        n_members > 1 ? Kokkos::Experimental::sqrt(squares / static_cast<double>(n_members - 1)) : 0.0;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// ModelRecord

std::size_t ModelRecord::n_observables() const {
  if (observable_shape.empty()) return observable_names.size();
  std::size_t n = 1;
  for (const std::size_t extent : observable_shape) n *= extent;
  return n;
}

std::vector<std::string> ModelRecord::input_order() const {
  std::vector<std::string> names = observable_names;
  names.insert(names.end(), parameter_names.begin(), parameter_names.end());
  return names;
}

std::string ModelRecord::inconsistency() const {
  const std::size_t n_parameters = parameter_names.size();
  const std::vector<std::string> inputs = input_order();
  if (!observable_shape.empty() && observable_names.size() != 1)
    return "an array observable has one name, not " + std::to_string(observable_names.size());
  if (!kernels::parse_precision(precision)) return "precision '" + precision + "' is neither f32 nor bf16";
  if (architecture.n_inputs != n_observables() + n_parameters)
    return "the network has " + std::to_string(architecture.n_inputs) + " inputs for " +
           std::to_string(n_observables()) + " observable values and " + std::to_string(n_parameters) +
           " parameters";
  if (inputs.empty()) return "there are no observables and no parameters";
  std::set<std::string> seen;
  for (const std::string& name : inputs) {
    if (name.empty()) return "an observable or parameter name is empty";
    if (!seen.insert(name).second)
      return "the name '" + name + "' appears twice among observables and parameters";
  }
  for (std::size_t l = 0; l < architecture.hidden.size(); ++l)
    if (architecture.hidden[l] == 0) return "hidden layer " + std::to_string(l) + " has width 0";
  if (architecture.residual && std::adjacent_find(architecture.hidden.begin(), architecture.hidden.end(),
                                                  std::not_equal_to<>()) != architecture.hidden.end())
    return "a residual network's hidden layers have different widths";
  if (parameter_min.size() != n_parameters || parameter_max.size() != n_parameters)
    return "parameter_min and parameter_max need one value per parameter (" + std::to_string(n_parameters) +
           ")";
  for (std::size_t p = 0; p < n_parameters; ++p)
    if (!std::isfinite(parameter_min[p]) || !std::isfinite(parameter_max[p]) ||
        parameter_min[p] > parameter_max[p])
      return "the range of parameter '" + parameter_names[p] + "' is not finite and ordered";
  const std::size_t n_inputs = architecture.n_inputs;
  if (standardization_mean.size() != n_inputs || standardization_scale.size() != n_inputs)
    return "the standardisation needs one mean and one scale per input (" + std::to_string(n_inputs) + ")";
  // Input j's name: an observable's or a parameter's, or an array's value as its flat index.
  const std::size_t n_x = n_observables();
  const auto input_name = [&](std::size_t j) {
    if (j >= n_x) return parameter_names[j - n_x];
    return observable_shape.empty() ? observable_names[j]
                                    : observable_names[0] + "[" + std::to_string(j) + "]";
  };
  for (std::size_t j = 0; j < n_inputs; ++j)
    if (!std::isfinite(standardization_mean[j]) || !std::isfinite(standardization_scale[j]) ||
        standardization_scale[j] <= 0.0)
      return "the standardisation of input '" + input_name(j) + "' is not finite with a positive scale";
  if (members.empty()) return "there are no members";
  for (std::size_t k = 0; k < members.size(); ++k) {
    if (members[k].size() != architecture.n_parameters())
      return "member " + std::to_string(k) + " has " + std::to_string(members[k].size()) +
             " parameters, the architecture " + std::to_string(architecture.n_parameters());
    if (!all_finite(members[k])) return "member " + std::to_string(k) + " has a non-finite parameter";
  }
  if (history.size() != members.size())
    return std::to_string(history.size()) + " training histories for " + std::to_string(members.size()) +
           " members";
  for (std::size_t k = 0; k < history.size(); ++k) {
    const TrainingHistory& h = history[k];
    const std::size_t n = h.step.size();
    if (h.epoch.size() != n || h.train_loss.size() != n || h.validation_loss.size() != n ||
        h.learning_rate.size() != n)
      return "the training history of member " + std::to_string(k) + " has arrays of different lengths";
  }
  for (const auto& [name, array] : diagnostics) {
    if (name.empty() || name.find('/') != std::string::npos)
      return "the diagnostic name '" + name + "' is empty or contains '/'";
    std::uint64_t size = array.shape.empty() ? 0 : 1;
    for (std::uint64_t d : array.shape) size *= d;
    if (array.shape.empty() || size != array.values.size())
      return "the diagnostic '" + name + "' has " + std::to_string(array.values.size()) +
             " values for its shape";
  }
  return {};
}

kernels::StandardizedEnsemble ModelRecord::ensemble() const {
  const std::string problem = inconsistency();
  NSBI_ASSERT(problem.empty(), "nsbi::training::ModelRecord::ensemble: inconsistent model: " + problem);
  return {architecture, n_observables(), standardization_mean, standardization_scale, members};
}

// ---------------------------------------------------------------------------------------------------------
// Files

void write_model(const std::string& path, const Communicator& comm, const ModelRecord& record) {
  std::exception_ptr failure;
  auto code = static_cast<std::uint64_t>(ExitCode::success);
  std::string message;
  if (comm.is_root()) {
    try {
      write_model_alone(path, record);
    } catch (const Error& e) {
      failure = std::current_exception();
      code = static_cast<std::uint64_t>(e.code());
      message = e.what();
    } catch (const std::exception& e) {
      failure = std::current_exception();
      code = static_cast<std::uint64_t>(ExitCode::internal);
      message = std::string("nsbi::training::write_model: ") + e.what();
    }
    if (failure) std::remove((path + ".partial").c_str());  // a leftover would only take disk space
  }
  comm.broadcast(code);
  if (code == static_cast<std::uint64_t>(ExitCode::success)) return;
  message = comm.broadcast(message);
  if (failure) std::rethrow_exception(failure);  // rank 0 keeps the exception's own type (e.g. h5::Error)
  throw_error(static_cast<ExitCode>(code), message);
}

ModelRecord read_model(const std::string& path) {
  if (!file_exists(path)) {
    const std::string partial = path + ".partial";
    throw InputError("nsbi::training::read_model: cannot read '" + path + "': it does not exist" +
                     (file_exists(partial) ? " ('" + partial + "' does: the run writing it did not finish)"
                                           : std::string()));
  }
  try {
    const h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
    return ModelReader(file.root(), path).record();
  } catch (const h5::Error& e) {
    throw InputError("nsbi::training::read_model: '" + path + "' is not a readable nsbi model: " + e.what());
  }
}

// ---------------------------------------------------------------------------------------------------------
// LikelihoodRatioEstimator

LikelihoodRatioEstimator::LikelihoodRatioEstimator(const ModelRecord& record)
    : mlp_(record.architecture),
      standardization_(record.standardization_mean, record.standardization_scale),
      n_observables_(record.n_observables()),
      n_parameters_(record.parameter_names.size()),
      // Zero-filled: the padding rows of a block (see evaluate_block) always hold finite values.
      inputs_("nsbi::training::LikelihoodRatioEstimator::inputs", block_rows, record.architecture.n_inputs),
      logits_(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::training::LikelihoodRatioEstimator::logits"),
          record.n_members(), block_rows) {
  const std::string problem = record.inconsistency();
  NSBI_ASSERT(problem.empty(), "nsbi::training::LikelihoodRatioEstimator: inconsistent model: " + problem);
  for (const std::vector<float>& member : record.members) {
    FloatVector parameters =
        make_float_vector("nsbi::training::LikelihoodRatioEstimator::parameters", member.size());
    Kokkos::deep_copy(parameters, Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                                      member.data(), member.size()));
    parameters_.push_back(parameters);
  }
}

void LikelihoodRatioEstimator::check_shapes(const ConstMatrix& x, const ConstMatrix& theta,
                                            std::size_t out_rows) const {
  NSBI_ASSERT(x.extent(1) == n_observables_ && theta.extent(1) == n_parameters_,
              "nsbi::training::LikelihoodRatioEstimator: x and theta need the model's observable and "
              "parameter columns");
  NSBI_ASSERT(theta.extent(0) == x.extent(0) && out_rows == x.extent(0),
              "nsbi::training::LikelihoodRatioEstimator: x, theta and the output differ in rows");
}

void LikelihoodRatioEstimator::evaluate_block(const ExecutionSpace& space, const ConstMatrix& x,
                                              const ConstMatrix& theta, std::size_t begin, std::size_t n,
                                              std::size_t first, std::size_t last) {
  const auto rows = std::make_pair(begin, begin + n);
  const FloatMatrix block = Kokkos::subview(inputs_, std::make_pair(std::size_t{0}, n), Kokkos::ALL);
  standardize(space, standardization_, Kokkos::subview(x, rows, Kokkos::ALL), 0, block);
  standardize(space, standardization_, Kokkos::subview(theta, rows, Kokkos::ALL), n_observables_, block);
  // Mlp keeps buffers and primitives per batch size: padding the batch to a power of two bounds them at
  // log2(block_rows) + 1 sizes, whatever row counts callers bring. Padding rows are computed and ignored.
  const auto padded = std::make_pair(std::size_t{0}, power_of_two_at_least(n));
  const ConstFloatMatrix padded_inputs = Kokkos::subview(inputs_, padded, Kokkos::ALL);
  for (std::size_t k = first; k < last; ++k)
    mlp_.forward(space, parameters_[k], padded_inputs, Kokkos::subview(logits_, k, padded));
}

void LikelihoodRatioEstimator::log_ratio(const ExecutionSpace& space, const ConstMatrix& x,
                                         const ConstMatrix& theta, const Vector& out, std::size_t member,
                                         const Vector& spread) {
  check_shapes(x, theta, out.extent(0));
  const bool ensemble = member == all_members;
  NSBI_ASSERT(ensemble || member < n_members(),
              "nsbi::training::LikelihoodRatioEstimator: no member " + std::to_string(member));
  NSBI_ASSERT(spread.data() == nullptr || (ensemble && spread.extent(0) == out.extent(0)),
              "nsbi::training::LikelihoodRatioEstimator: the spread is the ensemble's, one value per row");
  const ConstFloatMatrix logits = logits_;
  for (std::size_t begin = 0; begin < x.extent(0); begin += block_rows) {
    const std::size_t n = std::min(block_rows, x.extent(0) - begin);
    const RowPolicy rows(space, 0, n);
    if (ensemble) {
      evaluate_block(space, x, theta, begin, n, 0, n_members());
      Kokkos::parallel_for("nsbi::training::LikelihoodRatioEstimator::ensemble", rows,
                           EnsembleLogRatio{logits, out, spread, begin});
    } else {
      evaluate_block(space, x, theta, begin, n, member, member + 1);
      Kokkos::parallel_for(
          "nsbi::training::LikelihoodRatioEstimator::member", rows,
          KOKKOS_LAMBDA(std::size_t i) { out(begin + i) = logits(member, i); });
    }
  }
  space.fence();
}

void LikelihoodRatioEstimator::member_log_ratios(const ExecutionSpace& space, const ConstMatrix& x,
                                                 const ConstMatrix& theta, const Matrix& out) {
  check_shapes(x, theta, out.extent(0));
  NSBI_ASSERT(out.extent(1) == n_members(),
              "nsbi::training::LikelihoodRatioEstimator::member_log_ratios: one column per member");
  const ConstFloatMatrix logits = logits_;
  for (std::size_t begin = 0; begin < x.extent(0); begin += block_rows) {
    const std::size_t n = std::min(block_rows, x.extent(0) - begin);
    evaluate_block(space, x, theta, begin, n, 0, n_members());
    Kokkos::parallel_for(
        "nsbi::training::LikelihoodRatioEstimator::members", RowPolicy(space, 0, n),
        KOKKOS_LAMBDA(std::size_t i) {
          for (std::size_t k = 0; k < logits.extent(0); ++k) out(begin + i, k) = logits(k, i);
        });
  }
  space.fence();
}

void log_ratio(const ExecutionSpace& space, const ModelRecord& record, std::size_t member,
               const ConstMatrix& x, const ConstMatrix& theta, const Vector& out) {
  LikelihoodRatioEstimator(record).log_ratio(space, x, theta, out, member);
}

}  // namespace nsbi::training
