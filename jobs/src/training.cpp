#include "nsbi/jobs/training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/distributed/checkpoint.hpp"
#include "nsbi/jobs/progress.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/initialise.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/tangent_mlp.hpp"
#include "nsbi/kernels/threads.hpp"

namespace nsbi::jobs {
namespace {

constexpr double pi = 3.14159265358979323846;
constexpr std::uint64_t high_bit = std::uint64_t{1} << 63;
// The input standardisation is estimated from the leading rows of the dataset, in blocks.
constexpr std::uint64_t max_statistics_rows = std::uint64_t{1} << 20;
constexpr std::uint64_t statistics_block_rows = 4096;

// A seed for one use of a campaign or member seed: the Philox bits of a stream no sample index reaches.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t tag) {
  return rng::Stream(seed, rng::Purpose::initialise, high_bit | tag).next_u64();
}

// Tags of derive_seed: what each derived seed is for.
enum SeedTag : std::uint64_t {
  dataset_shuffle = 1,
  reference_shuffle,
  marginal_pairing,
  bootstrap_weights,
  dataset_split,
  reference_split,
  diagnostic_events,
  member_base = 1000
};

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

// The network's inputs for n examples: standardised x into columns [0, D), θ into [D, D + P).
void assemble(const kernels::Standardization& standardization, std::size_t n, const double* x,
              std::size_t n_x, const double* theta, std::size_t n_theta, const FloatMatrix& inputs,
              std::size_t first_row) {
  const FloatMatrix rows = Kokkos::subview(inputs, std::make_pair(first_row, first_row + n), Kokkos::ALL);
  kernels::standardize(standardization, ConstMatrix(x, n, n_x), 0, rows);
  kernels::standardize(standardization, ConstMatrix(theta, n, n_theta), n_x, rows);
}

// The gold θ of a batch whose gold rows are (log r, score [P], gold θ [P]): the θ each row's joint log ratio
// was evaluated at, contiguous in `out` [n_rows, P].
void copy_gold_theta(const distributed::Batch& batch, std::size_t n_theta, std::vector<double>& out) {
  const std::size_t gold_columns = 1 + 2 * n_theta;
  out.resize(batch.n_rows * n_theta);
  for (std::uint64_t i = 0; i < batch.n_rows; ++i)
    std::copy_n(batch.gold.data() + i * gold_columns + 1 + n_theta, n_theta, out.data() + i * n_theta);
}

std::uint64_t parameter_hash(const FloatVector& parameters) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a over the bytes
  const auto* bytes = reinterpret_cast<const unsigned char*>(parameters.data());
  for (std::size_t i = 0; i < parameters.extent(0) * sizeof(float); ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  return hash;
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

TrainSettings::TrainSettings(const config::Config& config)
    : seed(static_cast<std::uint64_t>(config.get<std::int64_t>("campaign.seed"))),
      marginal(config.get<std::string>("train.reference") == "marginal"),
      loss_name(config.get<std::string>("train.loss")),
      activation(kernels::activation_from_name(config.get<std::string>("train.activation"))),
      batch_size(static_cast<std::uint64_t>(config.get<std::int64_t>("train.batch_size"))),
      epochs(static_cast<std::uint64_t>(config.get<std::int64_t>("train.epochs"))),
      max_steps(static_cast<std::uint64_t>(config.get<std::int64_t>("train.max_steps"))),
      learning_rate(config.get<double>("train.learning_rate")),
      weight_decay(config.get<double>("train.weight_decay")),
      cosine(config.get<std::string>("train.lr_schedule") == "cosine"),
      warmup_steps(static_cast<std::uint64_t>(config.get<std::int64_t>("train.warmup_steps"))),
      patience(static_cast<std::uint64_t>(config.get<std::int64_t>("train.early_stopping_patience"))),
      validation_fraction(config.get<double>("train.validation_fraction")),
      memory_budget_bytes(static_cast<std::uint64_t>(config.get<std::int64_t>("train.memory_budget_mib"))
                          << 20),
      n_shards(static_cast<std::uint64_t>(config.get<std::int64_t>("train.n_shards"))),
      chunk_rows(static_cast<std::uint64_t>(config.get<std::int64_t>("train.chunk_rows"))),
      checkpoint_every(static_cast<std::uint64_t>(config.get<std::int64_t>("train.checkpoint_every"))),
      threads(static_cast<int>(config.get<std::int64_t>("train.threads"))),
      ensemble(static_cast<std::size_t>(config.get<std::int64_t>("train.ensemble"))),
      bootstrap(config.get<bool>("train.bootstrap")) {
  const std::vector<std::pair<std::string, Loss>> losses = {
      {"carl", Loss::carl},     {"rolr", Loss::rolr},     {"alice", Loss::alice}, {"cascal", Loss::cascal},
      {"rascal", Loss::rascal}, {"alices", Loss::alices}, {"sally", Loss::sally}};
  for (const auto& [name, value] : losses)
    if (name == loss_name) loss = value;
  if (loss == Loss::cascal || loss == Loss::rascal || loss == Loss::alices)
    alpha = config.get<double>("train.alpha");
  if (uses_gold() && marginal)
    config.fail("train.loss",
                "loss " + loss_name +
                    " needs the joint log ratio or score against a reference point θ0: use "
                    "train.reference: theta (the gold of the marginal p(x|θ)/p(x) is intractable)");
  if (uses_score() && activation == kernels::Activation::relu)
    config.fail("train.activation",
                "loss " + loss_name +
                    " has a score term, which differentiates the network twice: use a smooth activation "
                    "(silu, tanh or softplus), not relu");
  for (const std::int64_t width : config.get<std::vector<std::int64_t>>("train.hidden"))
    hidden.push_back(static_cast<std::size_t>(width));
  // Each class fills half of every step, and each half is cut into one piece per virtual shard.
  if (batch_size % (2 * n_shards) != 0)
    config.fail("train.batch_size",
                "must be a multiple of 2 x train.n_shards = " + std::to_string(2 * n_shards) +
                    " (half of each batch is class 1, and each half is split over the shards)");
  if (marginal && batch_size / (2 * n_shards) < 2)
    config.fail("train.batch_size",
                "reference: marginal pairs x and θ of different rows within each shard's " +
                    std::to_string(batch_size / (2 * n_shards)) +
                    " rows; it needs at least 2 per shard: raise batch_size or lower n_shards");
  if (patience > 0 && validation_fraction == 0.0)
    config.fail("train.early_stopping_patience",
                "early stopping needs held-out rows: set validation_fraction > 0 "
                "or early_stopping_patience: 0");
}

bool TrainSettings::uses_gold_ratio() const {
  return loss == Loss::rolr || loss == Loss::alice || loss == Loss::rascal || loss == Loss::alices;
}

bool TrainSettings::uses_score() const {
  return loss == Loss::cascal || loss == Loss::rascal || loss == Loss::alices || loss == Loss::sally;
}

std::uint64_t TrainSettings::member_seed(std::size_t member) const {
  return derive_seed(seed, member_base + member);
}

std::uint64_t TrainSettings::diagnostics_seed() const { return derive_seed(seed, diagnostic_events); }

distributed::StreamOptions TrainSettings::stream_options(std::size_t member, bool reference,
                                                         std::uint64_t n_rows) const {
  distributed::StreamOptions options;
  options.seed = derive_seed(member_seed(member), reference ? reference_shuffle : dataset_shuffle);
  // Every member holds out the same rows, so that the ensemble's diagnostics have held-out rows to use.
  options.split_seed = derive_seed(seed, reference ? reference_split : dataset_split);
  // sally's steps are all reference rows; every other loss fills half of each step from each class.
  options.batch_size = loss == Loss::sally ? batch_size : batch_size / 2;
  options.gold = uses_gold() && (reference || loss != Loss::sally);
  options.n_shards = n_shards;
  // Shards are dealt whole chunks and an epoch ends when the smallest shard runs out: about 16 chunks per
  // shard keep that imbalance small.
  constexpr std::uint64_t chunks_per_shard = 16;
  options.chunk_rows = chunk_rows != 0
                           ? chunk_rows
                           : std::clamp<std::uint64_t>(n_rows / (n_shards * chunks_per_shard), 64, 4096);
  options.memory_budget_bytes =
      marginal || loss == Loss::sally ? memory_budget_bytes : memory_budget_bytes / 2;
  options.validation_fraction = validation_fraction;
  return options;
}

double TrainSettings::learning_rate_at(std::uint64_t step, std::uint64_t total_steps) const {
  if (step < warmup_steps)
    return learning_rate * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (!cosine || total_steps <= warmup_steps) return learning_rate;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return learning_rate * 0.5 * (1.0 + std::cos(pi * std::min(progress, 1.0)));
}

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
      if (reference->parameter_names() != dataset.parameter_names() ||
          reference->observable_names() != dataset.observable_names())
        throw InputError("train: the reference dataset '" + reference->path() + "' has parameters " +
                         names(reference->parameter_names()) + " and observables " +
                         names(reference->observable_names()) + ", but the dataset '" + dataset.path() +
                         "' has " + names(dataset.parameter_names()) + " and " +
                         names(dataset.observable_names()) + "; both must come from the same simulator");
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

void check_training_gold(const Communicator& comm, const TrainingData& data, const TrainSettings& settings) {
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

namespace {

// The examples of one loss evaluation, in the networks' float32: inputs and labels, the bootstrap weights,
// the gold (joint log ratio, joint score and which rows carry the score term) and what the passes write.
struct ExampleBuffers {
  FloatMatrix inputs;
  FloatVector logits, labels, soft_labels, weights, logit_gradients;
  FloatVector log_r, score_weights;
  FloatMatrix scores, tangents, tangent_gradients;

  ExampleBuffers() = default;
  ExampleBuffers(const std::string& label, std::size_t rows, std::size_t n_inputs, std::size_t n_theta,
                 bool gold)
      : inputs(make_float_matrix(label + "::inputs", rows, n_inputs)),
        logits(make_float_vector(label + "::logits", rows)),
        labels(make_float_vector(label + "::labels", rows)),
        soft_labels(make_float_vector(label + "::soft_labels", gold ? rows : 0)),
        weights(make_float_vector(label + "::weights", rows)),
        logit_gradients(make_float_vector(label + "::logit_gradients", rows)),
        log_r(make_float_vector(label + "::log_r", gold ? rows : 0)),
        score_weights(make_float_vector(label + "::score_weights", gold ? rows : 0)),
        scores(make_float_matrix(label + "::scores", gold ? rows : 0, n_theta)),
        tangents(make_float_matrix(label + "::tangents", gold ? rows : 0, n_theta)),
        tangent_gradients(make_float_matrix(label + "::tangent_gradients", gold ? rows : 0, n_theta)) {}

  /// The first `n` rows of every buffer.
  ExampleBuffers first(std::size_t n) const {
    const auto rows = std::make_pair(std::size_t{0}, n);
    const bool gold = log_r.extent(0) > 0;
    const auto gold_rows = std::make_pair(std::size_t{0}, gold ? n : 0);
    ExampleBuffers b;
    b.inputs = Kokkos::subview(inputs, rows, Kokkos::ALL);
    b.logits = Kokkos::subview(logits, rows);
    b.labels = Kokkos::subview(labels, rows);
    b.soft_labels = Kokkos::subview(soft_labels, gold_rows);
    b.weights = Kokkos::subview(weights, rows);
    b.logit_gradients = Kokkos::subview(logit_gradients, rows);
    b.log_r = Kokkos::subview(log_r, gold_rows);
    b.score_weights = Kokkos::subview(score_weights, gold_rows);
    b.scores = Kokkos::subview(scores, gold_rows, Kokkos::ALL);
    b.tangents = Kokkos::subview(tangents, gold_rows, Kokkos::ALL);
    b.tangent_gradients = Kokkos::subview(tangent_gradients, gold_rows, Kokkos::ALL);
    return b;
  }

  /// Rows [first_row, first_row + n) of the gold from rows of a batch's gold [n, G]: log r and the score; the
  /// score term applies to the rows with a positive `score_weight`.
  void fill_gold(std::size_t first_row, std::uint64_t n, const double* gold, std::size_t n_theta,
                 std::size_t gold_columns, float score_weight) const {
    for (std::uint64_t i = 0; i < n; ++i) {
      const double* row = gold + i * gold_columns;
      log_r(first_row + i) = static_cast<float>(row[0]);
      for (std::size_t p = 0; p < n_theta; ++p) scores(first_row + i, p) = static_cast<float>(row[1 + p]);
      score_weights(first_row + i) = score_weight;
    }
  }
};

// The loss's two parts: the term on the logits (each class's mean, averaged) and the score term.
struct LossParts {
  double main = 0.0;
  double score = 0.0;
};

// One member's training state and loop.
class MemberTrainer {
 public:
  MemberTrainer(const Communicator& group, const TrainingData& data, const TrainSettings& settings,
                std::size_t member)
      : group_(group),
        data_(data),
        settings_(settings),
        member_(member),
        architecture_{data.n_observables() + data.n_parameters(), settings.hidden, settings.activation},
        standardization_(data.statistics),
        sally_(settings.loss == Loss::sally),
        stream_(group, sally_ ? *data.reference : *data.dataset,
                settings.stream_options(member, sally_, (sally_ ? data.reference : data.dataset)->n_rows())),
        mlp_(architecture_),
        evaluator_(architecture_),
        n_parameters_(architecture_.n_parameters()),
        parameters_(make_float_vector("nsbi::train::parameters", n_parameters_)),
        reduced_(make_float_vector("nsbi::train::gradients", n_parameters_ + 2)),
        state_(n_parameters_) {
    if (!settings.marginal && !sally_)
      reference_stream_.emplace(group, *data.reference,
                                settings.stream_options(member, true, data.reference->n_rows()));
    const std::size_t n_x = data.n_observables();
    const std::size_t n_theta = data.n_parameters();
    const std::uint64_t local = stream_.local_batch_rows();
    // sally's steps hold reference rows only; the other losses' hold both classes.
    const std::uint64_t rows = sally_ ? local : 2 * local;
    buffers_ = ExampleBuffers("nsbi::train", rows, architecture_.n_inputs, n_theta, settings.uses_gold());
    for (std::uint64_t i = 0; i < rows; ++i) buffers_.labels(i) = i < local ? 1.0f : 0.0f;
    if (settings.uses_score()) {
      tangent_mlp_.emplace(architecture_);
      tangent_evaluator_.emplace(architecture_);
      // ∂u/∂θ_p of the standardised inputs u: 1/scale in θ_p's column.
      directions_ = make_float_matrix("nsbi::train::directions", n_theta, architecture_.n_inputs);
      Kokkos::deep_copy(directions_, 0.0f);
      for (std::size_t p = 0; p < n_theta; ++p)
        directions_(p, n_x + p) = static_cast<float>(1.0 / standardization_.scale(n_x + p));
    }
    total_steps_ = settings.epochs * stream_.steps_per_epoch();
    if (settings.max_steps > 0) total_steps_ = std::min(total_steps_, settings.max_steps);
  }

  std::uint64_t total_steps() const { return total_steps_; }
  const distributed::ShardedBatchStream& stream() const { return stream_; }

  void start_fresh() {
    kernels::initialise_parameters(architecture_, settings_.member_seed(member_), parameters_);
  }

  void restore(const distributed::TrainingCheckpoint& c) {
    if (c.parameters.size() != n_parameters_)
      throw InputError("train: the checkpoint has " + std::to_string(c.parameters.size()) +
                       " parameters where this network has " + std::to_string(n_parameters_));
    std::copy(c.parameters.begin(), c.parameters.end(), parameters_.data());
    std::copy(c.first_moment.begin(), c.first_moment.end(), state_.first_moment.data());
    std::copy(c.second_moment.begin(), c.second_moment.end(), state_.second_moment.data());
    state_.step = c.optimizer_step;
    stream_.seek(c.epoch, c.step);
    if (reference_stream_) reference_stream_->seek(c.reference_epoch, c.reference_step);
    progress_ = c;
  }

  distributed::TrainingCheckpoint snapshot(const std::string& identity) const {
    distributed::TrainingCheckpoint c = progress_;
    c.identity = identity;
    c.parameters.assign(parameters_.data(), parameters_.data() + n_parameters_);
    c.first_moment.assign(state_.first_moment.data(), state_.first_moment.data() + n_parameters_);
    c.second_moment.assign(state_.second_moment.data(), state_.second_moment.data() + n_parameters_);
    c.optimizer_step = state_.step;
    c.epoch = stream_.epoch();
    c.step = stream_.step();
    if (reference_stream_) {
      c.reference_epoch = reference_stream_->epoch();
      c.reference_step = reference_stream_->step();
    }
    return c;
  }

  // The final parameters: the best epoch's with early stopping, else the last.
  distributed::TrainingCheckpoint final_snapshot(const std::string& identity) const {
    distributed::TrainingCheckpoint c = snapshot(identity);
    c.finished = true;
    if (settings_.patience > 0 && !c.best_parameters.empty()) c.parameters = c.best_parameters;
    c.best_parameters.clear();
    return c;
  }

  bool epochs_done() const { return stream_.epoch() >= settings_.epochs || stopped_early_; }
  bool steps_done() const { return settings_.max_steps > 0 && state_.step >= settings_.max_steps; }
  std::uint64_t optimizer_step() const { return state_.step; }

  /// One optimizer step; false at the end of an epoch (nothing trained, the stream moved on). `stop` is this
  /// rank's stop request, agreed on in the gradients' allreduce and returned in `stop`.
  bool step(bool& stop) {
    const auto step_start = std::chrono::steady_clock::now();
    if (!stream_.next(class1_)) return false;
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    const std::size_t gold_columns = data_.dataset->gold_columns();
    const auto batch = static_cast<double>(settings_.batch_size);
    const std::uint64_t seed = derive_seed(settings_.member_seed(member_), bootstrap_weights);
    const auto bootstrap_weight = [&](std::uint64_t row) {
      rng::Stream draw(seed, rng::Purpose::bootstrap, row);
      return static_cast<float>(rng::poisson(draw, 1.0));
    };
    LossParts parts;
    if (sally_) {
      // The reference rows at θ0: the score term alone, over every row.
      theta0_rows(n);
      assemble(standardization_, n, class1_.x.data(), n_x, theta0_rows_.data(), n_theta, buffers_.inputs, 0);
      buffers_.fill_gold(0, n, class1_.gold.data(), n_theta, data_.reference->gold_columns(), 1.0f);
      if (settings_.bootstrap)
        for (std::uint64_t i = 0; i < n; ++i)
          buffers_.score_weights(i) = bootstrap_weight(high_bit | class1_.rows[i]);
      parts = compute_loss(buffers_, false, batch, batch, mlp_, tangent_mlp_ ? &*tangent_mlp_ : nullptr);
    } else {
      assemble(standardization_, n, class1_.x.data(), n_x, class1_.theta.data(), n_theta, buffers_.inputs, 0);
      if (settings_.uses_gold()) buffers_.fill_gold(0, n, class1_.gold.data(), n_theta, gold_columns, 1.0f);
      const std::uint64_t* class0_rows = nullptr;
      if (reference_stream_) {
        // The reference stream has its own epoch length: it starts its next epoch whenever it runs out.
        if (!reference_stream_->next(class0_)) reference_stream_->next(class0_);
        const double* class0_theta = class1_.theta.data();
        if (settings_.uses_gold()) {
          const std::size_t reference_columns = data_.reference->gold_columns();
          buffers_.fill_gold(n, n, class0_.gold.data(), n_theta, reference_columns, 0.0f);
          // Paired with the θ its joint log ratio was evaluated at, where the file has it.
          if (data_.reference->has_gold_theta()) class0_theta = gold_theta(class0_);
        }
        assemble(standardization_, n, class0_.x.data(), n_x, class0_theta, n_theta, buffers_.inputs, n);
        class0_rows = class0_.rows.data();
      } else {
        shift_within_pieces();
        assemble(standardization_, n, shifted_x_.data(), n_x, class1_.theta.data(), n_theta, buffers_.inputs,
                 n);
        class0_rows = shifted_rows_.data();
      }
      if (settings_.bootstrap) {
        for (std::uint64_t i = 0; i < n; ++i) {
          buffers_.weights(i) = bootstrap_weight(class1_.rows[i]);
          buffers_.weights(n + i) = bootstrap_weight(high_bit | class0_rows[i]);
          if (settings_.uses_score()) buffers_.score_weights(i) = buffers_.weights(i);
        }
      }
      // The score term is a mean over the class-1 rows, half of the batch.
      parts = compute_loss(buffers_, settings_.bootstrap, batch, batch / 2, mlp_,
                           tangent_mlp_ ? &*tangent_mlp_ : nullptr);
    }
    const FloatVector gradients = Kokkos::subview(reduced_, std::make_pair(std::size_t{0}, n_parameters_));
    if (tangent_mlp_)
      tangent_mlp_->backward(parameters_, buffers_.logit_gradients, buffers_.tangent_gradients, gradients);
    else
      mlp_.backward(parameters_, buffers_.logit_gradients, gradients);
    reduced_(n_parameters_) = static_cast<float>(parts.main + parts.score);
    reduced_(n_parameters_ + 1) = stop ? 1.0f : 0.0f;
    const auto allreduce_start = std::chrono::steady_clock::now();
    group_.sum_in_place(reduced_.data(), n_parameters_ + 2);  // the one allreduce of the step
    allreduce_seconds_ += seconds_since(allreduce_start);
    stop = reduced_(n_parameters_ + 1) > 0.0f;

    kernels::AdamWConfig adamw;
    adamw.learning_rate = settings_.learning_rate_at(state_.step, total_steps_);
    adamw.weight_decay = settings_.weight_decay;
    kernels::adamw_step(adamw, state_, parameters_, gradients);
    progress_.epoch_loss_sum += static_cast<double>(reduced_(n_parameters_));
    step_seconds_ += seconds_since(step_start);
    return true;
  }

  /// Wall time of this run's steps, and of their allreduces.
  double step_seconds() const { return step_seconds_; }
  double allreduce_seconds() const { return allreduce_seconds_; }

  /// Closes an epoch of `steps` steps: validation loss, history, early stopping. Returns its log line.
  std::string end_epoch(std::uint64_t epoch, std::uint64_t steps) {
    const double train_loss =
        progress_.epoch_loss_sum / static_cast<double>(std::max<std::uint64_t>(steps, 1));
    const double validation = validation_loss();
    const double lr = settings_.learning_rate_at(state_.step == 0 ? 0 : state_.step - 1, total_steps_);
    progress_.history_step.push_back(static_cast<std::int64_t>(state_.step));
    progress_.history_epoch.push_back(static_cast<std::int64_t>(epoch));
    progress_.history_train_loss.push_back(train_loss);
    progress_.history_validation_loss.push_back(validation);
    progress_.history_learning_rate.push_back(lr);
    progress_.epoch_loss_sum = 0.0;
    if (std::isfinite(validation)) {
      if (progress_.best_parameters.empty() || validation < progress_.best_validation_loss) {
        progress_.best_validation_loss = validation;
        progress_.best_parameters.assign(parameters_.data(), parameters_.data() + n_parameters_);
        progress_.epochs_without_improvement = 0;
      } else {
        ++progress_.epochs_without_improvement;
      }
      stopped_early_ = settings_.patience > 0 && progress_.epochs_without_improvement >= settings_.patience;
    }
    std::ostringstream line;
    line << "epoch " << epoch + 1 << ": train loss " << train_loss << ", validation loss " << validation
         << ", learning rate " << lr << (stopped_early_ ? " (early stop: no improvement for " : "");
    if (stopped_early_) line << settings_.patience << " epochs)";
    return line.str();
  }

  /// Fails loudly if the ranks' parameters differ: they take identical steps by construction.
  void check_ranks_agree() const {
    const auto hash = static_cast<std::int64_t>(parameter_hash(parameters_) >> 1);
    if (group_.max(hash) != -group_.max(-hash))
      throw InternalError("train: the ranks' parameters diverged at step " + std::to_string(state_.step));
  }

  bool stopped_early() const { return stopped_early_; }

 private:
  // Class 0 of reference: marginal: within each shard's piece, x of row (i + shift) mod piece with θ of row
  // i, a random shift in [1, piece) per (step, shard): no row keeps its own θ, and a piece is the same rows
  // whatever the number of ranks.
  void shift_within_pieces() {
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_x = data_.n_observables();
    const std::uint64_t piece = settings_.batch_size / 2 / settings_.n_shards;
    const std::uint64_t global_step = stream_.epoch() * stream_.steps_per_epoch() + stream_.step() - 1;
    const std::uint64_t seed = derive_seed(settings_.member_seed(member_), marginal_pairing);
    shifted_x_.resize(n * n_x);
    shifted_rows_.resize(n);
    for (std::uint64_t first = 0, k = 0; first < n; first += piece, ++k) {
      const std::uint64_t shard =
          static_cast<std::uint64_t>(group_.rank()) + k * static_cast<std::uint64_t>(group_.size());
      rng::Stream draw(seed, rng::Purpose::shuffle, global_step * settings_.n_shards + shard);
      const auto shift = 1 + static_cast<std::uint64_t>(draw.uniform() * static_cast<double>(piece - 1));
      for (std::uint64_t i = 0; i < piece; ++i) {
        const std::uint64_t from = first + (i + shift) % piece;
        std::copy_n(class1_.x.data() + from * n_x, n_x, shifted_x_.data() + (first + i) * n_x);
        shifted_rows_[first + i] = class1_.rows[from];
      }
    }
  }

  // The loss of the examples in `b` (its forward pass included), the main term normalised by main_norm and
  // the score term by score_norm, with the gradients of both with respect to the logits and tangents.
  LossParts compute_loss(const ExampleBuffers& b, bool weighted, double main_norm, double score_norm,
                         kernels::Mlp& mlp, kernels::TangentMlp* tangent_mlp) {
    if (tangent_mlp != nullptr)
      tangent_mlp->forward(parameters_, b.inputs, directions_, b.logits, b.tangents);
    else
      mlp.forward(parameters_, b.inputs, b.logits);
    const FloatVector weights = weighted ? b.weights : FloatVector();
    LossParts parts;
    switch (settings_.loss) {
      case Loss::carl:
      case Loss::cascal:
        parts.main = kernels::bce_with_logits(b.logits, b.labels, weights, main_norm, b.logit_gradients);
        break;
      case Loss::rolr:
      case Loss::rascal:
        parts.main = kernels::rolr(b.logits, b.labels, b.log_r, weights, main_norm, b.logit_gradients);
        break;
      case Loss::alice:
      case Loss::alices:
        kernels::alice_labels(b.log_r, b.soft_labels);
        parts.main = kernels::bce_with_logits(b.logits, b.soft_labels, weights, main_norm, b.logit_gradients);
        break;
      case Loss::sally:
        Kokkos::deep_copy(b.logit_gradients, 0.0f);
        break;
    }
    if (settings_.uses_score())
      parts.score = kernels::score_mse(b.tangents, b.scores, b.score_weights, sally_ ? 1.0 : settings_.alpha,
                                       score_norm, b.tangent_gradients);
    return parts;
  }

  // θ0 repeated for n rows (sally's network inputs).
  void theta0_rows(std::uint64_t n) {
    const std::size_t n_theta = data_.n_parameters();
    theta0_rows_.resize(n * n_theta);
    for (std::uint64_t i = 0; i < n; ++i)
      std::copy(data_.theta0.begin(), data_.theta0.end(), theta0_rows_.begin() + i * n_theta);
  }

  // The gold θ of a batch's rows, contiguous.
  const double* gold_theta(const distributed::Batch& batch) {
    copy_gold_theta(batch, data_.n_parameters(), gold_theta_);
    return gold_theta_.data();
  }

  double validation_loss() {
    // Per class (1, then 0): Σ main term, examples; then Σ score term (over class 1, or sally's rows).
    double sums[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
    const std::uint64_t capacity = stream_.local_batch_rows();
    if (!validation_.inputs.data())
      validation_ = ExampleBuffers("nsbi::train::validation", capacity, architecture_.n_inputs,
                                   data_.n_parameters(), settings_.uses_gold());
    kernels::TangentMlp* tangent_evaluator = tangent_evaluator_ ? &*tangent_evaluator_ : nullptr;
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    if (sally_) {
      stream_.for_each_validation_batch([&](const distributed::Batch& batch) {
        const ExampleBuffers b = validation_.first(batch.n_rows);
        theta0_rows(batch.n_rows);
        assemble(standardization_, batch.n_rows, batch.x.data(), n_x, theta0_rows_.data(), n_theta, b.inputs,
                 0);
        b.fill_gold(0, batch.n_rows, batch.gold.data(), n_theta, data_.reference->gold_columns(), 1.0f);
        sums[4] += compute_loss(b, false, 1.0, 1.0, evaluator_, tangent_evaluator).score;
        sums[1] += static_cast<double>(batch.n_rows);
      });
      group_.sum_in_place(sums, 5);
      return sums[1] == 0.0 ? std::numeric_limits<double>::quiet_NaN() : sums[4] / sums[1];
    }
    for_each_validation_example(
        data_, stream_, reference_stream_ ? &*reference_stream_ : nullptr,
        [&](std::uint64_t n, const double* x, const double* theta, float label, const double* gold,
            const std::uint64_t*) {
          const ExampleBuffers b = validation_.first(n);
          assemble(standardization_, n, x, n_x, theta, n_theta, b.inputs, 0);
          Kokkos::deep_copy(b.labels, label);
          if (settings_.uses_gold()) {
            const distributed::DatasetReader& file = label == 1.0f ? *data_.dataset : *data_.reference;
            b.fill_gold(0, n, gold, n_theta, file.gold_columns(), label);
          }
          const LossParts parts = compute_loss(b, false, 1.0, 1.0, evaluator_, tangent_evaluator);
          const std::size_t c = label == 1.0f ? 0 : 2;
          sums[c] += parts.main;
          sums[c + 1] += static_cast<double>(n);
          sums[4] += parts.score;
        });
    group_.sum_in_place(sums, 5);
    // Balanced like the training batches, whatever the held-out rows of each file.
    if (sums[1] == 0.0 || sums[3] == 0.0) return std::numeric_limits<double>::quiet_NaN();
    return 0.5 * (sums[0] / sums[1] + sums[2] / sums[3]) + sums[4] / sums[1];
  }

  const Communicator& group_;
  const TrainingData& data_;
  const TrainSettings& settings_;
  std::size_t member_;
  kernels::MlpArchitecture architecture_;
  kernels::Standardization standardization_;
  bool sally_;  // the stream is the reference dataset's and the loss is the score term alone
  distributed::ShardedBatchStream stream_;  // class 1 (sally: the reference rows)
  std::optional<distributed::ShardedBatchStream> reference_stream_;
  kernels::Mlp mlp_;
  kernels::Mlp evaluator_;  // validation batches: other sizes, and it leaves the training buffers alone
  std::optional<kernels::TangentMlp> tangent_mlp_;  // for the losses with a score term, in place of mlp_
  std::optional<kernels::TangentMlp> tangent_evaluator_;
  FloatMatrix directions_;  // [P, D + P]: ∂(standardised inputs)/∂θ_p
  std::size_t n_parameters_;
  FloatVector parameters_;
  FloatVector reduced_;  // gradients, then the batch loss and the stop flag: summed in one allreduce
  kernels::AdamWState state_;
  ExampleBuffers buffers_;
  ExampleBuffers validation_;
  distributed::Batch class1_, class0_;
  std::vector<double> theta0_rows_, gold_theta_;
  std::vector<double> shifted_x_;
  std::vector<std::uint64_t> shifted_rows_;
  distributed::TrainingCheckpoint progress_;  // history, early stopping and the epoch's running loss
  std::uint64_t total_steps_ = 0;
  bool stopped_early_ = false;
  double step_seconds_ = 0.0;
  double allreduce_seconds_ = 0.0;
};

}  // namespace

MemberRun train_member(const Communicator& group, const TrainingData& data, const TrainSettings& settings,
                       std::size_t member, const std::string& checkpoint_path, const std::string& identity,
                       bool speaks) {
  std::optional<distributed::TrainingCheckpoint> checkpoint;
  group.agree([&] {
    checkpoint = distributed::read_checkpoint(checkpoint_path);
    if (checkpoint && checkpoint->identity != identity)
      throw ConfigError("train: the checkpoint '" + checkpoint_path +
                        "' is from another training config or dataset; run with --force to start over");
  });
  const std::string who = settings.ensemble > 1 ? "train member " + std::to_string(member) : "train";
  if (checkpoint && checkpoint->finished) {
    if (speaks) log::info(who, ": already trained (", checkpoint_path, ")");
    return {};
  }
  kernels::set_gemm_threads(settings.threads);
  std::optional<MemberTrainer> trainer;
  group.agree([&] { trainer.emplace(group, data, settings, member); });
  if (checkpoint) {
    trainer->restore(*checkpoint);
    if (speaks)
      log::info(who, ": resuming from '", checkpoint_path, "' at step ", trainer->optimizer_step(), " of ",
                trainer->total_steps());
  } else {
    trainer->start_fresh();
  }
  if (speaks)
    log::info(who, ": ", trainer->stream().training_rows(), " training rows, ",
              trainer->stream().validation_rows(), " held out; ", trainer->stream().steps_per_epoch(),
              " steps per epoch of ", settings.batch_size, " samples on ", group.size(), " rank(s)");

  const auto save = [&](const distributed::TrainingCheckpoint& c) {
    trainer->check_ranks_agree();
    group.agree([&] { distributed::write_checkpoint(checkpoint_path, c); }, /*root_only=*/true);
  };
  const std::uint64_t first_step = trainer->optimizer_step();
  Progress progress(who, trainer->total_steps() * settings.batch_size, "samples", speaks,
                    trainer->optimizer_step() * settings.batch_size);
  std::uint64_t steps_in_epoch = trainer->stream().step();
  while (!trainer->epochs_done() && !trainer->steps_done()) {
    bool stop = stop_requested();
    const std::uint64_t epoch = trainer->stream().epoch();
    if (!trainer->step(stop)) {
      const std::string line = trainer->end_epoch(epoch, steps_in_epoch);
      if (speaks) log::info(who, ": ", line);
      steps_in_epoch = 0;
      save(trainer->snapshot(identity));
      continue;
    }
    ++steps_in_epoch;
    progress.update(trainer->optimizer_step() * settings.batch_size);
    if (stop) {
      save(trainer->snapshot(identity));
      return {true, trainer->optimizer_step() - first_step, trainer->step_seconds(),
              trainer->allreduce_seconds()};
    }
    if (trainer->optimizer_step() % settings.checkpoint_every == 0) save(trainer->snapshot(identity));
  }
  // Stopped by max_steps inside an epoch: that partial epoch still gets its validation and history entry.
  if (steps_in_epoch > 0) {
    const std::string line = trainer->end_epoch(trainer->stream().epoch(), steps_in_epoch);
    if (speaks) log::info(who, ": ", line, " (max_steps reached)");
  }
  progress.finish();
  save(trainer->final_snapshot(identity));
  return {false, trainer->optimizer_step() - first_step, trainer->step_seconds(),
          trainer->allreduce_seconds()};
}

}  // namespace nsbi::jobs
