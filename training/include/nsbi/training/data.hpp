#pragma once
// The data of a training (docs/formats.md, "Dataset"): the training set of class 1 (θ_i, x_i) and class 0
// (reference x paired with θ, or shuffled pairs), checked and summarised before any step, and the held-out
// examples the validation loss and the diagnostics use.

#include <cstdint>
#include <functional>
#include <vector>

#include "nsbi/core/communicator.hpp"
#include "nsbi/distributed/batch_stream.hpp"
#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/kernels/standardize.hpp"
#include "nsbi/training/settings.hpp"

namespace nsbi::training {

/// The data of a training: the datasets, checked, and the input standardisation.
struct TrainingData {
  const distributed::DatasetReader* dataset = nullptr;
  const distributed::DatasetReader* reference = nullptr;  // null for reference: marginal
  std::vector<double> theta0;            // the reference point, read from the reference dataset
  kernels::ColumnStatistics statistics;  // of the dataset's x then θ (the network's input order): of
                                         // its first 2^20 rows, the same bits on any number of ranks
  std::vector<double> theta_min;         // the training range of each parameter
  std::vector<double> theta_max;

  std::size_t n_observables() const { return dataset->n_observables(); }
  std::size_t n_parameters() const { return dataset->n_parameters(); }
};

/// Collective over `comm`: checks the datasets for non-finite values (InputError naming the first bad row),
/// checks that the reference dataset's names match the dataset's and that its θ is one point (θ0), and
/// gathers the θ ranges, reading at most `memory_budget_bytes` at a time; then the column statistics.
TrainingData scan_training_data(const Communicator& comm, const distributed::DatasetReader& dataset,
                                const distributed::DatasetReader* reference,
                                std::uint64_t memory_budget_bytes);

/// Collective over `comm`, for a loss that uses gold: InputError naming the file unless the dataset and the
/// reference dataset have gold against the reference dataset's θ0, and the reference dataset has the θ its
/// joint log ratios were evaluated at when the loss regresses them.
void check_training_gold(const Communicator& comm, const TrainingData& data, const Settings& settings);

/// Visits the held-out examples of class 1 (label 1: validation rows of the dataset) and of class 0 (label 0:
/// validation rows of the reference dataset, each paired with the θ of its gold when the streams carry gold
/// θ, else with the θ of the dataset row of the same index modulo its size; or for marginal, validation rows
/// of the dataset paired with the θ of the row half the dataset away). Rows [n, D] and [n, P], the gold
/// [n, G] of the x rows when the streams carry gold (else null), and the row of each x in its file; the
/// examples visited on all ranks together do not depend on the number of ranks.
using ExampleVisitor = std::function<void(std::uint64_t n, const double* x, const double* theta, float label,
                                          const double* gold, const std::uint64_t* x_rows)>;
void for_each_validation_example(const TrainingData& data,
                                 const distributed::ShardedBatchStream& dataset_stream,
                                 const distributed::ShardedBatchStream* reference_stream,
                                 const ExampleVisitor& visit);

/// Visits the held-out examples of a contrastive loss (nre_b, nre_c): the validation rows of the dataset,
/// each x with its own θ and `atoms` other θ, those of the rows a·⌊N/(atoms + 1)⌋ further on (modulo the N
/// rows of the file) for atom a = 1, ..., atoms. x [n, D] and theta [(atoms + 1)·n, P] in blocks of n rows,
/// block 0 the rows' own θ, block a atom a's; the examples visited on all ranks together do not depend on
/// the number of ranks.
using ContrastiveVisitor = std::function<void(std::uint64_t n, const double* x, const double* theta)>;
void for_each_contrastive_validation_example(const TrainingData& data,
                                             const distributed::ShardedBatchStream& dataset_stream,
                                             std::size_t atoms, const ContrastiveVisitor& visit);

/// The gold θ of a batch whose gold rows are (log r, score [P], gold θ [P]): the θ each row's joint log ratio
/// was evaluated at, contiguous in `out` [n_rows, P].
void copy_gold_theta(const distributed::Batch& batch, std::size_t n_theta, std::vector<double>& out);

}  // namespace nsbi::training
