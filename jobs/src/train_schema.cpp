#include "nsbi/jobs/train_schema.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <utility>

namespace nsbi::jobs {

namespace {

using config::Key;
using config::Type;

// What the model is trained on and what it learns: the datasets, the output, the loss and the network.
void declare_train_model(config::Schema& schema, const std::string& dataset, const std::string& reference) {
  schema.add(
      Key("train.dataset", Type::string, "training dataset (class 1: θ, x ~ p(x|θ)), inside campaign.dir")
          .with_default(YAML::Node(dataset)));
  schema.add(
      Key("train.reference", Type::string,
          "class 0: `theta` = x of reference_dataset (all at θ0) paired with θ of the dataset, so the logit "
          "learns log p(x|θ)/p(x|θ0); `marginal` = x and θ of the dataset shuffled apart (log p(x|θ)/p(x))")
          .with_default("theta")
          .one_of({"theta", "marginal"}));
  schema.add(Key("train.reference_dataset", Type::string,
                 "for reference: theta, the dataset of x ~ p(x|θ0), inside campaign.dir")
                 .with_default(YAML::Node(reference)));
  schema.add(Key("train.output", Type::string, "model file, inside campaign.dir").with_default("model.h5"));
  schema.add(
      Key("train.loss", Type::string,
          "`carl`: cross-entropy on the class labels; with the simulator's gold (simulate.gold): "
          "`rolr`, `alice`, and with the score term `cascal`, `rascal`, `alices`; `sally`: the score at "
          "θ0 only; with reference: marginal the contrastive `nre_b` and `nre_c` (docs/config.md, "
          "train.loss)")
          .with_default("carl")
          .one_of(training::loss_names()));
  schema.add(Key("train.alpha", Type::number,
                 "weight α of the score term α |t(x,z|θ) − ∇θ log r̂(x|θ)|² of cascal, rascal and alices")
                 .with_default("1")
                 .minimum(0));
  schema.add(Key("train.contrastive_classes", Type::integer,
                 "K: the θ each x is contrasted with in nre_b (its own and K − 1 others), the contrastive "
                 "classes of nre_c")
                 .with_default("5")
                 .minimum(1));
  schema.add(Key("train.contrastive_gamma", Type::number,
                 "γ of nre_c: the odds of a set of θ holding x's own against holding none of it")
                 .with_default("1")
                 .minimum(0));
  schema.add(Key("train.balance", Type::number,
                 "λ of the balancing penalty λ (E_1[σ(log r̂)] + E_0[σ(log r̂)] − 1)² (BNRE) for carl and "
                 "nre_c; 0: none")
                 .with_default("0")
                 .minimum(0));
  schema.add(Key("train.network.head.hidden", Type::integer_list,
                 "widths of the hidden layers of the head, the MLP that maps the inputs (x, θ) to log r̂")
                 .with_default("[64, 64, 64]")
                 .minimum(1));
  schema.add(Key("train.network.head.activation", Type::string, "the head's hidden-layer activation")
                 .with_default("relu")
                 .one_of({"relu", "silu", "tanh", "softplus"}));
  schema.add(Key("train.network.head.residual", Type::boolean,
                 "residual blocks: each hidden layer past the first adds its input to its output (the hidden "
                 "layers need one width)")
                 .with_default("false"));
  schema.add(Key("train.network.trunk", Type::map,
                 "reserved: a trunk before the head (a convolutional trunk for image observables); not "
                 "available yet")
                 .as_optional());
}

// How it is trained: the optimizer, its schedule, early stopping, the ensemble.
void declare_train_optimizer(config::Schema& schema) {
  schema.add(Key("train.batch_size", Type::integer,
                 "samples per optimizer step, both classes (half each), summed over all ranks")
                 .with_default("512")
                 .minimum(2));
  schema.add(
      Key("train.epochs", Type::integer, "passes over the training rows").with_default("20").minimum(1));
  schema.add(Key("train.max_steps", Type::integer, "stop after this many optimizer steps (0: no limit)")
                 .with_default("0")
                 .minimum(0));
  schema.add(
      Key("train.learning_rate", Type::number, "AdamW's peak learning rate").with_default("1e-3").minimum(0));
  schema.add(
      Key("train.weight_decay", Type::number, "AdamW's decoupled weight decay").with_default("0").minimum(0));
  schema.add(Key("train.lr_schedule", Type::string,
                 "learning rate over the steps: `constant`, or `cosine` decay to 0 at the last step")
                 .with_default("cosine")
                 .one_of({"constant", "cosine"}));
  schema.add(Key("train.warmup_steps", Type::integer, "steps of linear warm-up from 0 to learning_rate")
                 .with_default("0")
                 .minimum(0));
  schema.add(
      Key("train.early_stopping_patience", Type::integer,
          "stop after this many epochs without a lower validation loss and keep the best epoch's weights "
          "(0: train every epoch, keep the last)")
          .with_default("5")
          .minimum(0));
  schema.add(Key("train.validation_fraction", Type::number, "fraction of the rows held out for validation")
                 .with_default("0.1")
                 .minimum(0)
                 .maximum(0.5));
}

// How the data is read and the work run, and the diagnostics.
void declare_train_execution(config::Schema& schema) {
  schema.add(
      Key("train.memory_budget_mib", Type::integer,
          "memory for streaming the datasets, per rank group (docs/formats.md, \"How nsbi reads a dataset\")")
          .with_default("512")
          .minimum(8));
  schema.add(Key("train.n_shards", Type::integer,
                 "virtual shards of the data; the number of ranks training one model must divide it")
                 .with_default("16")
                 .minimum(1));
  schema.add(
      Key("train.chunk_rows", Type::integer,
          "rows per read, per shuffle unit and per validation-split unit (0: about 1/16 of a shard's rows, "
          "between 64 and 4096)")
          .with_default("0")
          .minimum(0));
  schema.add(
      Key("train.checkpoint_every", Type::integer, "optimizer steps between checkpoints (and every epoch)")
          .with_default("1000")
          .minimum(1));
  schema.add(Key("train.precision", Type::string,
                 "element type of the GEMMs' inputs: `f32`, or `bf16` (weights and activations rounded to "
                 "bfloat16, float accumulation, float master weights and optimizer state; needs AVX512-BF16 "
                 "or AMX)")
                 .with_default("f32")
                 .one_of({"f32", "bf16"}));
  schema.add(Key("train.threads", Type::integer, "GEMM threads per rank (flat MPI: 1 per core)")
                 .with_default("1")
                 .minimum(1));
  schema.add(
      Key("train.ensemble", Type::integer, "networks trained with different seeds (log r̂ = log mean r̂_k)")
          .with_default("1")
          .minimum(1)
          .maximum(256));
  schema.add(Key("train.bootstrap", Type::boolean,
                 "each ensemble member sees every row a Poisson(1) number of times (bootstrap)")
                 .with_default("false"));
  schema.add(Key("train.diagnostics.grid_points", Type::integer,
                 "θ grid points per continuous parameter for E_θ0[r̂] and the exact-ratio comparison")
                 .with_default("5")
                 .minimum(1)
                 .maximum(64));
  schema.add(Key("train.diagnostics.n_events", Type::integer, "events per θ grid point (and for calibration)")
                 .with_default("10000")
                 .minimum(10));
  schema.add(Key("train.diagnostics.tolerance", Type::number,
                 "the |E_θ0[r̂] − 1| the E[r̂] check accepts at a grid point (docs/statistics.md)")
                 .with_default("0.05")
                 .minimum(0.001)
                 .maximum(1));
}

}  // namespace

void declare_train(config::Schema& schema, const std::string& dataset, const std::string& reference) {
  declare_train_model(schema, dataset, reference);
  declare_train_optimizer(schema);
  declare_train_execution(schema);
}

namespace {

std::uint64_t get_count(const config::Config& config, const std::string& key) {
  return static_cast<std::uint64_t>(config.get<std::int64_t>(key));
}

// train.network: the head; a trunk is refused until one is implemented (training/network.hpp).
training::NetworkDescription network_description(const config::Config& config) {
  if (config.has("train.network.trunk"))
    config.fail("train.network.trunk",
                "not available yet: nsbi trains a head (an MLP on the observables and θ) alone; remove "
                "train.network.trunk (docs/config.md, \"The network\")");
  training::NetworkDescription network;
  for (const std::int64_t width : config.get<std::vector<std::int64_t>>("train.network.head.hidden"))
    network.head.hidden.push_back(static_cast<std::size_t>(width));
  network.head.activation = config.get<std::string>("train.network.head.activation");
  network.head.residual = config.get<bool>("train.network.head.residual");
  const std::vector<std::size_t>& hidden = network.head.hidden;
  if (network.head.residual &&
      std::adjacent_find(hidden.begin(), hidden.end(), std::not_equal_to<>()) != hidden.end())
    config.fail("train.network.head.residual",
                "residual blocks add a layer's input to its output, so the hidden layers need one width: "
                "train.network.head.hidden has different widths");
  return network;
}

// The contrastive losses' and the balancing penalty's combinations of keys.
void check_contrastive_settings(const config::Config& config, const training::Settings& s) {
  if (s.balance > 0.0 && s.loss != training::Loss::carl && s.loss != training::Loss::nre_c)
    config.fail("train.balance",
                "the balancing penalty applies to carl and nre_c, whose logit at the optimum is the "
                "normalised log r; loss " +
                    s.loss_name + " has none: set train.balance: 0");
  if (!s.contrastive()) return;
  if (!s.marginal)
    config.fail("train.loss", "loss " + s.loss_name +
                                  " contrasts each x with the θ of other rows (the marginal): use "
                                  "train.reference: marginal");
  if (s.loss == training::Loss::nre_b && s.contrastive_classes < 2)
    config.fail("train.contrastive_classes",
                "nre_b picks x's own θ among K candidates: K must be at least 2");
  if (s.loss == training::Loss::nre_c && s.contrastive_gamma == 0.0)
    config.fail("train.contrastive_gamma", "γ must be positive (the odds of the dependent set)");
  const std::uint64_t piece = s.batch_size / (2 * s.n_shards);
  if (s.atoms() > piece - 1)
    config.fail("train.contrastive_classes",
                "loss " + s.loss_name + " needs " + std::to_string(s.atoms()) +
                    " other rows' θ for each x within its shard's " + std::to_string(piece) +
                    " rows of a batch: raise batch_size, lower n_shards or lower contrastive_classes");
}

// What the schema alone cannot refuse: the combinations of keys the trainer needs.
void check_train_settings(const config::Config& config, const training::Settings& s) {
  if (s.uses_gold() && s.marginal)
    config.fail("train.loss",
                "loss " + s.loss_name +
                    " needs the joint log ratio or score against a reference point θ0: use "
                    "train.reference: theta (the gold of the marginal p(x|θ)/p(x) is intractable)");
  if (s.uses_score() && s.network.head.activation == "relu")
    config.fail("train.network.head.activation",
                "loss " + s.loss_name +
                    " has a score term, which differentiates the network twice: use a smooth activation "
                    "(silu, tanh or softplus), not relu");
  // Each class fills half of every step, and each half is cut into one piece per virtual shard.
  if (s.batch_size % (2 * s.n_shards) != 0)
    config.fail("train.batch_size",
                "must be a multiple of 2 x train.n_shards = " + std::to_string(2 * s.n_shards) +
                    " (half of each batch is class 1, and each half is split over the shards)");
  if (s.marginal && s.batch_size / (2 * s.n_shards) < 2)
    config.fail("train.batch_size",
                "reference: marginal pairs x and θ of different rows within each shard's " +
                    std::to_string(s.batch_size / (2 * s.n_shards)) +
                    " rows; it needs at least 2 per shard: raise batch_size or lower n_shards");
  check_contrastive_settings(config, s);
  const std::string unsupported = kernels::unsupported_reason(s.precision);
  if (!unsupported.empty()) config.fail("train.precision", unsupported);
  if (s.patience > 0 && s.validation_fraction == 0.0)
    config.fail("train.early_stopping_patience",
                "early stopping needs held-out rows: set validation_fraction > 0 "
                "or early_stopping_patience: 0");
}

}  // namespace

training::Settings train_settings(const config::Config& config) {
  training::Settings s;
  s.seed = static_cast<std::uint64_t>(config.get<std::int64_t>("campaign.seed"));
  s.marginal = config.get<std::string>("train.reference") == "marginal";
  s.loss_name = config.get<std::string>("train.loss");
  s.loss = training::loss_from_name(s.loss_name);
  if (s.loss == training::Loss::cascal || s.loss == training::Loss::rascal ||
      s.loss == training::Loss::alices)
    s.alpha = config.get<double>("train.alpha");
  s.contrastive_classes = static_cast<std::size_t>(config.get<std::int64_t>("train.contrastive_classes"));
  s.contrastive_gamma = config.get<double>("train.contrastive_gamma");
  s.balance = config.get<double>("train.balance");
  s.network = network_description(config);
  s.batch_size = get_count(config, "train.batch_size");
  s.epochs = get_count(config, "train.epochs");
  s.max_steps = get_count(config, "train.max_steps");
  s.learning_rate = config.get<double>("train.learning_rate");
  s.weight_decay = config.get<double>("train.weight_decay");
  s.cosine = config.get<std::string>("train.lr_schedule") == "cosine";
  s.warmup_steps = get_count(config, "train.warmup_steps");
  s.patience = get_count(config, "train.early_stopping_patience");
  s.validation_fraction = config.get<double>("train.validation_fraction");
  s.memory_budget_bytes = get_count(config, "train.memory_budget_mib") << 20;
  s.n_shards = get_count(config, "train.n_shards");
  s.chunk_rows = get_count(config, "train.chunk_rows");
  s.checkpoint_every = get_count(config, "train.checkpoint_every");
  s.threads = static_cast<int>(config.get<std::int64_t>("train.threads"));
  s.precision = *kernels::parse_precision(config.get<std::string>("train.precision"));  // one_of: known
  s.ensemble = static_cast<std::size_t>(config.get<std::int64_t>("train.ensemble"));
  s.bootstrap = config.get<bool>("train.bootstrap");
  s.diagnostics_grid_points = get_count(config, "train.diagnostics.grid_points");
  s.diagnostics_events = get_count(config, "train.diagnostics.n_events");
  s.diagnostics_tolerance = config.get<double>("train.diagnostics.tolerance");
  check_train_settings(config, s);
  return s;
}

}  // namespace nsbi::jobs
