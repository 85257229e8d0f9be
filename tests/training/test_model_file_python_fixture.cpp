// Writes the inputs of test_nsbi_model.py, which checks scripts/nsbi_model.py (numpy) against the C++ log r̂
// (issue acceptance: |Δ| <= 1e-5). For one model per activation, residual networks, and the lecture's 4 × 512
// network: the
// model file, a CSV of events (columns in another order than the model's, plus one it does not use) and the
// C++ log r̂ of the ensemble and of each member. NSBI_MODEL_PYTHON_DIR, set by CMake, is the directory.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model_test_record.hpp"
#include "nsbi/training/model_file.hpp"
#include "test_helpers.hpp"

namespace {

using nsbi::kernels::Activation;

struct Case {
  std::string name;
  std::vector<std::size_t> hidden;
  Activation activation;
  std::size_t n_members;
  bool residual = false;
};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

void write_case(const std::string& directory, const Case& c, unsigned seed) {
  const nsbi::training::ModelRecord record =
      nsbi::test::model_test_record(c.hidden, c.activation, c.n_members, seed, c.residual);
  nsbi::training::write_model(directory + "/model_" + c.name + ".h5", nsbi::Communicator(MPI_COMM_SELF),
                              record);

  // Events spread over about ±4 standardised units around the model's mean (scales 1.5, 0.75, 4), θ over
  // the training ranges, so that every activation sees both its tails.
  const std::size_t n = 300;
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> x(n * 3), theta(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    x[i * 3 + 0] = 0.25 + 6.0 * uniform(engine);
    x[i * 3 + 1] = -1.5 + 3.0 * uniform(engine);
    x[i * 3 + 2] = 91.0 + 16.0 * uniform(engine);
    theta[i * 2 + 0] = uniform(engine);
    theta[i * 2 + 1] = 0.99 * uniform(engine);
  }
  nsbi::training::LikelihoodRatioEstimator estimator(record);
  const nsbi::Matrix x_view = nsbi::test::matrix(x, n, 3);
  const nsbi::Matrix theta_view = nsbi::test::matrix(theta, n, 2);
  const nsbi::Vector ensemble("ensemble", n);
  const nsbi::Matrix members("members", n, c.n_members);
  estimator.log_ratio(x_view, theta_view, ensemble);
  estimator.member_log_ratios(x_view, theta_view, members);
  const std::vector<double> ensemble_host = nsbi::test::to_host(ensemble);
  const std::vector<double> members_host = nsbi::test::to_host(members);

  std::ofstream events(directory + "/events_" + c.name + ".csv");
  events << "rho12, m_jj,unused,x2,mu2,x1\n";
  for (std::size_t i = 0; i < n; ++i)
    events << number(theta[i * 2 + 1]) << "," << number(x[i * 3 + 2]) << ",-7," << number(x[i * 3 + 1]) << ","
           << number(theta[i * 2 + 0]) << "," << number(x[i * 3 + 0]) << "\n";
  std::ofstream expected(directory + "/expected_" + c.name + ".csv");
  expected << "ensemble";
  for (std::size_t k = 0; k < c.n_members; ++k) expected << ",member_" << k;
  expected << "\n";
  for (std::size_t i = 0; i < n; ++i) {
    expected << number(ensemble_host[i]);
    for (std::size_t k = 0; k < c.n_members; ++k)
      expected << "," << number(members_host[i * c.n_members + k]);
    expected << "\n";
  }
  ASSERT_TRUE(events.good() && expected.good()) << "cannot write the fixture of " << c.name;
}

TEST(ModelFilePythonFixture, WritesModelsEventsAndCppLogRatios) {
  const std::string directory = NSBI_MODEL_PYTHON_DIR;
  std::filesystem::remove_all(directory);  // nothing stale can pass for this run's output
  std::filesystem::create_directories(directory);
  const std::vector<Case> cases = {{"relu_lecture", {512, 512, 512, 512}, Activation::relu, 2},
                                   {"silu", {64, 64, 64}, Activation::silu, 3},
                                   {"tanh", {64, 64, 64}, Activation::tanh, 2},
                                   {"softplus", {64, 64, 64}, Activation::softplus, 3},
                                   {"logistic", {}, Activation::relu, 2},
                                   {"silu_residual", {64, 64, 64, 64}, Activation::silu, 2, true},
                                   {"tanh_residual", {32, 32, 32}, Activation::tanh, 2, true}};
  std::ofstream manifest(directory + "/cases.txt");
  for (std::size_t c = 0; c < cases.size(); ++c) {
    write_case(directory, cases[c], 100 + static_cast<unsigned>(c));
    manifest << cases[c].name << "\n";
  }
  ASSERT_TRUE(manifest.good());
}

}  // namespace
