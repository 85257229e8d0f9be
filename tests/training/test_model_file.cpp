// model.h5 on 1 and 2 ranks: the round trip keeps every field (weights bitwise), the per-layer datasets are
// the flat buffer's slices as docs/formats.md documents, write errors reach every rank, read_model refuses
// foreign, unfinished, truncated and inconsistent files naming them, and log r̂ matches the Mlp on
// standardised inputs and a hand-computed ensemble.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model_test_record.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"
#include "nsbi/training/model_file.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::kernels::Activation;
using nsbi::test::model_test_record;
using nsbi::training::LikelihoodRatioEstimator;
using nsbi::training::ModelRecord;

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// One directory per communicator size: CTest runs the np variants concurrently.
std::string scratch_path(const std::string& file_name) {
  const std::string directory = "/tmp/nsbi-test-model-file-np" + std::to_string(world_size());
  if (world_rank() == 0) std::filesystem::create_directories(directory);
  MPI_Barrier(MPI_COMM_WORLD);
  return directory + "/" + file_name;
}

// A file of this rank's own, for tests that damage files (each rank damages its own copy).
std::string own_path(const std::string& file_name) {
  return scratch_path("rank" + std::to_string(world_rank()) + "_" + file_name);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The message of the InputError read_model throws for `path`; HDF5 must not print its diagnostics.
std::string read_error(const std::string& path) {
  testing::internal::CaptureStderr();
  std::string message;
  try {
    nsbi::training::read_model(path);
    ADD_FAILURE() << "read_model accepted '" << path << "'";
  } catch (const nsbi::InputError& error) {
    message = error.what();
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(contains(printed, "HDF5-DIAG")) << printed;
  EXPECT_TRUE(contains(message, path)) << message;
  return message;
}

// A valid model at this rank's own path, written with MPI_COMM_SELF.
std::string own_model(const std::string& file_name) {
  const std::string path = own_path(file_name);
  nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_SELF),
                              model_test_record({4, 3}, Activation::tanh, 2, 5));
  return path;
}

void set_root_attribute(const std::string& path, const std::string& name, std::int64_t value) {
  nsbi::h5::File::open(path, MPI_COMM_SELF, nsbi::h5::Access::read_write).root().write_attribute(name, value);
}

// Deletes one link with the plain HDF5 API: nsbi's wrapper never deletes anything.
void delete_link(const std::string& path, const std::string& object) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  EXPECT_GE(H5Ldelete(file, object.c_str(), H5P_DEFAULT), 0);
  EXPECT_GE(H5Fclose(file), 0);
}

TEST(ModelFile, RoundTripKeepsEverythingWeightsBitwise) {
  const std::string path = scratch_path("round_trip.h5");
  const ModelRecord written = model_test_record({7, 5}, Activation::silu, 3, 21);
  // Only rank 0's record is written: the others pass an empty one.
  nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_WORLD),
                              world_rank() == 0 ? written : ModelRecord{});
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));

  const ModelRecord read = nsbi::training::read_model(path);
  EXPECT_EQ(read.simulator, written.simulator);
  EXPECT_EQ(read.observable_names, written.observable_names);
  EXPECT_EQ(read.parameter_names, written.parameter_names);
  EXPECT_EQ(read.parameter_min, written.parameter_min);
  EXPECT_EQ(read.parameter_max, written.parameter_max);
  EXPECT_EQ(read.reference, written.reference);
  EXPECT_EQ(read.loss, written.loss);
  EXPECT_EQ(read.loss_alpha, written.loss_alpha);
  EXPECT_EQ(read.architecture.n_inputs, written.architecture.n_inputs);
  EXPECT_EQ(read.architecture.hidden, written.architecture.hidden);
  EXPECT_EQ(read.architecture.activation, written.architecture.activation);
  EXPECT_FALSE(read.architecture.residual);
  EXPECT_EQ(read.standardization_mean, written.standardization_mean);
  EXPECT_EQ(read.standardization_scale, written.standardization_scale);
  ASSERT_EQ(read.n_members(), written.n_members());
  for (std::size_t k = 0; k < read.n_members(); ++k) {
    EXPECT_TRUE(bitwise_equal(read.members[k], written.members[k])) << "member " << k;
    EXPECT_EQ(read.history[k].step, written.history[k].step);
    EXPECT_EQ(read.history[k].epoch, written.history[k].epoch);
    EXPECT_EQ(read.history[k].train_loss, written.history[k].train_loss);
    EXPECT_EQ(read.history[k].validation_loss, written.history[k].validation_loss);
    EXPECT_EQ(read.history[k].learning_rate, written.history[k].learning_rate);
  }
  ASSERT_EQ(read.diagnostics.size(), written.diagnostics.size());
  for (const auto& [name, array] : written.diagnostics) {
    ASSERT_EQ(read.diagnostics.count(name), 1u) << name;
    EXPECT_EQ(read.diagnostics.at(name).shape, array.shape) << name;
    EXPECT_EQ(read.diagnostics.at(name).values, array.values) << name;
  }
  EXPECT_EQ(read.config, written.config);
  EXPECT_EQ(read.seed, written.seed);
  EXPECT_EQ(read.provenance.nsbi_version, written.provenance.nsbi_version);
  EXPECT_EQ(read.provenance.created_utc, written.provenance.created_utc);
  EXPECT_EQ(read.provenance.hostname, written.provenance.hostname);
  EXPECT_EQ(read.provenance.command_line, written.provenance.command_line);
  EXPECT_EQ(read.provenance.mpi_ranks, written.provenance.mpi_ranks);
}

TEST(ModelFile, ALogisticRegressionWithoutHistoryOrDiagnosticsRoundTrips) {
  ModelRecord written = model_test_record({}, Activation::relu, 1, 3);
  written.history = {{}};
  written.diagnostics.clear();
  const std::string path = own_path("logistic.h5");
  nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_SELF), written);
  const ModelRecord read = nsbi::training::read_model(path);
  EXPECT_TRUE(read.architecture.hidden.empty());
  EXPECT_TRUE(bitwise_equal(read.members.at(0), written.members[0]));
  EXPECT_TRUE(read.history.at(0).step.empty());
  EXPECT_TRUE(read.diagnostics.empty());
}

// A residual network records `residual` = 1 and reads back as one; a file without the attribute (every file
// written before residual blocks, and every plain MLP's) reads as a plain MLP; another value is refused.
TEST(ModelFile, ResidualAttributeRoundTrips) {
  const std::string path = scratch_path("residual.h5");
  nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_WORLD),
                              model_test_record({8, 8, 8}, Activation::silu, 1, 9, true));
  EXPECT_TRUE(nsbi::training::read_model(path).architecture.residual);
  {
    const nsbi::h5::File file = nsbi::h5::File::open(path, MPI_COMM_SELF, nsbi::h5::Access::read);
    EXPECT_EQ(file.root().open_group("architecture").read_attribute<std::int64_t>("residual"), 1);
  }
  const std::string own = own_model("residual_bad.h5");
  EXPECT_FALSE(nsbi::training::read_model(own).architecture.residual);
  nsbi::h5::File::open(own, MPI_COMM_SELF, nsbi::h5::Access::read_write)
      .root()
      .open_group("architecture")
      .write_attribute("residual", std::int64_t{2});
  EXPECT_TRUE(contains(read_error(own), "/architecture residual is 2")) << read_error(own);
}

// The layout docs/formats.md promises to numpy users, read with the plain wrapper instead of read_model.
TEST(ModelFile, PerLayerDatasetsAreTheFlatBufferSlices) {
  const std::string path = scratch_path("layout.h5");
  const ModelRecord record = model_test_record({6, 4}, Activation::softplus, 2, 8);
  nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_WORLD), record);
  const nsbi::h5::File file = nsbi::h5::File::open(path, MPI_COMM_SELF, nsbi::h5::Access::read);
  const nsbi::h5::Group root = file.root();
  EXPECT_EQ(root.read_attribute<std::string>("format"), "nsbi-model");
  EXPECT_EQ(root.read_attribute<std::int64_t>("format_version"), 1);
  EXPECT_EQ(root.read_attribute<std::int64_t>("complete"), 1);
  EXPECT_EQ(root.read_attribute<std::int64_t>("n_members"), 2);
  const nsbi::h5::Group architecture = root.open_group("architecture");
  EXPECT_EQ(architecture.read_attribute<std::vector<double>>("hidden"), (std::vector<double>{6, 4}));
  EXPECT_EQ(architecture.read_attribute<std::string>("activation"), "softplus");
  // A plain MLP's file is as before residual blocks existed: no `residual` attribute.
  EXPECT_FALSE(architecture.attribute_exists("residual"));
  EXPECT_EQ(architecture.read_attribute<std::vector<std::string>>("input_order"),
            (std::vector<std::string>{"x1", "x2", "m_jj", "mu2", "rho12"}));
  std::vector<double> scale(5);
  root.open_dataset("standardization/scale").read_rows(0, 5, scale.data());
  EXPECT_EQ(scale, record.standardization_scale);

  const nsbi::kernels::MlpArchitecture& arch = record.architecture;
  for (std::size_t k = 0; k < 2; ++k)
    for (std::size_t l = 0; l < arch.n_layers(); ++l) {
      const std::string layer = "members/" + std::to_string(k) + "/layer_" + std::to_string(l);
      const nsbi::h5::Dataset weight = root.open_dataset(layer + "/weight");
      const nsbi::h5::Dataset bias = root.open_dataset(layer + "/bias");
      EXPECT_EQ(weight.type(), nsbi::h5::DataType::float32);
      ASSERT_EQ(weight.dims(), (std::vector<hsize_t>{arch.layer_outputs(l), arch.layer_inputs(l)})) << layer;
      ASSERT_EQ(bias.dims(), (std::vector<hsize_t>{arch.layer_outputs(l)})) << layer;
      std::vector<float> w(arch.layer_outputs(l) * arch.layer_inputs(l)), b(arch.layer_outputs(l));
      weight.read_rows(0, arch.layer_outputs(l), w.data());
      bias.read_rows(0, arch.layer_outputs(l), b.data());
      const auto& flat = record.members[k];
      EXPECT_TRUE(
          bitwise_equal(w, {flat.begin() + arch.weight_offset(l), flat.begin() + arch.bias_offset(l)}))
          << layer;
      EXPECT_TRUE(
          bitwise_equal(b, {flat.begin() + arch.bias_offset(l), flat.begin() + arch.weight_offset(l + 1)}))
          << layer;
    }
  EXPECT_FALSE(root.exists("members/0/layer_3"));
  EXPECT_FALSE(root.exists("members/2"));
  EXPECT_EQ(root.open_group("diagnostics").read_attribute<std::vector<std::string>>("names"),
            (std::vector<std::string>{"calibration", "expected_ratio"}));
  EXPECT_EQ(root.open_dataset("diagnostics/calibration").dims(), (std::vector<hsize_t>{4, 2}));
  EXPECT_EQ(root.open_dataset("history/1/validation_loss").dims(), (std::vector<hsize_t>{3}));
}

TEST(ModelFile, AWriteErrorReachesEveryRankAndLeavesNoFile) {
  const std::string path = scratch_path("no_such_directory/model.h5");
  try {
    nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_WORLD),
                                model_test_record({3}, Activation::relu, 1, 2));
    ADD_FAILURE() << "write_model wrote into a missing directory";
  } catch (const nsbi::InputError& error) {
    EXPECT_TRUE(contains(error.what(), path + ".partial")) << error.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ModelFile, AnInconsistentRecordIsAnInternalErrorOnEveryRank) {
  ModelRecord record = model_test_record({3}, Activation::relu, 2, 2);
  record.members[1].pop_back();
  const std::string path = scratch_path("inconsistent.h5");
  try {
    nsbi::training::write_model(path, nsbi::Communicator(MPI_COMM_WORLD), record);
    ADD_FAILURE() << "write_model accepted a member with too few parameters";
  } catch (const nsbi::InternalError& error) {
    EXPECT_TRUE(contains(error.what(), "member 1 has")) << error.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ModelFileErrors, MissingFileMentionsAnUnfinishedPartial) {
  const std::string path = own_path("interrupted.h5");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".partial");
  EXPECT_TRUE(contains(read_error(path), "does not exist")) << read_error(path);
  std::ofstream(path + ".partial") << "half a model";
  EXPECT_TRUE(contains(read_error(path), path + ".partial' does: the run writing it did not finish"))
      << read_error(path);
}

TEST(ModelFileErrors, UnfinishedFileIsRefused) {
  const std::string path = own_model("unfinished.h5");
  set_root_attribute(path, "complete", 0);
  EXPECT_TRUE(contains(read_error(path), "unfinished")) << read_error(path);
}

TEST(ModelFileErrors, ForeignFilesAreRefused) {
  const std::string text = own_path("text.h5");
  std::ofstream(text) << "theta,x\n0,1\n";
  EXPECT_TRUE(contains(read_error(text), "not an HDF5 file")) << read_error(text);

  const std::string dataset = own_path("dataset.h5");
  {
    const nsbi::h5::File file = nsbi::h5::File::create(dataset, MPI_COMM_SELF);
    file.root().write_attribute("format", "nsbi-dataset");
  }
  EXPECT_TRUE(contains(read_error(dataset), "format is 'nsbi-dataset', not 'nsbi-model'"))
      << read_error(dataset);

  const std::string bare = own_path("bare.h5");
  nsbi::h5::File::create(bare, MPI_COMM_SELF);
  EXPECT_TRUE(contains(read_error(bare), "no 'format' attribute")) << read_error(bare);

  const std::string future = own_model("future.h5");
  set_root_attribute(future, "format_version", 2);
  EXPECT_TRUE(contains(read_error(future), "format_version 2")) << read_error(future);
}

TEST(ModelFileErrors, TruncatedFileIsRefused) {
  const std::string path = own_model("truncated.h5");
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  EXPECT_TRUE(contains(read_error(path), "not a readable nsbi model")) << read_error(path);
}

TEST(ModelFileErrors, MissingDatasetIsNamed) {
  const std::string path = own_model("missing_bias.h5");
  delete_link(path, "/members/1/layer_1/bias");
  EXPECT_TRUE(contains(read_error(path), "dataset '/members/1/layer_1/bias' is missing")) << read_error(path);
}

TEST(ModelFileErrors, WrongWeightShapeIsNamed) {
  const std::string path = own_model("wrong_shape.h5");  // hidden {4, 3}: layer 1's weight is [3, 4]
  delete_link(path, "/members/0/layer_1/weight");
  nsbi::h5::File::open(path, MPI_COMM_SELF, nsbi::h5::Access::read_write)
      .root()
      .create_dataset("members/0/layer_1/weight", nsbi::h5::DataType::float32, {3, 5}, 3);
  EXPECT_TRUE(contains(read_error(path), "'/members/0/layer_1/weight' has shape [3, 5], expected [3, 4]"))
      << read_error(path);
}

TEST(ModelFileErrors, InconsistentContentsAreNamed) {
  const std::string members = own_model("n_members.h5");  // two members written
  set_root_attribute(members, "n_members", 1);
  EXPECT_TRUE(contains(read_error(members), "'/members/1' exists but n_members is 1")) << read_error(members);

  const std::string order = own_model("input_order.h5");
  nsbi::h5::File::open(order, MPI_COMM_SELF, nsbi::h5::Access::read_write)
      .root()
      .open_group("architecture")
      .write_attribute("input_order", std::vector<std::string>{"mu2", "rho12", "x1", "x2", "m_jj"});
  EXPECT_TRUE(contains(read_error(order), "input_order")) << read_error(order);

  const std::string scale = own_model("zero_scale.h5");
  const std::vector<double> zero_scale = {1.0, 1.0, 0.0, 1.0, 1.0};
  nsbi::h5::File::open(scale, MPI_COMM_SELF, nsbi::h5::Access::read_write)
      .root()
      .open_dataset("standardization/scale")
      .write_rows(0, 5, zero_scale.data());
  EXPECT_TRUE(contains(read_error(scale), "standardisation of input 'm_jj'")) << read_error(scale);
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation

std::vector<double> uniform_values(std::size_t n, double low, double high, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(low, high);
  std::vector<double> values(n);
  for (double& v : values) v = uniform(engine);
  return values;
}

// The estimator (PairwiseEvaluator) against Mlp::forward, for a plain and a residual network.
void expect_member_log_ratio_is_the_mlp(const ModelRecord& record) {
  // 2500 rows: two full blocks of 1024 and a last one of 452, padded to 512.
  const std::size_t n = 2500;
  const std::vector<double> x = uniform_values(n * 3, -5.0, 95.0, 1);
  const std::vector<double> theta = uniform_values(n * 2, -1.0, 1.0, 2);
  std::vector<float> inputs(n * 5);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 5; ++j) {
      const double v = j < 3 ? x[i * 3 + j] : theta[i * 2 + j - 3];
      inputs[i * 5 + j] =
          static_cast<float>((v - record.standardization_mean[j]) / record.standardization_scale[j]);
    }
  nsbi::kernels::Mlp mlp(record.architecture);
  const nsbi::FloatMatrix network_inputs = nsbi::test::float_matrix(inputs, n, 5);
  const nsbi::FloatVector logits = nsbi::make_float_vector("logits", n);

  LikelihoodRatioEstimator estimator(record);
  const nsbi::Matrix x_view = nsbi::test::matrix(x, n, 3);
  const nsbi::Matrix theta_view = nsbi::test::matrix(theta, n, 2);
  const nsbi::Matrix all("all", n, 2);
  estimator.member_log_ratios(x_view, theta_view, all);
  const std::vector<double> per_member = nsbi::test::to_host(all);
  for (std::size_t k = 0; k < 2; ++k) {
    mlp.forward(nsbi::test::float_vector(record.members[k]), network_inputs, logits);
    const std::vector<float> expected = nsbi::test::to_host(logits);
    const nsbi::Vector one("one", n);
    estimator.log_ratio(x_view, theta_view, one, k);
    const nsbi::Vector once("once", n);
    nsbi::training::log_ratio(record, k, x_view, theta_view, once);
    const std::vector<double> got = nsbi::test::to_host(one);
    const std::vector<double> got_once = nsbi::test::to_host(once);
    // The same float32 network on the same float inputs; only oneDNN's blocking for another batch size may
    // reorder the dot products: a few ulp of the terms, ~1e-6 relative here. Any wrong row, column or
    // member would be off by O(1).
    for (std::size_t i = 0; i < n; ++i) {
      const double tolerance = 1e-6 * (1.0 + std::fabs(expected[i]));
      ASSERT_NEAR(got[i], expected[i], tolerance) << "member " << k << " row " << i;
      ASSERT_EQ(got_once[i], got[i]) << "member " << k << " row " << i;
      ASSERT_EQ(per_member[i * 2 + k], got[i]) << "member " << k << " row " << i;
    }
  }
}

TEST(LikelihoodRatioEstimator, MemberLogRatioIsTheMlpOnStandardisedInputs) {
  expect_member_log_ratio_is_the_mlp(model_test_record({16, 8}, Activation::silu, 2, 31));
}

TEST(LikelihoodRatioEstimator, ResidualMemberLogRatioIsTheResidualMlp) {
  for (Activation activation : {Activation::silu, Activation::relu, Activation::tanh}) {
    const ModelRecord residual = model_test_record({16, 16, 16}, activation, 2, 32, true);
    SCOPED_TRACE(nsbi::kernels::activation_name(activation));
    expect_member_log_ratio_is_the_mlp(residual);
    // The skips change the network: the same weights without them give other logits.
    ModelRecord plain = residual;
    plain.architecture.residual = false;
    const std::vector<double> x = uniform_values(30, -5.0, 95.0, 3);
    const std::vector<double> theta = uniform_values(20, -1.0, 1.0, 4);
    const nsbi::Vector with("with", 10), without("without", 10);
    LikelihoodRatioEstimator(residual).log_ratio(nsbi::test::matrix(x, 10, 3),
                                                 nsbi::test::matrix(theta, 10, 2), with);
    LikelihoodRatioEstimator(plain).log_ratio(nsbi::test::matrix(x, 10, 3), nsbi::test::matrix(theta, 10, 2),
                                              without);
    double largest = 0.0;
    for (std::size_t i = 0; i < 10; ++i)
      largest = std::max(largest, std::fabs(nsbi::test::to_host(with)[i] - nsbi::test::to_host(without)[i]));
    EXPECT_GT(largest, 1e-2);
  }
}

// Logistic-regression members (no hidden layer) whose logits are exact in float32: binary fractions with
// few bits, standardisation mean 0 and scale 1.
ModelRecord linear_ensemble(const std::vector<std::vector<float>>& members) {
  ModelRecord record;
  record.observable_names = {"x"};
  record.parameter_names = {"theta"};
  record.parameter_min = {-1.0};
  record.parameter_max = {1.0};
  record.architecture = {2, {}, Activation::relu};
  record.standardization_mean = {0.0, 0.0};
  record.standardization_scale = {1.0, 1.0};
  record.members = members;  // (w_x, w_theta, b)
  record.history.resize(members.size());
  return record;
}

TEST(LikelihoodRatioEstimator, EnsembleIsLogMeanOfRatiosComputedStably) {
  const std::vector<std::vector<float>> members = {
      {0.5f, -1.0f, 0.25f}, {1.5f, 0.75f, -0.5f}, {-2.0f, 0.25f, 1.0f}};
  const std::vector<double> x = {0.5, -3.0, 2.0};
  const std::vector<double> theta = {1.25, 0.75, -1.0};
  LikelihoodRatioEstimator estimator(linear_ensemble(members));
  const nsbi::Vector out("out", 3), spread("spread", 3);
  estimator.log_ratio(nsbi::test::matrix(x, 3, 1), nsbi::test::matrix(theta, 3, 1), out,
                      nsbi::training::all_members, spread);
  const std::vector<double> got = nsbi::test::to_host(out);
  const std::vector<double> got_spread = nsbi::test::to_host(spread);
  for (std::size_t i = 0; i < 3; ++i) {
    double mean_ratio = 0.0, mean_logit = 0.0, squares = 0.0;
    std::vector<double> logits;
    for (const auto& m : members) logits.push_back(m[0] * x[i] + m[1] * theta[i] + m[2]);
    for (double l : logits) mean_ratio += std::exp(l) / 3.0, mean_logit += l / 3.0;
    for (double l : logits) squares += (l - mean_logit) * (l - mean_logit);
    // Only the order of double roundings differs from the hand computation.
    EXPECT_NEAR(got[i], std::log(mean_ratio), 1e-14) << "row " << i;
    EXPECT_NEAR(got_spread[i], std::sqrt(squares / 2.0), 1e-14) << "row " << i;
  }

  // Constant logits 0, 1, 2: log r̂ = log((1 + e + e²) / 3), sample spread exactly 1.
  LikelihoodRatioEstimator constant(linear_ensemble({{0, 0, 0}, {0, 0, 1}, {0, 0, 2}}));
  constant.log_ratio(nsbi::test::matrix(x, 3, 1), nsbi::test::matrix(theta, 3, 1), out,
                     nsbi::training::all_members, spread);
  EXPECT_NEAR(nsbi::test::to_host(out)[0], std::log((1.0 + std::exp(1.0) + std::exp(2.0)) / 3.0), 1e-15);
  EXPECT_NEAR(nsbi::test::to_host(spread)[0], 1.0, 1e-15);

  // Logits 1000 and 1001: exp overflows double, log-sum-exp does not. log r̂ = 1000 + log((1 + e) / 2).
  LikelihoodRatioEstimator large(linear_ensemble({{0, 0, 1000}, {0, 0, 1001}}));
  large.log_ratio(nsbi::test::matrix(x, 3, 1), nsbi::test::matrix(theta, 3, 1), out);
  EXPECT_NEAR(nsbi::test::to_host(out)[2], 1000.0 + std::log((1.0 + std::exp(1.0)) / 2.0), 1e-12);
}

}  // namespace

namespace {

// An array observable's model (x: an image of shape {1, 3}, one name) keeps its shape through the file and
// evaluates exactly as the tabular model with the same weights on the flattened values; a tabular model has
// no observable_shape attribute (files as before arrays).
TEST(ModelFile, AnArrayObservableKeepsItsShapeAndEvaluatesFlattened) {
  const ModelRecord tabular = model_test_record({6}, Activation::tanh, 2, 41);
  ModelRecord image = tabular;
  image.observable_names = {"image"};
  image.observable_shape = {1, 3};
  EXPECT_EQ(image.inconsistency(), "");
  EXPECT_EQ(image.input_order(), (std::vector<std::string>{"image", "mu2", "rho12"}));
  const std::string image_path = own_path("image.h5");
  const std::string tabular_path = own_path("tabular.h5");
  nsbi::training::write_model(image_path, nsbi::Communicator(MPI_COMM_SELF), image);
  nsbi::training::write_model(tabular_path, nsbi::Communicator(MPI_COMM_SELF), tabular);
  const ModelRecord read = nsbi::training::read_model(image_path);
  EXPECT_EQ(read.observable_names, image.observable_names);
  EXPECT_EQ(read.observable_shape, image.observable_shape);
  EXPECT_EQ(read.n_observables(), 3u);
  EXPECT_FALSE(nsbi::h5::File::open(tabular_path, MPI_COMM_SELF, nsbi::h5::Access::read)
                   .root()
                   .attribute_exists("observable_shape"));

  const std::size_t n = 300;
  const nsbi::Matrix x = nsbi::test::matrix(uniform_values(n * 3, -5.0, 95.0, 5), n, 3);
  const nsbi::Matrix theta = nsbi::test::matrix(uniform_values(n * 2, -1.0, 1.0, 6), n, 2);
  const nsbi::Vector from_image("from_image", n);
  const nsbi::Vector from_tabular("from_tabular", n);
  LikelihoodRatioEstimator image_estimator(read);
  EXPECT_EQ(image_estimator.n_observables(), 3u);
  image_estimator.log_ratio(x, theta, from_image);
  LikelihoodRatioEstimator(nsbi::training::read_model(tabular_path)).log_ratio(x, theta, from_tabular);
  EXPECT_EQ(nsbi::test::to_host(from_image), nsbi::test::to_host(from_tabular));

  image.observable_names = {"a", "b", "c"};
  EXPECT_EQ(image.inconsistency(), "an array observable has one name, not 3");
}

}  // namespace
