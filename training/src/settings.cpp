#include "nsbi/training/settings.hpp"

#include <algorithm>
#include <cmath>

#include "nsbi/core/error.hpp"
#include "seeds.hpp"

namespace nsbi::training {
namespace {

constexpr double pi = 3.14159265358979323846;

}  // namespace

const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names = {"carl",   "rolr",  "alice", "cascal", "rascal",
                                                 "alices", "sally", "nre_b", "nre_c"};
  return names;
}

Loss loss_from_name(const std::string& name) {
  const std::vector<std::string>& names = loss_names();
  const auto found = std::find(names.begin(), names.end(), name);
  NSBI_ASSERT(found != names.end(), "nsbi::training: no loss '" + name + "'");
  return static_cast<Loss>(found - names.begin());
}

bool Settings::uses_gold_ratio() const {
  return loss == Loss::rolr || loss == Loss::alice || loss == Loss::rascal || loss == Loss::alices;
}

bool Settings::uses_score() const {
  return loss == Loss::cascal || loss == Loss::rascal || loss == Loss::alices || loss == Loss::sally;
}

std::size_t Settings::atoms() const {
  NSBI_ASSERT(contrastive(), "nsbi::training: atoms of a loss that has none");
  return loss == Loss::nre_b ? contrastive_classes - 1 : contrastive_classes;
}

std::uint64_t Settings::member_seed(std::size_t member) const {
  return detail::derive_seed(seed, detail::member_base + member);
}

std::uint64_t Settings::diagnostics_seed() const {
  return detail::derive_seed(seed, detail::diagnostic_events);
}

distributed::StreamOptions Settings::stream_options(std::size_t member, bool reference,
                                                    std::uint64_t n_rows) const {
  distributed::StreamOptions options;
  options.seed = detail::derive_seed(member_seed(member),
                                     reference ? detail::reference_shuffle : detail::dataset_shuffle);
  // Every member holds out the same rows, so that the ensemble's diagnostics have held-out rows to use.
  options.split_seed = detail::derive_seed(seed, reference ? detail::reference_split : detail::dataset_split);
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

double Settings::learning_rate_at(std::uint64_t step, std::uint64_t total_steps) const {
  if (step < warmup_steps)
    return learning_rate * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (!cosine || total_steps <= warmup_steps) return learning_rate;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return learning_rate * 0.5 * (1.0 + std::cos(pi * std::min(progress, 1.0)));
}

}  // namespace nsbi::training
