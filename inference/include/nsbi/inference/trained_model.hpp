#pragma once
// A trained model (model.h5, docs/formats.md) as the inference stages use it: what it was trained for, the
// parameter range it was trained on, where it comes from, and learned estimators of it. The stages hold it
// without knowing the network inside.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/inference/estimator.hpp"

namespace nsbi::training {
struct ModelRecord;
}  // namespace nsbi::training

namespace nsbi::inference {

class TrainedModel {
 public:
  /// Reads and validates the model file `path`; serial. InputError naming the file for a missing, foreign,
  /// unfinished, truncated or inconsistent file.
  static TrainedModel read(const std::string& path);

  const std::string& simulator() const;
  const std::vector<std::string>& parameter_names() const;
  const std::vector<std::string>& observable_names() const;
  /// An array observable's shape (empty: tabular x).
  const std::vector<std::size_t>& observable_shape() const;
  const std::string& loss() const;  // "sally" learned a score, not a ratio
  /// The training range of parameter p.
  double parameter_min(std::size_t p) const;
  double parameter_max(std::size_t p) const;
  /// The proposal of its training data as YAML (sims::Proposal::to_yaml), "" when the model predates it.
  const std::string& proposal() const;
  /// When it was made (ISO 8601 UTC) and the seed it was trained with: part of a stage's identity.
  const std::string& created() const;
  std::uint64_t seed() const;

  /// A new learned estimator of the model (each owns its buffers: one per thread of work), its network
  /// GEMMs reading `precision`.
  std::unique_ptr<RatioEstimator> estimator(kernels::Precision precision) const;

 private:
  std::shared_ptr<const training::ModelRecord> record_;
};

}  // namespace nsbi::inference
