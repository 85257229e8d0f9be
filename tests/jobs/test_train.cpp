// The train stage in process on 1 and 2 ranks (docs/statistics.md, "What is learned"):
//   - on gaussian2d, whose likelihood is exact, the learned log r̂(x|θ,θ0) and the learned log p(x|θ)/p(x)
//     (reference: marginal) are close to the exact ones on fresh events;
//   - the loss curve on this communicator equals the one of a single process, up to float summation order;
//   - ensemble members (with bootstrap) are the same bits whether groups of ranks train them in parallel or
//     one process trains them in turn;
//   - the stage's profiling regions: the scan, the rank's members, the diagnostics, the model's write;
//   - train.precision: bf16 trains to f32's validation loss within its sampling error, its members are the
//     same bits however rank groups share them, and the model and train.json record it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "nsbi/distributed/dataset_reader.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/train_schema.hpp"
#include "nsbi/kernels/precision.hpp"
#include "nsbi/sims/registry.hpp"
#include "nsbi/training/diagnostics.hpp"
#include "nsbi/training/model_file.hpp"
#include "profiling_regions.hpp"

namespace nsbi::jobs {
namespace {

// A gaussian2d campaign of the lecture's setup (θ uniform on the whole domain, θ0 = (0, 0)) at reduced
// size; `overrides` are applied as --set would.
Campaign campaign_for(const std::string& dir, std::int64_t n, const std::vector<std::string>& overrides) {
  const std::string yaml = "campaign: {seed: 31337, dir: " + dir +
                           "}\n"
                           "simulator: {name: gaussian2d}\n"
                           "simulate:\n"
                           "  n_samples: " +
                           std::to_string(n) +
                           "\n"
                           "  block_size: 8192\n"
                           "  reference: {theta: {mu2: 0, rho12: 0}}\n"
                           "train:\n"
                           "  network: {head: {hidden: [64, 64, 64], activation: silu}}\n"
                           "  batch_size: 256\n"
                           "  learning_rate: 2e-3\n"
                           "  early_stopping_patience: 0\n"
                           "  n_shards: 4\n"
                           "  diagnostics: {grid_points: 3, n_events: 4000}\n";
  config::Config config = config::Config::parse(yaml, "test.yaml", overrides);
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance({"test"}, 1));
}

std::string scratch(const Communicator& world, const std::string& name) {
  return "/tmp/nsbi-test-train-np" + std::to_string(world.size()) + "/" + name;
}

// Exact log p(x|θ) for gaussian2d rows, for θ fixed.
double log_density(double mu2, double rho, double x1, double x2) {
  const double d2 = x2 - mu2;
  return -0.5 * (x1 * x1 + d2 * d2 - 2.0 * rho * x1 * d2) / (1.0 - rho * rho) -
         0.5 * std::log(1.0 - rho * rho) - std::log(2.0 * 3.14159265358979323846);
}

struct Comparison {
  double rms_error = 0;   // RMS of log r̂ − log r
  double rms_signal = 0;  // RMS of log r − mean(log r): what a θ-blind (constant) estimate would miss
};

// log r̂ of `model` against `exact(x, θ)` on n fresh events x ~ p(x|θ) at each of the points.
template <class Exact>
Comparison compare(const training::ModelRecord& model, const std::vector<std::array<double, 2>>& points,
                   std::size_t n, const Exact& exact) {
  const auto simulator = sims::make_simulator("gaussian2d");
  Matrix theta = make_matrix("theta", n, 2);
  Matrix x = make_matrix("x", n, 2);
  Vector log_r("log_r", n);
  double error2 = 0, signal2 = 0;
  for (std::size_t k = 0; k < points.size(); ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      theta(i, 0) = points[k][0];
      theta(i, 1) = points[k][1];
    }
    simulator->simulate(theta, x, 1000000 * (k + 1), 99);  // streams far from the training rows
    training::log_ratio(model, training::all_members, x, theta, log_r);
    std::vector<double> truth(n);
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) {
      truth[i] = exact(x(i, 0), x(i, 1), points[k][0], points[k][1]);
      mean += truth[i] / static_cast<double>(n);
      error2 += (log_r(i) - truth[i]) * (log_r(i) - truth[i]);
    }
    for (std::size_t i = 0; i < n; ++i) signal2 += (truth[i] - mean) * (truth[i] - mean);
  }
  const double count = static_cast<double>(n * points.size());
  return {std::sqrt(error2 / count), std::sqrt(signal2 / count)};
}

const std::vector<std::array<double, 2>> test_points = {{0.5, 0.5}, {-0.5, 0.3}, {0.2, -0.5}, {-0.3, -0.2}};

// Thresholds: with 3e4 rows per class the estimate is limited by their sampling noise (this build measures
// RMS 0.089 against a signal of 0.56, and 0.068 against 0.44 for the marginal); at 1e5 rows per class the
// full-size benchmark (benchmarks/train_accuracy.py) gets to ~0.05. A θ-blind or broken network misses the
// whole signal, a classifier that learns the proposal instead of the likelihood most of it: both fail both
// bounds, which leave room only for another build's rounding (another SIMD width changes the training path).
constexpr double max_rms_error = 0.12;
constexpr double max_fraction_of_signal = 0.25;

TEST(Train, LearnsTheExactLikelihoodRatio) {
  const Communicator world;
  const std::string dir = scratch(world, "exact");
  const Campaign campaign = campaign_for(dir, 30000, {"train.epochs=40", "train.learning_rate=5e-3"});
  run_simulate(world, campaign, /*force=*/true);
  run_train(world, campaign, /*force=*/true);
  if (!world.is_root()) return;
  const training::ModelRecord model = training::read_model(dir + "/model.h5");
  EXPECT_EQ(model.reference, "{theta: {mu2: 0, rho12: 0}}");
  const Comparison c = compare(model, test_points, 20000, [](double x1, double x2, double mu2, double rho) {
    return log_density(mu2, rho, x1, x2) - log_density(0.0, 0.0, x1, x2);
  });
  EXPECT_LT(c.rms_error, max_rms_error) << "signal RMS " << c.rms_signal;
  EXPECT_LT(c.rms_error, max_fraction_of_signal * c.rms_signal);

  // The diagnostics written with the model say the same, and E_θ0[r̂] ≈ 1 on the grid.
  const auto& exact = model.diagnostics.at("exact_log_ratio");
  ASSERT_EQ(exact.shape, (std::vector<std::uint64_t>{9, 5}));
  for (std::size_t k = 0; k < 9; ++k)
    EXPECT_LT(exact.values[k * 5 + 2], 2 * max_rms_error) << "grid point " << k;
  const auto& expected = model.diagnostics.at("expected_ratio");
  for (std::size_t k = 0; k < 9; ++k) {
    const double mean = expected.values[k * 5 + 2];
    const double standard_error = expected.values[k * 5 + 3];
    // The sampling error of the mean plus the estimator's own bias, a few percent at this size.
    EXPECT_NEAR(mean, 1.0, 5 * standard_error + 0.05) << "grid point " << k;
  }
}

// The E_θ0[r̂] check of a trained model `dir`/model.h5 with `shift` added to log r̂ (the output layer's
// bias), recomputed on `world` as the train stage does; and the model as read.
std::pair<training::TrainingDiagnostics, training::ModelRecord> expected_ratio_check(
    const Communicator& world, const Campaign& campaign, const std::string& dir, float shift) {
  training::ModelRecord model = training::read_model(dir + "/model.h5");
  const training::Settings settings = train_settings(campaign.config);
  const distributed::DatasetReader dataset(dir + "/dataset.h5");
  const distributed::DatasetReader reference(dir + "/reference.h5");
  const training::TrainingData data =
      training::scan_training_data(world, dataset, &reference, settings.memory_budget_bytes);
  training::ModelRecord shifted = model;
  shifted.members[0].back() += shift;  // the last parameter: the output layer's bias, added to log r̂
  return {training::training_diagnostics(world, data, settings, shifted, nullptr), std::move(model)};
}

// The check's verdict: a well-trained model is consistent with E_θ0[r̂] = 1 on the grid; the same model with
// log r̂ shifted by log 1.5 (r̂ 1.5 times too large everywhere, as a wrong normalisation would make it) fails.
// This build measures E[r̂] within 0.045 of 1 at every point, with standard errors up to 0.022 (so a
// tolerance of 0.1 is within the check's reach: 3.26 x 0.022 = 0.071), and 1.019 ± 0.0008 at θ ≈ θ0: beyond
// noise, within the tolerance. The shifted model is off by 0.43 or more.
TEST(Train, ExpectedRatioCheckSeparatesAGoodModelFromAWrongOne) {
  const Communicator world;
  const std::string dir = scratch(world, "check");
  const Campaign campaign = campaign_for(
      dir, 30000, {"train.epochs=40", "train.learning_rate=5e-3", "train.diagnostics.tolerance=0.1"});
  run_simulate(world, campaign, /*force=*/true);
  run_train(world, campaign, /*force=*/true);
  const auto [good, model] = expected_ratio_check(world, campaign, dir, 0.0f);
  const auto [wrong, unused] = expected_ratio_check(world, campaign, dir, std::log(1.5f));
  if (!world.is_root()) return;
  // Recomputed as the stage did: the same bits as the model's arrays.
  for (const char* name : {"expected_ratio", "expected_ratio_significance"})
    EXPECT_EQ(good.arrays.at(name).values, model.diagnostics.at(name).values) << name;
  // The stage's summary has these keys first, then those of exact_log_ratio (not recomputed here).
  const std::string keys = good.summary.dump(-1);
  EXPECT_NE(model.summary.find("\"diagnostics\": " + keys.substr(0, keys.size() - 1) + ", "),
            std::string::npos)
      << model.summary;
  const auto& z = model.diagnostics.at("expected_ratio_significance");
  ASSERT_EQ(z.shape, (std::vector<std::uint64_t>{9, 4}));
  for (std::size_t k = 0; k < 9; ++k)
    EXPECT_GE(z.values[4 * k + 3], 1000.0) << "effective events, point " << k;
  EXPECT_NE(good.summary.dump(-1).find("\"expected_ratio_verdict\": \"consistent\""), std::string::npos)
      << good.summary.dump(-1);
  EXPECT_NE(wrong.summary.dump(-1).find("\"expected_ratio_verdict\": \"failure\""), std::string::npos)
      << wrong.summary.dump(-1);
}

TEST(Train, MarginalReferenceLearnsTheLikelihoodToEvidenceRatio) {
  const Communicator world;
  const std::string dir = scratch(world, "marginal");
  const Campaign campaign =
      campaign_for(dir, 30000, {"train.epochs=40", "train.learning_rate=5e-3", "train.reference=marginal"});
  run_simulate(world, campaign, /*force=*/true);
  run_train(world, campaign, /*force=*/true);
  if (!world.is_root()) return;
  const training::ModelRecord model = training::read_model(dir + "/model.h5");
  EXPECT_EQ(model.reference, "marginal");
  // p(x) = ∫ p(x|θ) π(θ) dθ by the midpoint rule on 100 x 100 cells of the prior's box.
  const auto log_evidence = [](double x1, double x2) {
    constexpr int cells = 100;
    double sum = 0;
    for (int i = 0; i < cells; ++i)
      for (int j = 0; j < cells; ++j)
        sum +=
            std::exp(log_density(-1.0 + 2.0 * (i + 0.5) / cells, -0.99 + 1.98 * (j + 0.5) / cells, x1, x2));
    return std::log(sum / (cells * cells));
  };
  const Comparison c = compare(model, test_points, 2000, [&](double x1, double x2, double mu2, double rho) {
    return log_density(mu2, rho, x1, x2) - log_evidence(x1, x2);
  });
  EXPECT_LT(c.rms_error, max_rms_error) << "signal RMS " << c.rms_signal;
  EXPECT_LT(c.rms_error, max_fraction_of_signal * c.rms_signal);
}

// The models trained on the world and alone, and the nsbi profiling regions this rank opened in the world's
// run_train.
struct Trained {
  training::ModelRecord shared;
  training::ModelRecord alone;
  std::vector<std::string> regions;
};

// Trains `campaign` on world and, on rank 0 alone, the same config on one process (datasets shared).
Trained train_on_world_and_alone(const Communicator& world, const std::string& name,
                                 std::vector<std::string> extra) {
  const std::string dir = scratch(world, name);
  const Campaign campaign = campaign_for(dir, 12000, extra);
  run_simulate(world, campaign, /*force=*/true);
  Trained trained;
  {
    const test::RecordedRegions recorded;
    run_train(world, campaign, /*force=*/true);
    trained.regions = recorded.nsbi_events();
  }
  world.barrier();
  if (!world.is_root()) return trained;
  const Communicator self(MPI_COMM_SELF);
  extra.push_back("train.dataset=" + dir + "/dataset.h5");
  extra.push_back("train.reference_dataset=" + dir + "/reference.h5");
  const Campaign alone = campaign_for(dir + "/alone", 12000, extra);
  run_train(self, alone, /*force=*/true);
  trained.shared = training::read_model(dir + "/model.h5");
  trained.alone = training::read_model(dir + "/alone/model.h5");
  return trained;
}

// The train stage's profiling regions on a rank that trains `members` members of a whole ensemble.
std::vector<std::string> train_regions(std::size_t members) {
  std::vector<std::string> expected{"+nsbi/train/scan", "-"};
  for (std::size_t k = 0; k < members; ++k) expected.insert(expected.end(), {"+nsbi/train/member", "-"});
  expected.insert(expected.end(), {"+nsbi/train/diagnostics", "-", "+nsbi/train/write", "-"});
  return expected;
}

TEST(Train, LossCurveDoesNotDependOnTheNumberOfRanks) {
  const Communicator world;
  const auto [shared, alone, regions] = train_on_world_and_alone(
      world, "ranks", {"train.epochs=4", "train.batch_size=512", "train.validation_fraction=0.2"});
  EXPECT_EQ(regions, train_regions(1));  // one member, on one group of every rank
  if (!world.is_root()) return;
  const auto& a = shared.history.at(0);
  const auto& b = alone.history.at(0);
  ASSERT_EQ(a.step, b.step);
  ASSERT_EQ(a.train_loss.size(), 4u);
  for (std::size_t e = 0; e < a.train_loss.size(); ++e) {
    if (world.size() == 1) {
      // The same process twice: the same bits.
      EXPECT_EQ(a.train_loss[e], b.train_loss[e]);
      EXPECT_EQ(a.validation_loss[e], b.validation_loss[e]);
      continue;
    }
    // Same batches, same order; only the gradient sum (2 float partial sums instead of 1) and the loss sums
    // round differently, by ~1e-7 relative per step. Over the ~200 steps the dynamics amplify that, but a
    // different batch order or a wrong gradient scale changes the losses by 1e-2 or more.
    EXPECT_NEAR(a.train_loss[e], b.train_loss[e], 1e-4 * a.train_loss[e]) << "epoch " << e;
    EXPECT_NEAR(a.validation_loss[e], b.validation_loss[e], 1e-4 * a.validation_loss[e]) << "epoch " << e;
  }
}

TEST(Train, EnsembleMembersDoNotDependOnHowRankGroupsShareThem) {
  const Communicator world;
  const auto [shared, alone, regions] = train_on_world_and_alone(
      world, "ensemble",
      {"train.epochs=2", "train.ensemble=2", "train.bootstrap=true", "train.early_stopping_patience=1"});
  // One rank trains both members in turn, two ranks one each.
  EXPECT_EQ(regions, train_regions(2 / static_cast<std::size_t>(world.size())));
  if (!world.is_root()) return;
  ASSERT_EQ(shared.n_members(), 2u);
  ASSERT_EQ(alone.n_members(), 2u);
  // With 2 ranks each member trains on a group of one rank, as it does alone: the same bits.
  EXPECT_EQ(shared.members, alone.members);
  EXPECT_NE(shared.members[0], shared.members[1]);  // different seeds and bootstrap weights
}

TEST(Train, Bf16EnsembleMembersDoNotDependOnHowRankGroupsShareThem) {
  if (!kernels::unsupported_reason(kernels::Precision::bf16).empty()) GTEST_SKIP() << "no native bf16 here";
  const Communicator world;
  const auto [shared, alone, regions] = train_on_world_and_alone(
      world, "ensemble-bf16", {"train.epochs=2", "train.ensemble=2", "train.precision=bf16"});
  if (!world.is_root()) return;
  EXPECT_EQ(shared.precision, "bf16");
  EXPECT_EQ(shared.members, alone.members);  // the rounding is elementwise: no rank-dependent order
}

// bf16 against f32 on the same rows and seed. Tolerance: the validation loss is a mean over ~4800 held-out
// rows (0.2 of 12000 rows per class) of a per-row cross-entropy whose spread is below 0.5 here, so its
// sampling error is below 0.5 / sqrt(4800) ≈ 0.007; bf16's rounding (2^-9 relative per GEMM input) must not
// move the trained model's loss by more than twice that, while a wrong bf16 GEMM (a bad layout or scale)
// leaves the loss near log 2 ≈ 0.69, far above a trained model's.
TEST(Train, Bf16TrainsToTheLossOfF32) {
  if (!kernels::unsupported_reason(kernels::Precision::bf16).empty()) GTEST_SKIP() << "no native bf16 here";
  const Communicator world;
  const std::string dir = scratch(world, "bf16");
  const std::vector<std::string> common{"train.epochs=4", "train.validation_fraction=0.2"};
  std::vector<std::string> f32 = common, bf16 = common;
  f32.push_back("train.output=f32.h5");
  bf16.insert(bf16.end(), {"train.output=bf16.h5", "train.precision=bf16"});
  run_simulate(world, campaign_for(dir, 12000, common), /*force=*/true);
  run_train(world, campaign_for(dir, 12000, f32), /*force=*/true);
  std::ifstream f32_json(dir + "/train.json");
  std::stringstream f32_summary;
  f32_summary << f32_json.rdbuf();
  run_train(world, campaign_for(dir, 12000, bf16), /*force=*/true);
  if (!world.is_root()) return;
  const training::ModelRecord high = training::read_model(dir + "/f32.h5");
  const training::ModelRecord low = training::read_model(dir + "/bf16.h5");
  EXPECT_EQ(high.precision, "f32");
  EXPECT_EQ(low.precision, "bf16");
  const double trained = high.history[0].validation_loss.back();
  EXPECT_LT(trained, 0.65);  // it learned something: the bound below is meaningful
  EXPECT_NEAR(low.history[0].validation_loss.back(), trained, 2 * 0.5 / std::sqrt(4800.0));
  EXPECT_NE(low.members, high.members);  // and the rounding did happen
  // train.json (and the model's copy of it) names the precision and the oneDNN kernels that ran.
  EXPECT_NE(f32_summary.str().find("\"precision\": \"f32\""), std::string::npos) << f32_summary.str();
  EXPECT_NE(low.summary.find("\"precision\": \"bf16\""), std::string::npos) << low.summary;
  EXPECT_EQ(low.summary.find("\"gemm_implementation\": \"\""), std::string::npos) << low.summary;
  EXPECT_EQ(low.summary.find("ref:"), std::string::npos) << low.summary;  // oneDNN's kernels, not a loop
}

}  // namespace
}  // namespace nsbi::jobs
