#include "nsbi/distributed/checkpoint.hpp"

#include <mpi.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "nsbi/core/hdf5.hpp"

namespace nsbi::distributed {
namespace {

constexpr const char* format_name = "nsbi-checkpoint";
constexpr std::int64_t format_version = 1;

template <class T>
void write_array(h5::Group& root, const std::string& name, const std::vector<T>& values) {
  if (values.empty()) return;  // HDF5 datasets of zero rows cannot be chunked: absent means empty
  h5::Dataset array = root.create_dataset(name, h5::data_type_of<T>::value, {values.size()}, values.size());
  array.write_rows(0, values.size(), values.data());
}

template <class T>
std::vector<T> read_array(const h5::Group& root, const std::string& name) {
  if (!root.exists(name)) return {};
  const h5::Dataset array = root.open_dataset(name);
  std::vector<T> values(array.dims().at(0));
  array.read_rows(0, values.size(), values.data());
  return values;
}

std::int64_t as_attribute(std::uint64_t value) { return static_cast<std::int64_t>(value); }

InputError refusal(const std::string& path, const std::string& problem) {
  return InputError("nsbi::read_checkpoint: '" + path + "' " + problem +
                    "; delete it (or run with --force) to start the training over");
}

void write_file(const std::string& partial, const TrainingCheckpoint& checkpoint) {
  h5::File file = h5::File::create(partial, MPI_COMM_SELF);
  {
    h5::Group root = file.root();
    root.write_attribute("format", format_name);
    root.write_attribute("format_version", format_version);
    root.write_attribute("identity", checkpoint.identity);
    root.write_attribute("finished", std::int64_t{checkpoint.finished ? 1 : 0});
    root.write_attribute("optimizer_step", as_attribute(checkpoint.optimizer_step));
    root.write_attribute("epoch", as_attribute(checkpoint.epoch));
    root.write_attribute("step", as_attribute(checkpoint.step));
    root.write_attribute("reference_epoch", as_attribute(checkpoint.reference_epoch));
    root.write_attribute("reference_step", as_attribute(checkpoint.reference_step));
    root.write_attribute("epoch_loss_sum", checkpoint.epoch_loss_sum);
    root.write_attribute("best_validation_loss", checkpoint.best_validation_loss);
    root.write_attribute("epochs_without_improvement", as_attribute(checkpoint.epochs_without_improvement));
    write_array(root, "parameters", checkpoint.parameters);
    write_array(root, "first_moment", checkpoint.first_moment);
    write_array(root, "second_moment", checkpoint.second_moment);
    write_array(root, "best_parameters", checkpoint.best_parameters);
    h5::Group history = root.create_group("history");
    write_array(history, "step", checkpoint.history_step);
    write_array(history, "epoch", checkpoint.history_epoch);
    write_array(history, "train_loss", checkpoint.history_train_loss);
    write_array(history, "validation_loss", checkpoint.history_validation_loss);
    write_array(history, "learning_rate", checkpoint.history_learning_rate);
    root.write_attribute("complete", std::int64_t{1});
  }
  file.close();
}

TrainingCheckpoint read_file(const std::string& path) {
  const auto refuse = [&](const std::string& problem) { return refusal(path, problem); };
  const h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  const h5::Group root = file.root();
  if (!root.attribute_exists("format") || root.read_attribute<std::string>("format") != format_name)
    throw refuse("is not an nsbi checkpoint");
  if (root.read_attribute<std::int64_t>("format_version") != format_version)
    throw refuse("has another checkpoint format version");
  if (!root.attribute_exists("complete") || root.read_attribute<std::int64_t>("complete") != 1)
    throw refuse("is incomplete");
  const auto count = [&](const char* name) {
    const std::int64_t value = root.read_attribute<std::int64_t>(name);
    if (value < 0) throw refuse(std::string("has a negative ") + name);
    return static_cast<std::uint64_t>(value);
  };
  TrainingCheckpoint checkpoint;
  checkpoint.identity = root.read_attribute<std::string>("identity");
  checkpoint.finished = root.read_attribute<std::int64_t>("finished") == 1;
  checkpoint.optimizer_step = count("optimizer_step");
  checkpoint.epoch = count("epoch");
  checkpoint.step = count("step");
  checkpoint.reference_epoch = count("reference_epoch");
  checkpoint.reference_step = count("reference_step");
  checkpoint.epoch_loss_sum = root.read_attribute<double>("epoch_loss_sum");
  checkpoint.best_validation_loss = root.read_attribute<double>("best_validation_loss");
  checkpoint.epochs_without_improvement = count("epochs_without_improvement");
  checkpoint.parameters = read_array<float>(root, "parameters");
  checkpoint.first_moment = read_array<float>(root, "first_moment");
  checkpoint.second_moment = read_array<float>(root, "second_moment");
  checkpoint.best_parameters = read_array<float>(root, "best_parameters");
  checkpoint.history_step = read_array<std::int64_t>(root, "history/step");
  checkpoint.history_epoch = read_array<std::int64_t>(root, "history/epoch");
  checkpoint.history_train_loss = read_array<double>(root, "history/train_loss");
  checkpoint.history_validation_loss = read_array<double>(root, "history/validation_loss");
  checkpoint.history_learning_rate = read_array<double>(root, "history/learning_rate");
  const std::size_t n = checkpoint.parameters.size();
  const std::size_t h = checkpoint.history_step.size();
  if (n == 0 || checkpoint.first_moment.size() != n || checkpoint.second_moment.size() != n ||
      (!checkpoint.best_parameters.empty() && checkpoint.best_parameters.size() != n) ||
      checkpoint.history_epoch.size() != h || checkpoint.history_train_loss.size() != h ||
      checkpoint.history_validation_loss.size() != h || checkpoint.history_learning_rate.size() != h)
    throw refuse("has arrays of inconsistent sizes");
  return checkpoint;
}

}  // namespace

void write_checkpoint(const std::string& path, const TrainingCheckpoint& checkpoint) {
  const std::string partial = path + ".partial";
  try {
    write_file(partial, checkpoint);
  } catch (const Error& e) {
    // An unfinished checkpoint is never resumed from: only the previous one is kept.
    std::remove(partial.c_str());
    if (e.code() != ExitCode::bad_input) throw;
    throw IoError(std::string(e.what()) + "; the previous checkpoint '" + path +
                  "' (if any) is unchanged: run the same command to resume from it once that is fixed");
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(partial.c_str());
    throw IoError("nsbi::write_checkpoint: cannot rename '" + partial + "' to '" + path +
                  "': " + describe_system_error(error, path));
  }
}

std::optional<TrainingCheckpoint> read_checkpoint(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return std::nullopt;
  if (!h5::is_hdf5(path)) throw refusal(path, "is not an HDF5 file");
  try {
    return read_file(path);
  } catch (const h5::Error& e) {
    // Truncated, or unreadable for another reason: HDF5's (and the system's) words say which.
    throw refusal(path, "cannot be read (" + std::string(e.what()) + ")");
  }
}

}  // namespace nsbi::distributed
