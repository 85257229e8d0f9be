#include "nsbi/training/data.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/signals.hpp"

namespace nsbi::training {
namespace {

// The input standardisation is estimated from the leading rows of the dataset, in blocks.
constexpr std::uint64_t max_statistics_rows = std::uint64_t{1} << 20;
constexpr std::uint64_t statistics_block_rows = 4096;

std::string point_text(const std::vector<std::string>& names, const double* values) {
  std::ostringstream out;
  out << "(";
  for (std::size_t p = 0; p < names.size(); ++p) out << (p ? ", " : "") << names[p] << " = " << values[p];
  return out.str() + ")";
}

// θ of the dataset's rows `rows` (any order) into theta [rows.size(), P], reading runs of consecutive rows.
void read_theta_at(const distributed::DatasetReader& reader, const std::vector<std::uint64_t>& rows,
                   double* theta) {
  const std::size_t n_theta = reader.n_parameters();
  for (std::size_t i = 0; i < rows.size();) {
    std::size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    reader.read_theta(rows[i], j - i, theta + i * n_theta);
    i = j;
  }
}

// The column statistics of rows of x [n, D] and θ [n, P], in input order (x then θ).
kernels::ColumnStatistics block_statistics(std::uint64_t n, const double* theta, std::size_t n_theta,
                                           const double* x, std::size_t n_x) {
  kernels::ColumnStatistics s;
  s.count = n;
  s.mean.assign(n_x + n_theta, 0.0);
  s.m2.assign(n_x + n_theta, 0.0);
  const auto value = [&](std::uint64_t row, std::size_t c) {
    return c < n_x ? x[row * n_x + c] : theta[row * n_theta + c - n_x];
  };
  for (std::size_t c = 0; c < n_x + n_theta; ++c) {
    double sum = 0.0;
    for (std::uint64_t row = 0; row < n; ++row) sum += value(row, c);
    s.mean[c] = sum / static_cast<double>(n);
    double m2 = 0.0;
    for (std::uint64_t row = 0; row < n; ++row)
      m2 += (value(row, c) - s.mean[c]) * (value(row, c) - s.mean[c]);
    s.m2[c] = m2;
  }
  return s;
}

}  // namespace

TrainingData scan_training_data(const Communicator& comm, const distributed::DatasetReader& dataset,
                                const distributed::DatasetReader* reference,
                                std::uint64_t memory_budget_bytes) {
  TrainingData data;
  data.dataset = &dataset;
  data.reference = reference;
  const std::size_t n_theta = dataset.n_parameters();
  const std::size_t n_x = dataset.n_observables();
  if (reference != nullptr) {
    comm.agree([&] {
      const auto names = [](const std::vector<std::string>& v) {
        std::string text;
        for (const auto& name : v) text += (text.empty() ? "" : ", ") + name;
        return "(" + text + ")";
      };
      // The observables' names, and an array's shape (tabular x has one value per name).
      const auto observables = [&](const distributed::DatasetReader& file) {
        std::string text = names(file.observable_names());
        if (!file.is_array()) return text;
        std::string shape;
        for (const auto extent : file.observable_shape())
          shape += (shape.empty() ? "" : ", ") + std::to_string(extent);
        return text + " of shape [" + shape + "]";
      };
      if (reference->parameter_names() != dataset.parameter_names() ||
          reference->observable_names() != dataset.observable_names() ||
          reference->observable_shape() != dataset.observable_shape())
        throw InputError("train: the reference dataset '" + reference->path() + "' has parameters " +
                         names(reference->parameter_names()) + " and observables " + observables(*reference) +
                         ", but the dataset '" + dataset.path() + "' has " +
                         names(dataset.parameter_names()) + " and " + observables(dataset) +
                         "; both must come from the same simulator");
    });
  }

  std::vector<double> range(2 * n_theta);  // -min and max per parameter, so that one max-reduction does both
  std::fill(range.begin(), range.end(), -std::numeric_limits<double>::infinity());
  // A signal stops the scans at the next block (they run inside agree: every rank learns of it there).
  const auto stop_scan = [](const distributed::DatasetReader& file) {
    if (stop_requested())
      throw Interrupted("train: stopped by a signal while scanning '" + file.path() +
                        "'; nothing was written: run the same command to start again");
  };
  dataset.check_finite(comm, memory_budget_bytes,
                       [&](std::uint64_t, std::uint64_t count, const double* theta, const double*) {
                         stop_scan(dataset);
                         for (std::uint64_t row = 0; row < count; ++row)
                           for (std::size_t p = 0; p < n_theta; ++p) {
                             range[p] = std::max(range[p], -theta[row * n_theta + p]);
                             range[n_theta + p] = std::max(range[n_theta + p], theta[row * n_theta + p]);
                           }
                       });
  // The standardisation: every rank summarises the same leading rows in the same blocks and order, so the
  // statistics are the same bits whatever the number of ranks (a merge across ranks would depend on it).
  const std::uint64_t statistics_rows = std::min(dataset.n_rows(), max_statistics_rows);
  std::vector<double> block_theta(statistics_block_rows * n_theta);
  std::vector<double> block_x(statistics_block_rows * n_x);
  for (std::uint64_t begin = 0; begin < statistics_rows; begin += statistics_block_rows) {
    const std::uint64_t count = std::min(statistics_block_rows, statistics_rows - begin);
    dataset.read_rows(begin, count, block_theta.data(), block_x.data());
    data.statistics.merge(block_statistics(count, block_theta.data(), n_theta, block_x.data(), n_x));
  }
  for (std::size_t p = 0; p < n_theta; ++p) {
    data.theta_min.push_back(-comm.max(range[p]));
    data.theta_max.push_back(comm.max(range[n_theta + p]));
  }

  if (reference != nullptr) {
    data.theta0.resize(n_theta);
    reference->read_theta(0, 1, data.theta0.data());
    reference->check_finite(
        comm, memory_budget_bytes,
        [&](std::uint64_t first, std::uint64_t count, const double* theta, const double*) {
          stop_scan(*reference);
          for (std::uint64_t row = 0; row < count; ++row)
            if (!std::equal(data.theta0.begin(), data.theta0.end(), theta + row * n_theta))
              throw InputError("train: the reference dataset '" + reference->path() + "' has θ = " +
                               point_text(reference->parameter_names(), theta + row * n_theta) + " in row " +
                               std::to_string(first + row) +
                               " but θ = " + point_text(reference->parameter_names(), data.theta0.data()) +
                               " in row 0; a reference dataset holds events of one point θ0 "
                               "(simulate.reference.theta)");
        });
  }
  return data;
}

void check_training_gold(const Communicator& comm, const TrainingData& data, const Settings& settings) {
  if (!settings.uses_gold()) return;
  comm.agree([&] {
    const auto require = [&](const distributed::DatasetReader* file, bool gold_theta) {
      const std::string why = "train.loss " + settings.loss_name + " needs ";
      if (file == nullptr) return;
      if (!file->has_gold())
        throw InputError("train: '" + file->path() + "' has no gold; " + why +
                         "the joint log ratio and score of every row: simulate with simulate.gold: true");
      if (file->gold_theta0() != data.theta0)
        throw InputError("train: the gold of '" + file->path() + "' is against θ0 = " +
                         point_text(file->parameter_names(), file->gold_theta0().data()) +
                         " but the reference dataset is at θ0 = " +
                         point_text(file->parameter_names(), data.theta0.data()) +
                         "; simulate both with the same simulate.reference.theta");
      if (gold_theta && !file->has_gold_theta())
        throw InputError(
            "train: the reference dataset '" + file->path() + "' has no /gold/theta; " + why +
            "each reference row's joint log ratio at the θ it is paired with (what nsbi simulate "
            "writes with simulate.gold: true)");
    };
    require(data.reference, settings.uses_gold_ratio());
    if (settings.loss != Loss::sally) require(data.dataset, false);
  });
}

void for_each_validation_example(const TrainingData& data,
                                 const distributed::ShardedBatchStream& dataset_stream,
                                 const distributed::ShardedBatchStream* reference_stream,
                                 const ExampleVisitor& visit) {
  const distributed::DatasetReader& dataset = *data.dataset;
  const std::uint64_t n_rows = dataset.n_rows();
  std::vector<std::uint64_t> partner_rows;
  std::vector<double> partner_theta;
  const auto pair_with = [&](const distributed::Batch& batch, std::uint64_t offset) {
    partner_rows.resize(batch.n_rows);
    for (std::uint64_t i = 0; i < batch.n_rows; ++i) partner_rows[i] = (batch.rows[i] + offset) % n_rows;
    partner_theta.resize(batch.n_rows * dataset.n_parameters());
    read_theta_at(dataset, partner_rows, partner_theta.data());
  };
  const auto gold_of = [](const distributed::Batch& batch) {
    return batch.gold.empty() ? nullptr : batch.gold.data();
  };
  dataset_stream.for_each_validation_batch([&](const distributed::Batch& batch) {
    visit(batch.n_rows, batch.x.data(), batch.theta.data(), 1.0f, gold_of(batch), batch.rows.data());
    if (reference_stream != nullptr) return;
    pair_with(batch, n_rows / 2);
    visit(batch.n_rows, batch.x.data(), partner_theta.data(), 0.0f, nullptr, batch.rows.data());
  });
  if (reference_stream == nullptr) return;
  const std::size_t n_theta = dataset.n_parameters();
  const std::size_t gold_columns = 1 + 2 * n_theta;
  reference_stream->for_each_validation_batch([&](const distributed::Batch& batch) {
    if (batch.gold.size() == batch.n_rows * gold_columns) {
      copy_gold_theta(batch, n_theta, partner_theta);
    } else {
      pair_with(batch, 0);
    }
    visit(batch.n_rows, batch.x.data(), partner_theta.data(), 0.0f, gold_of(batch), batch.rows.data());
  });
}

void for_each_contrastive_validation_example(const TrainingData& data,
                                             const distributed::ShardedBatchStream& dataset_stream,
                                             std::size_t atoms, const ContrastiveVisitor& visit) {
  const distributed::DatasetReader& dataset = *data.dataset;
  const std::uint64_t n_rows = dataset.n_rows();
  const std::size_t n_theta = dataset.n_parameters();
  std::vector<std::uint64_t> atom_rows;
  std::vector<double> theta;
  dataset_stream.for_each_validation_batch([&](const distributed::Batch& batch) {
    const std::uint64_t n = batch.n_rows;
    theta.resize((atoms + 1) * n * n_theta);
    std::copy(batch.theta.begin(), batch.theta.end(), theta.begin());
    atom_rows.resize(n);
    for (std::size_t a = 1; a <= atoms; ++a) {
      for (std::uint64_t i = 0; i < n; ++i)
        atom_rows[i] = (batch.rows[i] + a * (n_rows / (atoms + 1))) % n_rows;
      read_theta_at(dataset, atom_rows, theta.data() + a * n * n_theta);
    }
    visit(n, batch.x.data(), theta.data());
  });
}

void copy_gold_theta(const distributed::Batch& batch, std::size_t n_theta, std::vector<double>& out) {
  const std::size_t gold_columns = 1 + 2 * n_theta;
  out.resize(batch.n_rows * n_theta);
  for (std::uint64_t i = 0; i < batch.n_rows; ++i)
    std::copy_n(batch.gold.data() + i * gold_columns + 1 + n_theta, n_theta, out.data() + i * n_theta);
}

}  // namespace nsbi::training
