#pragma once
// The settings of a training, as plain values: what the trainer, the data pairing and the diagnostics read.
// The campaign's train section is converted into them by jobs (jobs/src/train_schema.cpp); a library user
// or a test fills them directly.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nsbi/distributed/batch_stream.hpp"
#include "nsbi/kernels/device.hpp"
#include "nsbi/kernels/precision.hpp"

namespace nsbi::training {

/// The loss (docs/config.md, train.loss): carl on the class labels; with the simulator's gold rolr and
/// alice, and with the score term cascal, rascal and alices; sally learns the score at θ0 alone; nre_b and
/// nre_c (reference: marginal) contrast each x with several θ of its shard's piece of the batch.
enum class Loss { carl, rolr, alice, cascal, rascal, alices, sally, nre_b, nre_c };

/// The loss of a name ("carl", ..., "sally"); InternalError for another name (the schema allows these).
Loss loss_from_name(const std::string& name);
/// The names loss_from_name accepts, in the order of Loss.
const std::vector<std::string>& loss_names();

/// The parametric head: an MLP on the inputs (the observables, or a trunk's features, then θ) whose one
/// output is the logit log r̂.
struct HeadDescription {
  std::vector<std::size_t> hidden;  // widths of the hidden layers
  std::string activation = "relu";  // relu, silu, tanh or softplus
  bool residual = false;            // residual blocks (kernels::MlpArchitecture::residual)
};

/// A network (docs/config.md, train.network): a head on the inputs. A trunk before the head (a
/// convolutional trunk for image observables) is where another network plugs in; none is available yet.
struct NetworkDescription {
  HeadDescription head;
};

struct Settings {
  std::uint64_t seed = 0;  // the campaign seed: every member's seed, shuffle and split derives from it
  bool marginal = false;   // reference: marginal (shuffled pairs) instead of a θ0 dataset
  Loss loss = Loss::carl;
  std::string loss_name = "carl";       // as written in model.h5 and train.json
  double alpha = 0;                     // weight of the score term (cascal, rascal, alices); 0 for the others
  std::size_t contrastive_classes = 5;  // K of nre_b (candidates per x) and nre_c (contrastive classes)
  double contrastive_gamma = 1.0;       // γ of nre_c: the odds of a set holding x's own θ
  double balance = 0.0;                 // λ of the balancing penalty (carl, nre_c); 0: none
  NetworkDescription network;
  std::uint64_t batch_size = 0;  // samples per step, both classes
  std::uint64_t epochs = 0;
  std::uint64_t max_steps = 0;  // 0: none
  double learning_rate = 0;
  double weight_decay = 0;
  bool cosine = false;
  std::uint64_t warmup_steps = 0;
  std::uint64_t patience = 0;
  double validation_fraction = 0;
  std::uint64_t memory_budget_bytes = 0;
  std::uint64_t n_shards = 0;
  std::uint64_t chunk_rows = 0;
  std::uint64_t checkpoint_every = 0;
  int threads = 1;
  std::size_t ensemble = 1;
  bool bootstrap = false;
  std::uint64_t diagnostics_grid_points = 0;  // θ grid points per continuous parameter
  std::uint64_t diagnostics_events = 0;       // events per θ grid point (and for calibration)
  double diagnostics_tolerance = 0;           // the |E_θ0[r̂] − 1| the E[r̂] check accepts
  // The seams: where the networks run and the element type of their GEMMs (make_network passes them on).
  kernels::Device device = kernels::Device::host;
  kernels::Precision precision = kernels::Precision::f32;

  /// Whether the loss regresses the joint log ratio (rolr, alice and their score-augmented forms): class 0
  /// rows are then paired with the θ their gold was evaluated at (/gold/theta of the reference dataset).
  bool uses_gold_ratio() const;
  /// Whether the loss has a score term: cascal, rascal, alices, and sally (the score term alone).
  bool uses_score() const;
  bool uses_gold() const { return loss != Loss::carl && !contrastive(); }
  /// Whether the loss contrasts each x with atoms: nre_b and nre_c.
  bool contrastive() const { return loss == Loss::nre_b || loss == Loss::nre_c; }
  /// The θ each x is paired with besides its own in a contrastive loss: K − 1 for nre_b, K for nre_c.
  std::size_t atoms() const;

  /// The seed of ensemble member k (its initial weights, shuffles, pairings and bootstrap weights).
  std::uint64_t member_seed(std::size_t member) const;
  /// The seed of the diagnostics' fresh events.
  std::uint64_t diagnostics_seed() const;
  /// The options of the stream of class-1 rows (reference = false) or of reference rows of a file of
  /// `n_rows`, for a member.
  distributed::StreamOptions stream_options(std::size_t member, bool reference, std::uint64_t n_rows) const;
  /// The learning rate of optimizer step `step` (0-based) out of `total_steps`.
  double learning_rate_at(std::uint64_t step, std::uint64_t total_steps) const;
};

}  // namespace nsbi::training
