#include "nsbi/distributed/dataset_reader.hpp"

#include <algorithm>
#include <cmath>

namespace nsbi::distributed {
namespace {

constexpr const char* format_name = "nsbi-dataset";
constexpr std::int64_t newest_format_version = 1;

[[noreturn]] void refuse(const std::string& path, const std::string& problem) {
  throw InputError("nsbi::DatasetReader: '" + path + "' " + problem);
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

std::string list_text(const std::vector<std::string>& names) {
  std::string text = "(";
  for (std::size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text + ")";
}

// Opens /theta or /x and checks it is a float array [rows, columns] with columns >= 1; /x may also be an
// array observable [rows, shape...] (every extent >= 1).
h5::Dataset open_array(const std::string& path, const h5::Group& root, const std::string& name) {
  if (!root.exists(name))
    refuse(path, "has no dataset '/" + name + "' (docs/formats.md lists what it needs)");
  h5::Dataset array = root.open_dataset(name);
  const std::vector<hsize_t> dims = array.dims();
  if (dims.size() < 2 || (dims.size() > 2 && name != "x"))
    refuse(path, "has '/" + name + "' of shape " + shape_text(dims) +
                     (name == "x" ? "; it must be [rows, columns] or [rows, shape...] (an array observable)"
                                  : "; it must be 2-D [rows, columns]"));
  if (std::find(dims.begin() + 1, dims.end(), hsize_t{0}) != dims.end())
    refuse(path, "has '/" + name + "' of shape " + shape_text(dims) + ", with no values per row");
  const h5::DataType type = array.type();
  if (type != h5::DataType::float64 && type != h5::DataType::float32)
    refuse(path,
           "has '/" + name + "' of " + h5::to_string(type) + " elements; nsbi reads float64 or float32");
  return array;
}

std::vector<std::string> read_names(const std::string& path, const h5::Dataset& array,
                                    const std::string& expected) {
  if (!array.attribute_exists("names"))
    refuse(path, "has no attribute 'names' on '" + array.name() + "' (" + expected + ")");
  return array.read_attribute<std::vector<std::string>>("names");
}

std::vector<std::string> column_names(const std::string& path, const h5::Dataset& array) {
  const std::string& name = array.name();
  const hsize_t columns = array.dims()[1];
  std::vector<std::string> names =
      read_names(path, array, "one string per column: " + std::to_string(columns) + " expected");
  if (names.size() != columns)
    refuse(path, "has " + std::to_string(names.size()) + " entries in the 'names' of '" + name +
                     "', which has " + std::to_string(columns) + " columns");
  return names;
}

// /x's names, and its per-row shape when it is an array observable: more than two dimensions, or a 2-D /x
// with one name for several columns (a 1-D array). Tabular /x has one name per column and no shape.
std::vector<std::string> x_names(const std::string& path, const h5::Dataset& x,
                                 std::vector<std::size_t>& shape) {
  const std::vector<hsize_t> dims = x.dims();
  if (dims.size() == 2) {
    const std::vector<std::string> names = read_names(path, x, "one string per column, or one for an array");
    if (names.size() != 1 || dims[1] == 1) return column_names(path, x);
  }
  std::vector<std::string> names = read_names(path, x, "the array observable's one name");
  if (names.size() != 1)
    refuse(path, "has " + std::to_string(names.size()) +
                     " entries in the 'names' of '/x', an array of shape " + shape_text(dims) +
                     "; an array observable has one name");
  shape.assign(dims.begin() + 1, dims.end());
  return names;
}

// The root lists are optional copies of the per-array names; where present they must agree.
void check_root_names(const std::string& path, const h5::Group& root, const std::string& attribute,
                      const std::vector<std::string>& names, const std::string& array) {
  if (!root.attribute_exists(attribute)) return;
  const auto root_names = root.read_attribute<std::vector<std::string>>(attribute);
  if (root_names != names)
    refuse(path, "has root attribute '" + attribute + "' " + list_text(root_names) + " but '" + array +
                     "' names " + list_text(names));
}

std::string optional_text(const h5::Group& root, const std::string& attribute) {
  return root.attribute_exists(attribute) ? root.read_attribute<std::string>(attribute) : std::string();
}

const char* non_finite_kind(double value) {
  if (std::isnan(value)) return "NaN";
  return std::signbit(value) ? "-Inf" : "+Inf";
}

}  // namespace

DatasetReader::DatasetReader(std::string path)
    : path_(std::move(path)), file_(h5::File::open(path_, MPI_COMM_SELF, h5::Access::read)) {
  const h5::Group root = file_.root();
  if (!root.attribute_exists("format"))
    refuse(path_, "is not an nsbi dataset: it has no root attribute 'format' = \"" +
                      std::string(format_name) + "\" (docs/formats.md describes the schema)");
  const auto format = root.read_attribute<std::string>("format");
  if (format != format_name)
    refuse(path_, "is not an nsbi dataset: its 'format' is \"" + format + "\", not \"" + format_name + "\"");
  if (root.attribute_exists("format_version")) {
    const auto version = root.read_attribute<std::int64_t>("format_version");
    if (version > newest_format_version)
      refuse(path_, "has format_version " + std::to_string(version) + "; this nsbi reads versions up to " +
                        std::to_string(newest_format_version));
  }
  if (!root.attribute_exists("complete"))
    refuse(path_, "has no root attribute 'complete' (1 once every row is written)");
  const auto complete = root.read_attribute<std::int64_t>("complete");
  if (complete != 1)
    refuse(path_, "is unfinished (complete = " + std::to_string(complete) +
                      "): the run writing it stopped before every row was in; run that command again to "
                      "resume it");

  theta_ = open_array(path_, root, "theta");
  x_ = open_array(path_, root, "x");
  const hsize_t theta_rows = theta_->dims()[0];
  const hsize_t x_rows = x_->dims()[0];
  if (theta_rows != x_rows)
    refuse(path_, "has " + std::to_string(theta_rows) + " rows in '/theta' but " + std::to_string(x_rows) +
                      " in '/x'; every row needs both");
  if (theta_rows == 0) refuse(path_, "is empty: '/theta' and '/x' have 0 rows");
  n_rows_ = theta_rows;
  parameter_names_ = column_names(path_, *theta_);
  observable_names_ = x_names(path_, *x_, observable_shape_);
  n_observables_ = 1;
  for (std::size_t i = 1; i < x_->dims().size(); ++i) n_observables_ *= x_->dims()[i];
  check_root_names(path_, root, "parameter_names", parameter_names_, "/theta");
  check_root_names(path_, root, "observable_names", observable_names_, "/x");
  simulator_ = optional_text(root, "simulator");
  prior_ = optional_text(root, "prior");
  open_gold(root);
  if (root.exists("progress") && root.open_group("progress").attribute_exists("block_rows")) {
    const auto block_rows = root.open_group("progress").read_attribute<std::int64_t>("block_rows");
    if (block_rows > 0) recorded_chunk_rows_ = std::min<std::uint64_t>(block_rows, n_rows_);
  }
}

void DatasetReader::read_rows(std::uint64_t begin, std::uint64_t count, double* theta, double* x) const {
  NSBI_ASSERT(begin <= n_rows_ && count <= n_rows_ - begin,
              "rows [" + std::to_string(begin) + ", +" + std::to_string(count) + ") beyond the " +
                  std::to_string(n_rows_) + " rows of " + path_);
  theta_->read_rows(begin, count, theta);
  x_->read_rows(begin, count, x);
}

void DatasetReader::open_gold(const h5::Group& root) {
  if (!root.exists("gold")) return;
  const h5::Group gold = root.open_group("gold");
  const std::vector<hsize_t> vector_shape = {n_rows_};
  const std::vector<hsize_t> matrix_shape = {n_rows_, parameter_names_.size()};
  const auto open = [&](const std::string& name, const std::vector<hsize_t>& shape) {
    if (!gold.exists(name))
      refuse(path_, "has a group '/gold' without '/gold/" + name +
                        "': gold needs /gold/log_r [N] and /gold/score [N, P] (docs/formats.md)");
    h5::Dataset array = gold.open_dataset(name);
    if (array.dims() != shape)
      refuse(path_, "has '/gold/" + name + "' of shape " + shape_text(array.dims()) + "; it must be " +
                        shape_text(shape) + " (one row per row of /theta)");
    const h5::DataType type = array.type();
    if (type != h5::DataType::float64 && type != h5::DataType::float32)
      refuse(path_, "has '/gold/" + name + "' of " + h5::to_string(type) +
                        " elements; nsbi reads float64 or float32");
    return array;
  };
  gold_log_r_ = open("log_r", vector_shape);
  gold_score_ = open("score", matrix_shape);
  if (gold.exists("theta")) gold_theta_ = open("theta", matrix_shape);
  if (!gold_log_r_->attribute_exists("theta0"))
    refuse(path_, "has no attribute 'theta0' on '/gold/log_r' (the reference point θ0 of log r(x, z|θ, θ0))");
  gold_theta0_ = gold_log_r_->read_attribute<std::vector<double>>("theta0");
  if (gold_theta0_.size() != parameter_names_.size())
    refuse(path_, "has " + std::to_string(gold_theta0_.size()) +
                      " values in the 'theta0' of '/gold/log_r' for " +
                      std::to_string(parameter_names_.size()) + " parameters");
}

void DatasetReader::read_gold(std::uint64_t begin, std::uint64_t count, double* gold) const {
  NSBI_ASSERT(has_gold(), "read_gold on '" + path_ + "', which has no gold");
  NSBI_ASSERT(begin <= n_rows_ && count <= n_rows_ - begin,
              "rows [" + std::to_string(begin) + ", +" + std::to_string(count) + ") beyond the " +
                  std::to_string(n_rows_) + " rows of " + path_);
  const std::size_t n_theta = n_parameters();
  const std::size_t width = gold_columns();
  std::vector<double> log_r(count);
  std::vector<double> matrix(count * n_theta);
  gold_log_r_->read_rows(begin, count, log_r.data());
  for (std::uint64_t row = 0; row < count; ++row) gold[row * width] = log_r[row];
  gold_score_->read_rows(begin, count, matrix.data());
  for (std::uint64_t row = 0; row < count; ++row)
    std::copy_n(matrix.data() + row * n_theta, n_theta, gold + row * width + 1);
  if (!gold_theta_) return;
  gold_theta_->read_rows(begin, count, matrix.data());
  for (std::uint64_t row = 0; row < count; ++row)
    std::copy_n(matrix.data() + row * n_theta, n_theta, gold + row * width + 1 + n_theta);
}

void DatasetReader::read_theta(std::uint64_t begin, std::uint64_t count, double* theta) const {
  NSBI_ASSERT(begin <= n_rows_ && count <= n_rows_ - begin,
              "rows [" + std::to_string(begin) + ", +" + std::to_string(count) + ") beyond the " +
                  std::to_string(n_rows_) + " rows of " + path_);
  theta_->read_rows(begin, count, theta);
}

std::string DatasetReader::observable_column(std::size_t column) const {
  if (observable_shape_.empty()) return observable_names_.at(column);
  std::vector<hsize_t> index(observable_shape_.size());
  for (std::size_t i = index.size(); i-- > 0;) {
    index[i] = column % observable_shape_[i];
    column /= observable_shape_[i];
  }
  return observable_names_[0] + shape_text(index);
}

void DatasetReader::check_observable_shape(const std::vector<std::size_t>& shape) const {
  if (shape == observable_shape_) return;
  const auto text = [](const std::vector<std::size_t>& extents) {
    return extents.empty() ? std::string("tabular (one column per name)")
                           : "an array of shape " + shape_text({extents.begin(), extents.end()});
  };
  refuse(path_, "has '/x' of shape " + shape_text(x_->dims()) + ": each row is " + text(observable_shape_) +
                    ", but the simulator's observable is " + text(shape));
}

std::uint64_t DatasetReader::hdf5_memory_bytes() const {
  // 1 MiB of chunk cache per array read and 4 MiB for the open file.
  const std::uint64_t arrays = 2 + (has_gold() ? 2 : 0) + (has_gold_theta() ? 1 : 0);
  const std::uint64_t caches = (arrays + 4) << 20;
  constexpr std::uint64_t index_bytes_per_chunk = 18 * 1024 / 32;  // of one array
  constexpr std::uint64_t metadata_cap = std::uint64_t{32} << 20;
  constexpr std::uint64_t assumed_chunk_rows = 4096;
  const std::uint64_t chunk_rows = recorded_chunk_rows_.value_or(assumed_chunk_rows);
  const std::uint64_t n_chunks = (n_rows_ + chunk_rows - 1) / chunk_rows;
  // An array observable's /x is chunked by fewer rows (DatasetWriter: x_chunk_rows): its own chunks count.
  const std::uint64_t x_chunk_rows = is_array() ? x_->chunk_rows() : 0;
  const std::uint64_t x_chunks = x_chunk_rows > 0 ? (n_rows_ + x_chunk_rows - 1) / x_chunk_rows : n_chunks;
  const std::uint64_t index_bytes = index_bytes_per_chunk * ((arrays - 1) * n_chunks + x_chunks);
  return caches + std::min(index_bytes, metadata_cap);
}

void DatasetReader::check_finite(const Communicator& comm, std::uint64_t memory_budget_bytes,
                                 const RowVisitor& visit) const {
  const std::uint64_t n_theta = n_parameters();
  const std::uint64_t n_x = n_observables();
  const std::uint64_t usable = memory_budget_bytes - std::min(memory_budget_bytes, hdf5_memory_bytes());
  const std::uint64_t n_gold = gold_columns();
  const std::uint64_t rows_per_read =
      std::max<std::uint64_t>(1, usable / ((n_theta + n_x + n_gold) * sizeof(double)));
  // Contiguous slices in rank order: the lowest failing rank (whose message agree() keeps) holds the first
  // offending row of the file.
  const auto size = static_cast<std::uint64_t>(comm.size());
  const auto rank = static_cast<std::uint64_t>(comm.rank());
  const std::uint64_t first = n_rows_ / size * rank + std::min(rank, n_rows_ % size);
  const std::uint64_t end = first + n_rows_ / size + (rank < n_rows_ % size ? 1 : 0);
  comm.agree([&] {
    const std::uint64_t capacity = std::min(rows_per_read, end - first);
    std::vector<double> theta(capacity * n_theta);
    std::vector<double> x(capacity * n_x);
    std::vector<double> gold(capacity * n_gold);
    for (std::uint64_t begin = first; begin < end; begin += capacity) {
      const std::uint64_t count = std::min(capacity, end - begin);
      read_rows(begin, count, theta.data(), x.data());
      if (n_gold > 0) read_gold(begin, count, gold.data());
      for (std::uint64_t row = 0; row < count; ++row) {
        const auto report = [&](const char* array, std::uint64_t column, const std::string& name,
                                double value) {
          throw InputError("nsbi::DatasetReader::check_finite: '" + path_ + "' row " +
                           std::to_string(begin + row) + " has " + non_finite_kind(value) + " in " + array +
                           " column " + std::to_string(column) + " ('" + name +
                           "'); nsbi never trains on non-finite values: fix or drop that row (the first such "
                           "row of the file)");
        };
        for (std::uint64_t c = 0; c < n_theta; ++c)
          if (!std::isfinite(theta[row * n_theta + c]))
            report("/theta", c, parameter_names_[c], theta[row * n_theta + c]);
        for (std::uint64_t c = 0; c < n_x; ++c)
          if (!std::isfinite(x[row * n_x + c])) report("/x", c, observable_column(c), x[row * n_x + c]);
        for (std::uint64_t c = 0; c < n_gold; ++c) {
          const double value = gold[row * n_gold + c];
          if (std::isfinite(value)) continue;
          if (c == 0) report("/gold/log_r", 0, "log_r", value);
          const std::uint64_t p = (c - 1) % n_theta;
          report(c <= n_theta ? "/gold/score" : "/gold/theta", p, parameter_names_[p], value);
        }
      }
      if (visit) visit(begin, count, theta.data(), x.data());
    }
  });
}

}  // namespace nsbi::distributed
