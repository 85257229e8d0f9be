#include "nsbi/inference/observed.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/distributed/dataset_reader.hpp"

namespace nsbi::inference {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(trim(field));
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
  return text;
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text;
  for (const auto n : dims) text += (text.empty() ? "" : ", ") + std::to_string(n);
  return "[" + text + "]";
}

// The name of column c of a row of x, for messages: the observable's, or an array's name and element index.
std::string column_name(const sims::SimulatorInfo& info, std::size_t c) {
  if (!info.is_array()) return info.observables[c];
  std::vector<hsize_t> index(info.observable_shape.size());
  for (std::size_t i = index.size(); i-- > 0;) {
    index[i] = c % info.observable_shape[i];
    c /= info.observable_shape[i];
  }
  return info.observables[0] + shape_text(index);
}

// For each observable of `info`, the CSV column holding it; InputError for unknown, repeated or missing ones.
std::vector<std::size_t> csv_columns(const std::vector<std::string>& header, const sims::SimulatorInfo& info,
                                     const std::string& where) {
  std::vector<std::size_t> column_of(info.n_observables(), header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    const auto it = std::find(info.observables.begin(), info.observables.end(), header[c]);
    if (it == info.observables.end())
      throw InputError(where + ": column '" + header[c] + "' is not an observable of " + info.name +
                       " (expected " + joined(info.observables) + ")");
    const auto index = static_cast<std::size_t>(it - info.observables.begin());
    if (column_of[index] != header.size())
      throw InputError(where + ": column '" + header[c] + "' appears twice");
    column_of[index] = c;
  }
  for (std::size_t j = 0; j < column_of.size(); ++j)
    if (column_of[j] == header.size())
      throw InputError(where + ": the observable '" + info.observables[j] + "' of " + info.name +
                       " has no column");
  return column_of;
}

// The names of the observed datasets: the groups below /observed (listed by HDF5, in name order).
std::vector<std::string> observed_names(const std::string& path) {
  std::vector<std::string> names;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return names;
  const hid_t group = H5Gopen2(file, "observed", H5P_DEFAULT);
  if (group >= 0) {
    H5Literate(
        group, H5_INDEX_NAME, H5_ITER_INC, nullptr,
        [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
          static_cast<std::vector<std::string>*>(out)->push_back(name);
          return 0;
        },
        &names);
    H5Gclose(group);
  }
  H5Fclose(file);
  return names;
}

// The values of /observed/<dataset>/x, checked against `info` (docs/formats.md, "Observed data").
std::vector<double> read_observed_group(const std::string& path, const h5::Group& root,
                                        const sims::SimulatorInfo& info, std::string dataset,
                                        const std::string& origin) {
  const std::string where = "observed data '" + path + "'";
  if (!root.exists("observed"))
    throw InputError(where + " has no group /observed (docs/formats.md, \"Observed data\")" + origin);
  if (dataset.empty()) {
    const std::vector<std::string> names = observed_names(path);
    if (names.size() != 1)
      throw InputError(where + " holds " + std::to_string(names.size()) + " observed datasets (" +
                       joined(names) + "): name the one to use (infer.observed_dataset)" + origin);
    dataset = names.front();
  }
  const std::string name = "/observed/" + dataset;
  if (!root.exists("observed/" + dataset + "/x"))
    throw InputError(where + " has no dataset " + name + "/x" + origin);
  const h5::Group group = root.open_group("observed/" + dataset);
  if (!group.attribute_exists("observables"))
    throw InputError(where + ", " + name + ": no attribute 'observables'" + origin);
  const auto observables = group.read_attribute<std::vector<std::string>>("observables");
  if (observables != info.observables)
    throw InputError(where + ", " + name + " has observables (" + joined(observables) + "), not those of " +
                     info.name + " (" + joined(info.observables) + ")" + origin);
  if (group.attribute_exists("theta") || group.attribute_exists("parameters")) {
    std::vector<std::string> parameters;
    for (const auto& p : info.parameters) parameters.push_back(p.name);
    const bool both = group.attribute_exists("theta") && group.attribute_exists("parameters");
    if (!both || group.read_attribute<std::vector<std::string>>("parameters") != parameters ||
        group.read_attribute<std::vector<double>>("theta").size() != parameters.size())
      throw InputError(where + ", " + name + ": the true θ needs the attributes 'parameters' (" +
                       joined(parameters) + ") and 'theta' (one value each)" + origin);
  }
  // [N, D] for tabular x; [N, shape...] for an array observable, read flattened row-major.
  const h5::Dataset x = group.open_dataset("x");
  const auto dims = x.dims();
  std::vector<hsize_t> expected{dims.empty() ? 0 : dims[0]};
  if (info.is_array())
    expected.insert(expected.end(), info.observable_shape.begin(), info.observable_shape.end());
  else
    expected.push_back(info.n_observables());
  if (dims != expected) {
    std::string shape = shape_text({expected.begin() + 1, expected.end()});
    throw InputError(where + ", " + name + "/x has shape " + shape_text(dims) + ", not [N, " +
                     shape.substr(1) + origin);
  }
  const std::size_t d = info.n_observables();
  std::vector<double> values(dims[0] * d);
  if (dims[0] > 0) x.read_rows(0, dims[0], values.data());
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw InputError(where + ", " + name + "/x row " + std::to_string(i / d) + ", column '" +
                       column_name(info, i % d) + "': not finite" + origin);
  return values;
}

// The /x of a dataset file `nsbi simulate` wrote (docs/formats.md, "Dataset").
std::vector<double> read_dataset_file(const std::string& path, const sims::SimulatorInfo& info,
                                      const std::string& origin) {
  const std::size_t d = info.n_observables();
  distributed::DatasetReader reader(path);
  reader.check_observable_shape(info.observable_shape);
  if (reader.observable_names() != info.observables)
    throw InputError("observed data '" + path + "' has observables (" + joined(reader.observable_names()) +
                     "), not those of " + info.name + origin);
  std::vector<double> theta(reader.n_rows() * reader.n_parameters());
  std::vector<double> values(reader.n_rows() * d);
  if (reader.n_rows() > 0) reader.read_rows(0, reader.n_rows(), theta.data(), values.data());
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw InputError("observed data '" + path + "', /x row " + std::to_string(i / d) + ", column '" +
                       reader.observable_column(i % d) + "': not finite");
  return values;
}

}  // namespace

std::vector<std::string> observed_dataset_names(const std::string& path, const std::string& origin) {
  const std::string where = "observed data '" + path + "'";
  if (!h5::is_hdf5(path))
    throw InputError(where + " is not an HDF5 observed-data file: it holds one unnamed dataset" + origin);
  const h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
  const h5::Group root = file.root();
  if (!root.attribute_exists("format") || root.read_attribute<std::string>("format") != "nsbi-observed")
    throw InputError(where +
                     " is not an observed-data file (root attribute format = \"nsbi-observed\"): it "
                     "holds one unnamed dataset" +
                     origin);
  if (!root.exists("observed"))
    throw InputError(where + " has no group /observed (docs/formats.md, \"Observed data\")" + origin);
  return observed_names(path);
}

std::vector<std::string> csv_header(std::istream& in, std::size_t& line_number) {
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    // Some editors start UTF-8 text with a byte-order mark: it is no part of the first column's name.
    if (line_number == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!trim(line).empty() && trim(line)[0] != '#') return split_csv(line);
  }
  return {};
}

std::vector<double> parse_observed_csv(std::istream& in, const std::string& path,
                                       const sims::SimulatorInfo& info, const std::string& origin) {
  const std::size_t d = info.n_observables();
  const std::string where = "observed data '" + path + "'";
  std::vector<double> values;
  std::string line;
  std::size_t line_number = 0;
  const std::vector<std::string> header = csv_header(in, line_number);
  if (in.bad()) throw InputError(where + " cannot be read: " + std::strerror(errno) + origin);
  if (header.empty()) throw InputError(where + " is empty: no header line" + origin);
  const std::vector<std::size_t> column_of =
      csv_columns(header, info, where + ", line " + std::to_string(line_number));
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const auto fields = split_csv(line);
    if (fields.size() != header.size())
      throw InputError(where + ", line " + std::to_string(line_number) + ": " +
                       std::to_string(fields.size()) + " fields, the header has " +
                       std::to_string(header.size()));
    for (std::size_t j = 0; j < d; ++j) {
      const std::string& field = fields[column_of[j]];
      char* end = nullptr;
      const double value = std::strtod(field.c_str(), &end);
      if (field.empty() || end != field.c_str() + field.size())
        throw InputError(where + ", line " + std::to_string(line_number) + ", column '" +
                         info.observables[j] + "': '" + field + "' is not a number");
      if (!std::isfinite(value))
        throw InputError(where + ", line " + std::to_string(line_number) + ", column '" +
                         info.observables[j] + "': " + field + " is not finite");
      values.push_back(value);
    }
  }
  if (in.bad()) throw InputError(where + " cannot be read: " + std::strerror(errno) + origin);
  return values;
}

Matrix read_observed(const std::string& path, const sims::SimulatorInfo& info, const std::string& dataset,
                     const std::string& origin) {
  const std::size_t d = info.n_observables();
  std::vector<double> values;
  const bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
  if (csv) {
    if (info.is_array())
      throw InputError("observed data '" + path + "' is a CSV file, but the observable '" +
                       info.observables[0] + "' of " + info.name + " is an array of shape " +
                       shape_text({info.observable_shape.begin(), info.observable_shape.end()}) +
                       ": give an HDF5 file (docs/formats.md, \"Observed data\")" + origin);
    if (!dataset.empty())
      throw InputError("observed data '" + path + "' is a CSV file: it holds one dataset, not '" + dataset +
                       "'" + origin);
    std::ifstream in(path);
    values = parse_observed_csv(in, path, info, origin);
  } else {
    // An observed-data file says so; anything else is read as a dataset file (and refused as one).
    bool observed_format = false;
    if (h5::is_hdf5(path)) {
      const h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
      const h5::Group root = file.root();
      observed_format =
          root.attribute_exists("format") && root.read_attribute<std::string>("format") == "nsbi-observed";
      if (observed_format) values = read_observed_group(path, root, info, dataset, origin);
    }
    if (!observed_format) {
      if (!dataset.empty())
        throw InputError("observed data '" + path +
                         "' is not an observed-data file (root attribute format = "
                         "\"nsbi-observed\"), so it has no dataset '" +
                         dataset + "'" + origin);
      values = read_dataset_file(path, info, origin);
    }
  }
  const std::size_t n = values.size() / d;
  if (n == 0) throw InputError("observed data '" + path + "' holds no events" + origin);
  Matrix x(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::observed"), n, d);
  auto host = Kokkos::create_mirror_view(x);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) host(i, j) = values[i * d + j];
  Kokkos::deep_copy(x, host);
  return x;
}

}  // namespace nsbi::inference
