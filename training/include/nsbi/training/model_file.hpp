#pragma once
// The likelihood-ratio estimator and its file, model.h5 (docs/formats.md, "Model"): a trained classifier, or
// an ensemble of them, with everything needed to evaluate log r̂(x|θ,θ0) elsewhere (likelihood publishing):
// architecture, per-member weights, input standardisation, names and training ranges, reference, loss,
// history, diagnostics and provenance. scripts/nsbi_model.py reads the same file with numpy alone. Also the
// C++ evaluation of log r̂ from a model (an ensemble's log r̂ = log mean_k r̂_k).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/provenance.hpp"
#include "nsbi/kernels/mlp.hpp"
#include "nsbi/kernels/pairwise_evaluator.hpp"
#include "nsbi/kernels/standardize.hpp"
#include "nsbi/kernels/views.hpp"

namespace nsbi::training {

/// One member's training history: one entry per recorded point, the five arrays of equal length.
struct TrainingHistory {
  std::vector<std::int64_t> step;
  std::vector<std::int64_t> epoch;
  std::vector<double> train_loss;
  std::vector<double> validation_loss;
  std::vector<double> learning_rate;
};

/// A free-form float64 array of /diagnostics (calibration curve, E[r̂] on a θ grid, ...): row-major values
/// of the given shape (at least one dimension).
struct DiagnosticArray {
  std::vector<std::uint64_t> shape;
  std::vector<double> values;
};

/// Everything model.h5 holds. The network's inputs are the observables x, then the parameters θ
/// (input_order()), each standardised as (v − mean) / scale; its single output is the logit, log r̂.
struct ModelRecord {
  std::string simulator;
  std::vector<std::string> observable_names;  // D, or one name for an array observable
  /// An array observable's shape (an image: {1, 64, 64}), whose values flattened row-major are the first
  /// D = n_observables() inputs; empty for tabular x, one input per name.
  std::vector<std::size_t> observable_shape;
  std::vector<std::string> parameter_names;  // P
  std::vector<double> parameter_min;         // the training ranges [P], for refusing extrapolation
  std::vector<double> parameter_max;
  std::string reference;  // YAML: "theta: {mu2: 0, rho12: 0}" or "marginal"
  /// The proposal the training θ were drawn from: the dataset's `prior` attribute (YAML), the default prior
  /// of inference; "" in models written before nsbi recorded it.
  std::string proposal;
  std::string loss;       // train.loss: "carl", or a gold loss ("alices", ...; "sally" learns a score)
  double loss_alpha = 0;  // α of the score term (cascal, rascal, alices); 0 for the other losses
  std::string precision = "f32";  // train.precision: the element type of the training GEMMs' inputs

  kernels::MlpArchitecture architecture;      // n_inputs = D + P
  std::vector<double> standardization_mean;   // [D + P], in input order
  std::vector<double> standardization_scale;  // [D + P], positive
  std::vector<std::vector<float>> members;    // one flat parameter buffer per member (layout of mlp.hpp)
  std::vector<TrainingHistory> history;       // one per member
  std::map<std::string, DiagnosticArray> diagnostics;

  std::string config;  // the resolved campaign config (YAML)
  std::uint64_t seed = 0;
  Provenance provenance;
  std::string summary;  // the training run's train.json (JSON), restored from here if that file is lost

  std::size_t n_members() const { return members.size(); }
  /// Inputs that x takes: the product of observable_shape, or the number of observable names.
  std::size_t n_observables() const;
  /// observable_names then parameter_names: the names of the network's input columns (an array's one name
  /// standing for all its values).
  std::vector<std::string> input_order() const;
  /// What makes the record inconsistent (sizes, names, non-finite or out-of-order values), or "" if
  /// nothing does.
  std::string inconsistency() const;
  /// The members' network on standardised inputs, as kernels::PairwiseEvaluator takes it; InternalError for
  /// an inconsistent record.
  kernels::StandardizedEnsemble ensemble() const;
};

/// Collective over comm: rank 0 writes its record (the other ranks' records are not read: pass any) with
/// MPI_COMM_SELF, since a model is small and one writer needs no agreement on data, to path + ".partial",
/// sets `complete` to 1 last and renames the file to path, which therefore only ever names a complete
/// model. A file already at path is replaced: whether that is allowed (--force) is the caller's decision.
/// Every rank returns, or every rank throws the same error. An inconsistent record is an InternalError.
void write_model(const std::string& path, const Communicator& comm, const ModelRecord& record);

/// Reads and validates a model file; serial (any rank may call it alone). InputError naming the file for a
/// missing, foreign, unfinished (`complete` 0, or only a .partial there), truncated or inconsistent file.
ModelRecord read_model(const std::string& path);

/// The member index that selects the whole ensemble.
inline constexpr std::size_t all_members = std::numeric_limits<std::size_t>::max();

/// Evaluates log r̂(x_i|θ_i,θ0) of a model for rows of (x, θ): one member's logit, or the ensemble's
/// log mean_k exp(logit_k) (log-sum-exp, so no r̂_k overflows). The networks run in float32 (kernels::Mlp),
/// on rows standardised in double and rounded to float; results are double. Rows go through the networks
/// in blocks of at most 1024, so memory does not grow with the number of rows. Not thread-safe.
class LikelihoodRatioEstimator {
 public:
  explicit LikelihoodRatioEstimator(const ModelRecord& record);

  std::size_t n_members() const { return parameters_.size(); }
  std::size_t n_observables() const { return n_observables_; }
  std::size_t n_parameters() const { return n_parameters_; }

  /// out(i) = log r̂ for x [N, D] and theta [N, P]: of `member` alone, or of the ensemble (all_members).
  /// With the ensemble, a non-empty spread [N] receives the sample standard deviation of the members'
  /// log r̂_k (0 for one member): the estimator's uncertainty.
  void log_ratio(const ExecutionSpace& space, const ConstMatrix& x, const ConstMatrix& theta,
                 const Vector& out, std::size_t member = all_members, const Vector& spread = {});
  void log_ratio(const ConstMatrix& x, const ConstMatrix& theta, const Vector& out,
                 std::size_t member = all_members, const Vector& spread = {}) {
    log_ratio(ExecutionSpace(), x, theta, out, member, spread);
  }

  /// out(i, k) = log r̂ of member k, out [N, n_members()].
  void member_log_ratios(const ExecutionSpace& space, const ConstMatrix& x, const ConstMatrix& theta,
                         const Matrix& out);
  void member_log_ratios(const ConstMatrix& x, const ConstMatrix& theta, const Matrix& out) {
    member_log_ratios(ExecutionSpace(), x, theta, out);
  }

 private:
  /// Runs members [first, last) on rows [begin, begin + n) (n <= block size) into logits_(k, 0 .. n).
  void evaluate_block(const ExecutionSpace& space, const ConstMatrix& x, const ConstMatrix& theta,
                      std::size_t begin, std::size_t n, std::size_t first, std::size_t last);
  void check_shapes(const ConstMatrix& x, const ConstMatrix& theta, std::size_t out_rows) const;

  kernels::Mlp mlp_;
  kernels::Standardization standardization_;
  std::vector<FloatVector> parameters_;  // per member
  std::size_t n_observables_;
  std::size_t n_parameters_;
  FloatMatrix inputs_;  // [block, D + P]: the standardised rows of the current block
  FloatMatrix logits_;  // [n_members, block]: each member's logits of the current block
};

/// One-off evaluation: out(i) = log r̂ of `member` or of the ensemble (all_members), as
/// LikelihoodRatioEstimator(record).log_ratio(space, x, theta, out, member). Repeated evaluations should
/// keep an estimator, which keeps its buffers and oneDNN primitives.
void log_ratio(const ExecutionSpace& space, const ModelRecord& record, std::size_t member,
               const ConstMatrix& x, const ConstMatrix& theta, const Vector& out);
inline void log_ratio(const ModelRecord& record, std::size_t member, const ConstMatrix& x,
                      const ConstMatrix& theta, const Vector& out) {
  log_ratio(ExecutionSpace(), record, member, x, theta, out);
}

}  // namespace nsbi::training
