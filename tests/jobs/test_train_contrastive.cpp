// The contrastive losses of reference: marginal (nre_b, nre_c) and the balancing penalty in the train
// stage, on 1 and 2 ranks (docs/statistics.md, "Contrastive ratio estimation"):
//   - the loss curves on this communicator equal those of a single process, up to float summation order;
//   - ensemble members with bootstrap are the same bits whether groups of ranks train them in parallel or
//     one process trains them in turn;
//   - on gaussian2d (exact likelihood), with the same simulations, NRE-B's and NRE-C's log r̂ follow the
//     exact log likelihood's dependence on θ at fixed x at least as well as the binary classifier's.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <map>

#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/train_schema.hpp"
#include "nsbi/training/model_file.hpp"

namespace nsbi::jobs {
namespace {

// A gaussian2d campaign, θ uniform on the whole domain, reference: marginal; `overrides` as --set.
Campaign campaign_for(const std::string& dir, std::int64_t n, const std::vector<std::string>& overrides) {
  const std::string yaml = "campaign: {seed: 4242, dir: " + dir +
                           "}\n"
                           "simulator: {name: gaussian2d}\n"
                           "simulate: {n_samples: " +
                           std::to_string(n) +
                           ", block_size: 8192}\n"
                           "train:\n"
                           "  reference: marginal\n"
                           "  network: {head: {hidden: [64, 64, 64], activation: silu}}\n"
                           "  batch_size: 256\n"
                           "  learning_rate: 2e-3\n"
                           "  n_shards: 4\n"
                           "  diagnostics: {grid_points: 2, n_events: 500}\n";
  config::Config config = config::Config::parse(yaml, "test.yaml", overrides);
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance({"test"}, 1));
}

std::string scratch(const Communicator& world, const std::string& name) {
  return "/tmp/nsbi-test-train-contrastive-np" + std::to_string(world.size()) + "/" + name;
}

struct Trained {
  training::ModelRecord shared;
  training::ModelRecord alone;
};

// Trains `extra` on world and, on rank 0 alone, the same config on one process (the dataset shared).
Trained train_on_world_and_alone(const Communicator& world, const std::string& name,
                                 std::vector<std::string> extra) {
  const std::string dir = scratch(world, name);
  run_simulate(world, campaign_for(dir, 6000, extra), /*force=*/true);
  run_train(world, campaign_for(dir, 6000, extra), /*force=*/true);
  world.barrier();
  Trained trained;
  if (!world.is_root()) return trained;
  extra.push_back("train.dataset=" + dir + "/dataset.h5");
  run_train(Communicator(MPI_COMM_SELF), campaign_for(dir + "/alone", 6000, extra), /*force=*/true);
  trained.shared = training::read_model(dir + "/model.h5");
  trained.alone = training::read_model(dir + "/alone/model.h5");
  return trained;
}

void expect_same_curves(const Communicator& world, const Trained& t) {
  const auto& a = t.shared.history.at(0);
  const auto& b = t.alone.history.at(0);
  ASSERT_EQ(a.step, b.step);
  ASSERT_EQ(a.train_loss.size(), 3u);
  for (std::size_t e = 0; e < a.train_loss.size(); ++e) {
    if (world.size() == 1) {  // the same process twice: the same bits
      EXPECT_EQ(a.train_loss[e], b.train_loss[e]);
      EXPECT_EQ(a.validation_loss[e], b.validation_loss[e]);
      continue;
    }
    // The same examples and atoms in the same order; only the float sums of the gradient allreduce (and the
    // balancing sums, in double) round differently: ~1e-7 relative per step, amplified by ~100 steps of
    // training. Another pairing or a wrong normaliser moves the losses by 1e-2 or more.
    EXPECT_NEAR(a.train_loss[e], b.train_loss[e], 1e-4 * a.train_loss[e]) << "epoch " << e;
    EXPECT_NEAR(a.validation_loss[e], b.validation_loss[e], 1e-4 * a.validation_loss[e]) << "epoch " << e;
  }
}

TEST(TrainContrastive, LossCurvesDoNotDependOnTheNumberOfRanks) {
  const Communicator world;
  for (const std::vector<std::string>& loss :
       {std::vector<std::string>{"train.loss=nre_b"},
        std::vector<std::string>{"train.loss=nre_c", "train.contrastive_gamma=2", "train.balance=10"},
        std::vector<std::string>{"train.loss=carl", "train.balance=10"}}) {
    SCOPED_TRACE(loss[0]);
    std::vector<std::string> extra = loss;
    extra.insert(extra.end(),
                 {"train.epochs=3", "train.early_stopping_patience=0", "train.validation_fraction=0.2"});
    const Trained t = train_on_world_and_alone(world, "ranks", extra);
    if (world.is_root()) expect_same_curves(world, t);
  }
}

TEST(TrainContrastive, EnsembleMembersDoNotDependOnHowRankGroupsShareThem) {
  const Communicator world;
  const Trained t = train_on_world_and_alone(
      world, "ensemble", {"train.loss=nre_c", "train.epochs=2", "train.ensemble=2", "train.bootstrap=true"});
  if (!world.is_root()) return;
  ASSERT_EQ(t.shared.n_members(), 2u);
  EXPECT_EQ(t.shared.loss, "nre_c");
  // With 2 ranks each member trains on a group of one rank, as it does alone: the same bits.
  EXPECT_EQ(t.shared.members, t.alone.members);
  EXPECT_NE(t.shared.members[0], t.shared.members[1]);
}

// The combinations the trainer cannot run are ConfigErrors naming the key and the remedy.
TEST(TrainContrastive, RequirementsAreClearErrors) {
  const auto refusal = [](const std::vector<std::string>& overrides) {
    config::Config config = config::Config::parse(
        "campaign: {seed: 1, dir: /tmp/unused}\nsimulator: {name: gaussian2d}\n"
        "simulate: {reference: {theta: {mu2: 0, rho12: 0}}}\ntrain: {batch_size: 256, n_shards: 4}\n",
        "r.yaml", overrides);
    config.validate(campaign_schema(config));
    try {
      train_settings(config);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const auto expect_mentions = [](const std::string& what, const std::vector<std::string>& parts) {
    for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << part << ": " << what;
  };
  expect_mentions(refusal({"train.loss=nre_c"}), {"train.loss", "reference: marginal"});
  expect_mentions(refusal({"train.loss=nre_b", "train.reference=marginal", "train.contrastive_classes=1"}),
                  {"train.contrastive_classes", "at least 2"});
  // 256 / (2 × 4) = 32 rows per piece: 31 atoms fit, 32 do not.
  EXPECT_EQ(refusal({"train.loss=nre_b", "train.reference=marginal", "train.contrastive_classes=32"}),
            "accepted");
  expect_mentions(refusal({"train.loss=nre_c", "train.reference=marginal", "train.contrastive_classes=32"}),
                  {"train.contrastive_classes", "32 rows", "raise batch_size"});
  expect_mentions(refusal({"train.loss=nre_c", "train.reference=marginal", "train.contrastive_gamma=0"}),
                  {"train.contrastive_gamma", "positive"});
  expect_mentions(refusal({"train.loss=nre_b", "train.reference=marginal", "train.balance=100"}),
                  {"train.balance", "carl and nre_c"});
  EXPECT_EQ(refusal({"train.balance=100"}), "accepted");  // carl with either reference
}

// log p(x|θ) of gaussian2d.
double log_density(double mu2, double rho, double x1, double x2) {
  const double d2 = x2 - mu2;
  return -0.5 * (x1 * x1 + d2 * d2 - 2.0 * rho * x1 * d2) / (1.0 - rho * rho) -
         0.5 * std::log(1.0 - rho * rho) - std::log(2.0 * 3.14159265358979323846);
}

// The error of a model's θ-dependence at fixed x (benchmarks/contrastive_efficiency.py, centred_rms): on a
// 9 × 9 grid of θ, e(θ) = log r̂(x|θ) − log p(x|θ) less its mean under the exact posterior p(θ|x) of the grid,
// the root of the mean over x of its posterior-weighted square. Blind to a function of x alone.
double centred_rms(const training::ModelRecord& model, const std::vector<std::array<double, 2>>& events) {
  constexpr std::size_t g = 9;
  const std::size_t rows = events.size() * g * g;
  Matrix x = make_matrix("x", rows, 2);
  Matrix theta = make_matrix("theta", rows, 2);
  for (std::size_t e = 0, row = 0; e < events.size(); ++e)
    for (std::size_t a = 0; a < g; ++a)
      for (std::size_t b = 0; b < g; ++b, ++row) {
        x(row, 0) = events[e][0];
        x(row, 1) = events[e][1];
        theta(row, 0) = -1.0 + 2.0 * (a + 0.5) / g;
        theta(row, 1) = -0.99 + 1.98 * (b + 0.5) / g;
      }
  Vector learned("learned", rows);
  training::log_ratio(model, training::all_members, x, theta, learned);
  double total = 0.0;
  for (std::size_t e = 0; e < events.size(); ++e) {
    std::vector<double> exact(g * g), weight(g * g);
    double top = -INFINITY, norm = 0.0, mean = 0.0, square = 0.0;
    for (std::size_t j = 0; j < g * g; ++j) {
      const std::size_t row = e * g * g + j;
      exact[j] = log_density(theta(row, 0), theta(row, 1), x(row, 0), x(row, 1));
      top = std::max(top, exact[j]);
    }
    for (std::size_t j = 0; j < g * g; ++j) norm += weight[j] = std::exp(exact[j] - top);
    for (std::size_t j = 0; j < g * g; ++j) mean += weight[j] / norm * (learned(e * g * g + j) - exact[j]);
    for (std::size_t j = 0; j < g * g; ++j) {
      const double centred = learned(e * g * g + j) - exact[j] - mean;
      square += weight[j] / norm * centred * centred;
    }
    total += square;
  }
  return std::sqrt(total / static_cast<double>(events.size()));
}

TEST(TrainContrastive, FollowsTheExactLikelihoodAtLeastAsWellAsTheBinaryLoss) {
  const Communicator world;
  // What 2 ranks train is what 1 rank trains (the tests above): the accuracy is measured once.
  if (world.size() > 1) GTEST_SKIP() << "measured on 1 rank";
  const std::string dir = scratch(world, "accuracy");
  const std::vector<std::string> recipe = {"train.epochs=60", "train.max_steps=1500",
                                           "train.validation_fraction=0.2",
                                           "train.early_stopping_patience=10"};
  run_simulate(world, campaign_for(dir, 3000, recipe), /*force=*/true);
  std::map<std::string, double> error;
  // Fixed evaluation events x ~ p(x|θ), θ on a spread of points of the prior box.
  std::vector<std::array<double, 2>> events;
  for (int k = 0; k < 200; ++k) {
    const double mu = -0.9 + 1.8 * ((k * 37) % 200) / 199.0, rho = -0.9 + 1.8 * ((k * 91) % 200) / 199.0;
    const double z1 = std::sin(12.9898 * k) * 1.5, z2 = std::cos(78.233 * k) * 1.5;  // spread within ±1.5σ
    events.push_back({z1, mu + rho * z1 + std::sqrt(1.0 - rho * rho) * z2});
  }
  for (const std::string loss : {"carl", "nre_b", "nre_c"}) {
    std::vector<std::string> extra = recipe;
    extra.push_back("train.loss=" + loss);
    extra.push_back("train.output=" + loss + ".h5");
    run_train(world, campaign_for(dir, 3000, extra), /*force=*/true);
    if (world.is_root()) error[loss] = centred_rms(training::read_model(dir + "/" + loss + ".h5"), events);
  }
  // What a θ-blind estimate (log r̂ a function of x alone) misses: the same measure with log r̂ = 0.
  training::ModelRecord blind = training::read_model(dir + "/carl.h5");
  for (auto& member : blind.members) std::fill(member.begin(), member.end(), 0.0f);
  const double signal = world.is_root() ? centred_rms(blind, events) : 0.0;
  if (!world.is_root()) return;
  std::cout << "centred RMS: carl " << error["carl"] << ", nre_b " << error["nre_b"] << ", nre_c "
            << error["nre_c"] << " (signal " << signal << ")\n";
  // Tolerances. The seed-to-seed spread of one model's centred RMS is 6–8 % relative at 1e3 events and 3–8 %
  // at 1e4 (benchmarks/contrastive_efficiency.py, 3 seeds each), so the ratio of two models' varies by about
  // 10 %: "at least as well" is checked at 3.5 of those, 1.35. This build measures carl 0.241, nre_b 0.294,
  // nre_c 0.241. A θ-blind estimate misses the whole signal (0.645 here) and a loss with a wrong sign or
  // normaliser most of it: the absolute bound, 0.6 of the signal, fails them.
  for (const std::string loss : {"nre_b", "nre_c"}) {
    EXPECT_LT(error[loss], 1.35 * error["carl"]) << loss << " against carl " << error["carl"];
    EXPECT_LT(error[loss], 0.6 * signal) << loss;
  }
  EXPECT_LT(error["carl"], 0.6 * signal);
}

}  // namespace
}  // namespace nsbi::jobs
