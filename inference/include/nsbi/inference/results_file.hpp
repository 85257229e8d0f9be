#pragma once
// The results file results.h5 (docs/formats.md, "Results"): one group per inference stage, each stamped
// with what made it; a stage replaces its own group and keeps the others.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nsbi/core/hdf5.hpp"

namespace nsbi::inference {

/// What a stage's group records as attributes besides its values.
struct ResultsStamp {
  std::string identity;  // what decides the values (YAML text); a stage is skipped only when it matches
  std::string config;    // the resolved campaign YAML
  std::uint64_t seed = 0;
  std::string nsbi_version;
  std::string created;  // ISO 8601 UTC
  std::string command_line;
  std::string precision;            // of the network GEMMs' inputs: "f32" or "bf16"
  std::string gemm_implementation;  // oneDNN's, of the learned estimator's GEMMs ("" without one)
};

/// Serial (one rank): replaces the group `stage` of the results file `path` by what `fill` writes, with
/// `stamp`'s attributes, through a copy written to `path`.partial and renamed (the file is always whole;
/// a failed write removes the copy). The other groups are kept. InputError naming the file when it cannot
/// be copied or renamed; h5::Error when HDF5 fails.
void write_results_group(const std::string& path, const std::string& stage, const ResultsStamp& stamp,
                         const std::function<void(h5::Group&)>& fill);

/// A float64 dataset of the given shape in `group`; nothing for an array with no elements.
void write_array(h5::Group& group, const std::string& name, const std::vector<std::size_t>& shape,
                 const std::vector<double>& values);

}  // namespace nsbi::inference
