#include "nsbi/inference/results_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "nsbi/core/error.hpp"

namespace nsbi::inference {

void write_array(h5::Group& group, const std::string& name, const std::vector<std::size_t>& shape,
                 const std::vector<double>& values) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  std::size_t count = 1;
  for (const auto n : shape) count *= n;
  NSBI_ASSERT(count == values.size() && !shape.empty(), "write_array: shape and values disagree for " + name);
  if (count == 0) return;
  h5::Dataset dataset = group.create_dataset(name, h5::DataType::float64, dims, dims[0]);
  dataset.write_rows(0, dims[0], values.data());
}

void write_results_group(const std::string& path, const std::string& stage, const ResultsStamp& stamp,
                         const std::function<void(h5::Group&)>& fill) {
  const std::string partial = path + ".partial";
  std::error_code error;
  std::filesystem::remove(partial, error);
  // An unfinished copy (a failed write: disk full) is of no use; after the rename nothing is left to remove.
  const struct PartialRemover {
    const std::string& path;
    ~PartialRemover() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  } remove_partial{partial};
  {
    std::optional<h5::File> file;
    if (std::filesystem::exists(path)) {
      std::filesystem::copy_file(path, partial, error);
      if (error) throw InputError("cannot copy '" + path + "' to '" + partial + "': " + error.message());
      file.emplace(h5::File::open(partial, MPI_COMM_SELF, h5::Access::read_write));
    } else {
      file.emplace(h5::File::create(partial, MPI_COMM_SELF));
    }
    {
      h5::Group root = file->root();
      if (root.exists(stage)) root.remove(stage);
      h5::Group group = root.create_group(stage);
      group.write_attribute("identity", stamp.identity);
      group.write_attribute("config", stamp.config);
      group.write_attribute("seed", static_cast<std::int64_t>(stamp.seed));
      group.write_attribute("nsbi_version", stamp.nsbi_version);
      group.write_attribute("created", stamp.created);
      group.write_attribute("command_line", stamp.command_line);
      group.write_attribute("precision", stamp.precision);
      group.write_attribute("gemm_implementation", stamp.gemm_implementation);
      fill(group);
      root.write_attribute("format", std::string("nsbi-results"));
      root.write_attribute("format_version", std::int64_t{1});
    }
    file->close();
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0)
    throw InputError("cannot rename '" + partial + "' to '" + path + "': " + std::strerror(errno));
}

}  // namespace nsbi::inference
