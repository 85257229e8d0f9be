#pragma once
// Helpers for tests that run a stage in process (tests only): a campaign from YAML text, and the float64
// arrays of a results file read back.

#include <string>
#include <utility>
#include <vector>

#include "nsbi/core/hdf5.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::test {

/// The campaign of a config text, validated; `file` names it in error messages.
inline jobs::Campaign campaign_from_yaml(const std::string& yaml, const std::string& file) {
  config::Config config = config::Config::parse(yaml, file);
  config.validate(jobs::campaign_schema(config));
  return jobs::Campaign(std::move(config), collect_provenance({"test"}, 1));
}

/// Every value of the float64 array `name` of `group`, row-major.
inline std::vector<double> read_doubles(const h5::Group& group, const std::string& name) {
  const h5::Dataset dataset = group.open_dataset(name);
  std::size_t size = 1;
  const auto dims = dataset.dims();
  for (std::size_t i = 1; i < dims.size(); ++i) size *= dims[i];
  std::vector<double> out(dims[0] * size);
  dataset.read_rows(0, dims[0], out.data());
  return out;
}

}  // namespace nsbi::test
