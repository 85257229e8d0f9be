#include "nsbi/inference/trained_model.hpp"

#include "nsbi/training/model_file.hpp"

namespace nsbi::inference {

TrainedModel TrainedModel::read(const std::string& path) {
  TrainedModel model;
  model.record_ = std::make_shared<const training::ModelRecord>(training::read_model(path));
  return model;
}

const std::string& TrainedModel::simulator() const { return record_->simulator; }
const std::vector<std::string>& TrainedModel::parameter_names() const { return record_->parameter_names; }
const std::vector<std::string>& TrainedModel::observable_names() const { return record_->observable_names; }
const std::vector<std::size_t>& TrainedModel::observable_shape() const { return record_->observable_shape; }
const std::string& TrainedModel::loss() const { return record_->loss; }
double TrainedModel::parameter_min(std::size_t p) const { return record_->parameter_min[p]; }
double TrainedModel::parameter_max(std::size_t p) const { return record_->parameter_max[p]; }
const std::string& TrainedModel::proposal() const { return record_->proposal; }
const std::string& TrainedModel::created() const { return record_->provenance.created_utc; }
std::uint64_t TrainedModel::seed() const { return record_->seed; }

std::unique_ptr<RatioEstimator> TrainedModel::estimator(kernels::Precision precision) const {
  return std::make_unique<LearnedEstimator>(*record_, precision);
}

}  // namespace nsbi::inference
