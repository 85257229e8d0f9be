#include "nsbi/training/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include "nsbi/core/error.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/distributed/checkpoint.hpp"
#include "nsbi/kernels/adamw.hpp"
#include "nsbi/kernels/loss.hpp"
#include "nsbi/kernels/threads.hpp"
#include "nsbi/training/network.hpp"
#include "seeds.hpp"

namespace nsbi::training {
namespace {

using detail::high_bit;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The network's inputs for n examples: standardised x into columns [0, D), θ into [D, D + P).
void assemble(const kernels::Standardization& standardization, std::size_t n, const double* x,
              std::size_t n_x, const double* theta, std::size_t n_theta, const FloatMatrix& inputs,
              std::size_t first_row) {
  const FloatMatrix rows = Kokkos::subview(inputs, std::make_pair(first_row, first_row + n), Kokkos::ALL);
  kernels::standardize(standardization, ConstMatrix(x, n, n_x), 0, rows);
  kernels::standardize(standardization, ConstMatrix(theta, n, n_theta), n_x, rows);
}

std::uint64_t parameter_hash(const FloatVector& parameters) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a over the bytes
  const auto* bytes = reinterpret_cast<const unsigned char*>(parameters.data());
  for (std::size_t i = 0; i < parameters.extent(0) * sizeof(float); ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  return hash;
}

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
  MemberTrainer(const Communicator& group, const TrainingData& data, const Settings& settings,
                std::size_t member)
      : group_(group),
        data_(data),
        settings_(settings),
        member_(member),
        n_inputs_(data.n_observables() + data.n_parameters()),
        standardization_(data.statistics),
        sally_(settings.loss == Loss::sally),
        stream_(group, sally_ ? *data.reference : *data.dataset,
                settings.stream_options(member, sally_, (sally_ ? data.reference : data.dataset)->n_rows())),
        network_(make_network(settings.network, n_inputs_, settings.uses_score(), settings.device,
                              settings.precision)),
        evaluator_(make_network(settings.network, n_inputs_, settings.uses_score(), settings.device,
                                settings.precision)),
        bootstrap_seed_(detail::derive_seed(settings.member_seed(member), detail::bootstrap_weights)),
        n_parameters_(network_->n_parameters()),
        parameters_(make_float_vector("nsbi::train::parameters", n_parameters_)),
        reduced_(make_float_vector("nsbi::train::gradients", n_parameters_ + 2)),
        state_(n_parameters_) {
    if (!settings.marginal && !sally_)
      reference_stream_.emplace(group, *data.reference,
                                settings.stream_options(member, true, data.reference->n_rows()));
    const std::size_t n_x = data.n_observables();
    const std::size_t n_theta = data.n_parameters();
    const std::uint64_t local = stream_.local_batch_rows();
    // sally's steps hold reference rows only; the contrastive losses' each x with its own θ and its atoms;
    // the other losses' both classes.
    const std::uint64_t rows = sally_                   ? local
                               : settings.contrastive() ? (1 + settings.atoms()) * local
                                                        : 2 * local;
    buffers_ = ExampleBuffers("nsbi::train", rows, n_inputs_, n_theta, settings.uses_gold());
    for (std::uint64_t i = 0; i < rows; ++i) buffers_.labels(i) = i < local ? 1.0f : 0.0f;
    if (settings.uses_score()) {
      // ∂u/∂θ_p of the standardised inputs u: 1/scale in θ_p's column.
      directions_ = make_float_matrix("nsbi::train::directions", n_theta, n_inputs_);
      Kokkos::deep_copy(directions_, 0.0f);
      for (std::size_t p = 0; p < n_theta; ++p)
        directions_(p, n_x + p) = static_cast<float>(1.0 / standardization_.scale(n_x + p));
    }
    total_steps_ = settings.epochs * stream_.steps_per_epoch();
    if (settings.max_steps > 0) total_steps_ = std::min(total_steps_, settings.max_steps);
  }

  std::uint64_t total_steps() const { return total_steps_; }
  const distributed::ShardedBatchStream& stream() const { return stream_; }

  void start_fresh() { network_->initialise(settings_.member_seed(member_), parameters_); }

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
    LossParts parts = sally_                    ? sally_loss()
                      : settings_.contrastive() ? contrastive_loss()
                                                : classifier_loss();
    if (settings_.balance > 0.0) parts.main += balance_step();
    const FloatVector gradients = Kokkos::subview(reduced_, std::make_pair(std::size_t{0}, n_parameters_));
    backward(gradients);
    stop = allreduce(parts, stop);
    update(gradients);
    progress_.epoch_loss_sum += static_cast<double>(reduced_(n_parameters_));
    step_seconds_ += seconds_since(step_start);
    return true;
  }

  /// Wall time of this run's steps, and of their allreduces.
  double step_seconds() const { return step_seconds_; }
  std::string gemm_implementations() const { return network_->gemm_implementations(); }
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
  // A step of sally: the reference rows at θ0, the score term alone over every row.
  LossParts sally_loss() {
    const std::uint64_t n = class1_.n_rows;
    const auto batch = static_cast<double>(settings_.batch_size);
    theta0_rows(n);
    assemble(standardization_, n, class1_.x.data(), data_.n_observables(), theta0_rows_.data(),
             data_.n_parameters(), buffers_.inputs, 0);
    buffers_.fill_gold(0, n, class1_.gold.data(), data_.n_parameters(), data_.reference->gold_columns(),
                       1.0f);
    if (settings_.bootstrap)
      for (std::uint64_t i = 0; i < n; ++i)
        buffers_.score_weights(i) = bootstrap_weight(high_bit | class1_.rows[i]);
    return compute_loss(buffers_, false, batch, batch, *network_);
  }

  // A step of the other losses: the class-1 batch, then as many class-0 examples, weighted when bootstrapped.
  LossParts classifier_loss() {
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_theta = data_.n_parameters();
    assemble(standardization_, n, class1_.x.data(), data_.n_observables(), class1_.theta.data(), n_theta,
             buffers_.inputs, 0);
    if (settings_.uses_gold())
      buffers_.fill_gold(0, n, class1_.gold.data(), n_theta, data_.dataset->gold_columns(), 1.0f);
    const std::uint64_t* class0_rows = assemble_class0(n);
    if (settings_.bootstrap) weigh_bootstrap(n, class0_rows);
    const auto batch = static_cast<double>(settings_.batch_size);
    // The score term is a mean over the class-1 rows, half of the batch.
    return compute_loss(buffers_, settings_.bootstrap, batch, batch / 2, *network_);
  }

  // A step of nre_b or nre_c: rows [a·n, (a + 1)·n) of the examples pair the class-1 x with their own θ
  // (a = 0) and with atom a's θ; each example is weighted by its row's bootstrap weight.
  LossParts contrastive_loss() {
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    assemble(standardization_, n, class1_.x.data(), n_x, class1_.theta.data(), n_theta, buffers_.inputs, 0);
    for (std::size_t atom = 1; atom <= settings_.atoms(); ++atom) {
      atom_within_pieces(atom);
      assemble(standardization_, n, class1_.x.data(), n_x, atom_theta_.data(), n_theta, buffers_.inputs,
               atom * n);
    }
    if (settings_.bootstrap)
      for (std::uint64_t i = 0; i < n; ++i) buffers_.weights(i) = bootstrap_weight(class1_.rows[i]);
    // The mean is over the examples, half of the batch.
    const double examples = static_cast<double>(settings_.batch_size / 2);
    return compute_loss(buffers_, settings_.bootstrap, examples, examples, *network_);
  }

  // BNRE's penalty on this step: the ranks' sums of σ(s) over the pairs of each class, summed over the
  // group, give λ (mean_1 σ + mean_0 σ − 1)², whose gradient is added to the logits'. Returns the penalty on
  // the group's first rank and 0 on the others, so that the summed loss counts it once.
  double balance_step() {
    const std::uint64_t n = class1_.n_rows;
    const Pairs pairs = split_pairs(buffers_, n, settings_.bootstrap);
    double sums[2] = {kernels::sigmoid_sum(pairs.dependent, pairs.dependent_weights),
                      kernels::sigmoid_sum(pairs.independent, pairs.independent_weights)};
    group_.sum_in_place(sums, 2);
    const double dependent_pairs = static_cast<double>(settings_.batch_size / 2);
    const double independent_pairs = dependent_pairs * static_cast<double>(pairs.independent_per_example);
    const double means = sums[0] / dependent_pairs + sums[1] / independent_pairs;
    const double scale = 2.0 * settings_.balance * (means - 1.0);
    kernels::add_sigmoid_gradient(pairs.dependent, pairs.dependent_weights, scale / dependent_pairs,
                                  pairs.dependent_gradients);
    kernels::add_sigmoid_gradient(pairs.independent, pairs.independent_weights, scale / independent_pairs,
                                  pairs.independent_gradients);
    return group_.rank() == 0 ? balance_penalty(means) : 0.0;
  }

  // The logits of n examples' pairs in `b` by class, for the balancing penalty: class 1 (x with its own θ)
  // in rows [0, n); class 0 in the rest, n rows of carl (weighted by their own rows) or the n·K atom rows
  // of nre_c (weighted by their example's row).
  struct Pairs {
    FloatVector dependent, independent, dependent_gradients, independent_gradients;
    FloatVector dependent_weights, independent_weights;  // empty when unweighted
    std::size_t independent_per_example = 1;
  };
  Pairs split_pairs(const ExampleBuffers& b, std::uint64_t n, bool weighted) const {
    const auto first = std::make_pair(std::size_t{0}, std::size_t{n});
    const auto rest = std::make_pair(std::size_t{n}, b.logits.extent(0));
    Pairs p;
    p.dependent = Kokkos::subview(b.logits, first);
    p.independent = Kokkos::subview(b.logits, rest);
    p.dependent_gradients = Kokkos::subview(b.logit_gradients, first);
    p.independent_gradients = Kokkos::subview(b.logit_gradients, rest);
    p.independent_per_example = (b.logits.extent(0) - n) / n;
    if (weighted) {
      p.dependent_weights = Kokkos::subview(b.weights, first);
      p.independent_weights =
          settings_.contrastive() ? p.dependent_weights : FloatVector(Kokkos::subview(b.weights, rest));
    }
    return p;
  }

  // Rows [n, 2n) of the examples: the reference stream's next rows, or the class-1 rows' x shifted within
  // their pieces (reference: marginal). Returns the rows they come from (for their bootstrap weights).
  const std::uint64_t* assemble_class0(std::uint64_t n) {
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    if (!reference_stream_) {
      shift_within_pieces();
      assemble(standardization_, n, shifted_x_.data(), n_x, class1_.theta.data(), n_theta, buffers_.inputs,
               n);
      return shifted_rows_.data();
    }
    // The reference stream has its own epoch length: it starts its next epoch whenever it runs out.
    if (!reference_stream_->next(class0_)) reference_stream_->next(class0_);
    const double* class0_theta = class1_.theta.data();
    if (settings_.uses_gold()) {
      buffers_.fill_gold(n, n, class0_.gold.data(), n_theta, data_.reference->gold_columns(), 0.0f);
      // Paired with the θ its joint log ratio was evaluated at, where the file has it.
      if (data_.reference->has_gold_theta()) class0_theta = gold_theta(class0_);
    }
    assemble(standardization_, n, class0_.x.data(), n_x, class0_theta, n_theta, buffers_.inputs, n);
    return class0_.rows.data();
  }

  // The bootstrap weights of the n class-1 rows and the n class-0 rows of a step (and of the score term).
  void weigh_bootstrap(std::uint64_t n, const std::uint64_t* class0_rows) {
    for (std::uint64_t i = 0; i < n; ++i) {
      buffers_.weights(i) = bootstrap_weight(class1_.rows[i]);
      buffers_.weights(n + i) = bootstrap_weight(high_bit | class0_rows[i]);
      if (settings_.uses_score()) buffers_.score_weights(i) = buffers_.weights(i);
    }
  }

  // A row's Poisson(1) bootstrap weight: a pure function of the member and the row (class 0: high bit set).
  float bootstrap_weight(std::uint64_t row) const {
    rng::Stream draw(bootstrap_seed_, rng::Purpose::bootstrap, row);
    return static_cast<float>(rng::poisson(draw, 1.0));
  }

  // The parameter gradients of the step's loss into `gradients` (after compute_loss's forward pass).
  void backward(const FloatVector& gradients) {
    if (settings_.uses_score())
      network_->backward_with_tangents(parameters_, buffers_.logit_gradients, buffers_.tangent_gradients,
                                       gradients);
    else
      network_->backward(parameters_, buffers_.logit_gradients, gradients);
  }

  // The one allreduce of the step: the gradients, the batch loss and the ranks' stop requests, summed.
  // Returns whether any rank asked to stop.
  bool allreduce(const LossParts& parts, bool stop) {
    reduced_(n_parameters_) = static_cast<float>(parts.main + parts.score);
    reduced_(n_parameters_ + 1) = stop ? 1.0f : 0.0f;
    const auto allreduce_start = std::chrono::steady_clock::now();
    group_.sum_in_place(reduced_.data(), n_parameters_ + 2);
    allreduce_seconds_ += seconds_since(allreduce_start);
    return reduced_(n_parameters_ + 1) > 0.0f;
  }

  // AdamW on the summed gradients, at the schedule's learning rate.
  void update(const FloatVector& gradients) {
    kernels::AdamWConfig adamw;
    adamw.learning_rate = settings_.learning_rate_at(state_.step, total_steps_);
    adamw.weight_decay = settings_.weight_decay;
    kernels::adamw_step(adamw, state_, parameters_, gradients);
  }

  // The pairing draw of this rank's k-th piece of the step: uniform in [0, piece − 1), from the stream of
  // (member, step, shard), so that a piece pairs the same rows whatever the number of ranks.
  std::uint64_t piece_draw(std::uint64_t k, std::uint64_t piece) const {
    const std::uint64_t global_step = stream_.epoch() * stream_.steps_per_epoch() + stream_.step() - 1;
    const std::uint64_t seed = detail::derive_seed(settings_.member_seed(member_), detail::marginal_pairing);
    const std::uint64_t shard =
        static_cast<std::uint64_t>(group_.rank()) + k * static_cast<std::uint64_t>(group_.size());
    rng::Stream draw(seed, rng::Purpose::shuffle, global_step * settings_.n_shards + shard);
    return static_cast<std::uint64_t>(draw.uniform() * static_cast<double>(piece - 1));
  }

  // Rows of each shard's piece of a step: batch_size / 2 / n_shards.
  std::uint64_t piece_rows() const { return settings_.batch_size / 2 / settings_.n_shards; }

  // Atom `atom` (from 1) of the contrastive losses, into atom_theta_: within each shard's piece, θ of row
  // (i + offset) mod piece for the x of row i, offset = 1 + (draw + atom − 1) mod (piece − 1): the atoms of
  // a row are distinct rows other than its own (atoms() < piece).
  void atom_within_pieces(std::size_t atom) {
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_theta = data_.n_parameters();
    const std::uint64_t piece = piece_rows();
    atom_theta_.resize(n * n_theta);
    for (std::uint64_t first = 0, k = 0; first < n; first += piece, ++k) {
      const std::uint64_t offset = 1 + (piece_draw(k, piece) + atom - 1) % (piece - 1);
      for (std::uint64_t i = 0; i < piece; ++i)
        std::copy_n(class1_.theta.data() + (first + (i + offset) % piece) * n_theta, n_theta,
                    atom_theta_.data() + (first + i) * n_theta);
    }
  }

  // Class 0 of reference: marginal: within each shard's piece, x of row (i + shift) mod piece with θ of row
  // i, a random shift in [1, piece) per (step, shard): no row keeps its own θ (the draw of atom 1).
  void shift_within_pieces() {
    const std::uint64_t n = class1_.n_rows;
    const std::size_t n_x = data_.n_observables();
    const std::uint64_t piece = piece_rows();
    shifted_x_.resize(n * n_x);
    shifted_rows_.resize(n);
    for (std::uint64_t first = 0, k = 0; first < n; first += piece, ++k) {
      const std::uint64_t shift = 1 + piece_draw(k, piece);
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
                         Network& network) {
    if (settings_.uses_score())
      network.forward_with_tangents(parameters_, b.inputs, directions_, b.logits, b.tangents);
    else
      network.forward(parameters_, b.inputs, b.logits);
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
      case Loss::nre_b:
      case Loss::nre_c: {
        const std::size_t n = b.logits.extent(0) / (1 + settings_.atoms());
        const FloatVector example_weights =
            weighted ? FloatVector(Kokkos::subview(b.weights, std::make_pair(std::size_t{0}, n)))
                     : FloatVector();
        parts.main =
            settings_.loss == Loss::nre_b
                ? kernels::nre_b(b.logits, n, settings_.contrastive_classes, example_weights, main_norm,
                                 b.logit_gradients)
                : kernels::nre_c(b.logits, n, settings_.contrastive_classes, settings_.contrastive_gamma,
                                 example_weights, main_norm, b.logit_gradients);
        break;
      }
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
    // Per class (1, then 0): Σ main term, examples; then Σ score term (over class 1, or sally's rows); then
    // Σ σ(s) per class for the balancing penalty.
    double sums[7] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    const std::uint64_t capacity =
        stream_.local_batch_rows() * (settings_.contrastive() ? 1 + settings_.atoms() : 1);
    if (!validation_.inputs.data())
      validation_ = ExampleBuffers("nsbi::train::validation", capacity, n_inputs_, data_.n_parameters(),
                                   settings_.uses_gold());
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    if (sally_) {
      stream_.for_each_validation_batch([&](const distributed::Batch& batch) {
        const ExampleBuffers b = validation_.first(batch.n_rows);
        theta0_rows(batch.n_rows);
        assemble(standardization_, batch.n_rows, batch.x.data(), n_x, theta0_rows_.data(), n_theta, b.inputs,
                 0);
        b.fill_gold(0, batch.n_rows, batch.gold.data(), n_theta, data_.reference->gold_columns(), 1.0f);
        sums[4] += compute_loss(b, false, 1.0, 1.0, *evaluator_).score;
        sums[1] += static_cast<double>(batch.n_rows);
      });
      group_.sum_in_place(sums, 5);
      return sums[1] == 0.0 ? std::numeric_limits<double>::quiet_NaN() : sums[4] / sums[1];
    }
    if (settings_.contrastive()) return contrastive_validation_loss();
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
          const LossParts parts = compute_loss(b, false, 1.0, 1.0, *evaluator_);
          const std::size_t c = label == 1.0f ? 0 : 2;
          sums[c] += parts.main;
          sums[c + 1] += static_cast<double>(n);
          sums[4] += parts.score;
          if (settings_.balance > 0.0)
            sums[label == 1.0f ? 5 : 6] += kernels::sigmoid_sum(b.logits, FloatVector());
        });
    group_.sum_in_place(sums, 7);
    // Balanced like the training batches, whatever the held-out rows of each file.
    if (sums[1] == 0.0 || sums[3] == 0.0) return std::numeric_limits<double>::quiet_NaN();
    return 0.5 * (sums[0] / sums[1] + sums[2] / sums[3]) + sums[4] / sums[1] +
           balance_penalty(sums[5] / sums[1] + sums[6] / sums[3]);
  }

  // The validation loss of nre_b and nre_c: the loss over the held-out rows, each x with its own θ and its
  // atoms (for_each_contrastive_validation_example), plus the balancing penalty of the held-out pairs.
  double contrastive_validation_loss() {
    const std::size_t n_x = data_.n_observables();
    const std::size_t n_theta = data_.n_parameters();
    const std::size_t atoms = settings_.atoms();
    double sums[4] = {0.0, 0.0, 0.0, 0.0};  // Σ loss, examples, Σ σ(s) of class 1 and of class 0 pairs
    for_each_contrastive_validation_example(
        data_, stream_, atoms, [&](std::uint64_t n, const double* x, const double* theta) {
          const ExampleBuffers b = validation_.first((1 + atoms) * n);
          for (std::size_t a = 0; a <= atoms; ++a)
            assemble(standardization_, n, x, n_x, theta + a * n * n_theta, n_theta, b.inputs, a * n);
          sums[0] += compute_loss(b, false, 1.0, 1.0, *evaluator_).main;
          sums[1] += static_cast<double>(n);
          if (settings_.balance == 0.0) return;
          const Pairs pairs = split_pairs(b, n, false);
          sums[2] += kernels::sigmoid_sum(pairs.dependent, FloatVector());
          sums[3] += kernels::sigmoid_sum(pairs.independent, FloatVector());
        });
    group_.sum_in_place(sums, 4);
    if (sums[1] == 0.0) return std::numeric_limits<double>::quiet_NaN();
    return sums[0] / sums[1] +
           balance_penalty(sums[2] / sums[1] + sums[3] / (sums[1] * static_cast<double>(atoms)));
  }

  // λ (E_1[σ(s)] + E_0[σ(s)] − 1)² of the two classes' means (0 without balancing).
  double balance_penalty(double sum_of_means) const {
    return settings_.balance * (sum_of_means - 1.0) * (sum_of_means - 1.0);
  }

  const Communicator& group_;
  const TrainingData& data_;
  const Settings& settings_;
  std::size_t member_;
  std::size_t n_inputs_;  // the observables, then θ
  kernels::Standardization standardization_;
  bool sally_;  // the stream is the reference dataset's and the loss is the score term alone
  distributed::ShardedBatchStream stream_;  // class 1 (sally: the reference rows)
  std::optional<distributed::ShardedBatchStream> reference_stream_;
  std::unique_ptr<Network> network_;
  std::unique_ptr<Network>
      evaluator_;  // validation batches: other sizes, and it leaves the training buffers alone
  std::uint64_t bootstrap_seed_;
  FloatMatrix directions_;  // [P, D + P]: ∂(standardised inputs)/∂θ_p
  std::size_t n_parameters_;
  FloatVector parameters_;
  FloatVector reduced_;  // gradients, then the batch loss and the stop flag: summed in one allreduce
  kernels::AdamWState state_;
  ExampleBuffers buffers_;
  ExampleBuffers validation_;
  distributed::Batch class1_, class0_;
  std::vector<double> theta0_rows_, gold_theta_;
  std::vector<double> shifted_x_, atom_theta_;
  std::vector<std::uint64_t> shifted_rows_;
  distributed::TrainingCheckpoint progress_;  // history, early stopping and the epoch's running loss
  std::uint64_t total_steps_ = 0;
  bool stopped_early_ = false;
  double step_seconds_ = 0.0;
  double allreduce_seconds_ = 0.0;
};

}  // namespace

MemberRun train_member(const Communicator& group, const TrainingData& data, const Settings& settings,
                       std::size_t member, const std::string& checkpoint_path, const std::string& identity,
                       bool speaks, const ProgressFactory& progress_factory) {
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
  const std::unique_ptr<ProgressDisplay> progress =
      speaks && progress_factory ? progress_factory(who, trainer->total_steps() * settings.batch_size,
                                                    trainer->optimizer_step() * settings.batch_size)
                                 : nullptr;
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
    if (progress) progress->update(trainer->optimizer_step() * settings.batch_size);
    if (stop) {
      save(trainer->snapshot(identity));
      throw Interrupted("train: stopped by a signal; the checkpoints in '" +
                        std::filesystem::path(checkpoint_path).parent_path().string() +
                        "' are saved: run the same command to resume");
    }
    if (trainer->optimizer_step() % settings.checkpoint_every == 0) save(trainer->snapshot(identity));
  }
  // Stopped by max_steps inside an epoch: that partial epoch still gets its validation and history entry.
  if (steps_in_epoch > 0) {
    const std::string line = trainer->end_epoch(trainer->stream().epoch(), steps_in_epoch);
    if (speaks) log::info(who, ": ", line, " (max_steps reached)");
  }
  if (progress) progress->finish();
  save(trainer->final_snapshot(identity));
  return {trainer->optimizer_step() - first_step, trainer->step_seconds(), trainer->allreduce_seconds(),
          trainer->gemm_implementations()};
}

}  // namespace nsbi::training
