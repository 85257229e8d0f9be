// The external simulator protocol (docs/external_simulators.md) with the example program
// examples/external/smeared_gaussian.py: the handshake declares the simulator, rows do not depend on
// batching, gold is consistent, and every way a program can fail is an error naming the batch.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/sims/external.hpp"

namespace nsbi::sims {
namespace {

const std::string example = std::string(NSBI_SOURCE_DIR) + "/examples/external/smeared_gaussian.py";

ExternalOptions options(std::vector<std::string> extra = {}, double timeout = 60) {
  ExternalOptions o;
  o.command = {example};  // run through its #!/usr/bin/python3 line: Debian's python3 with numpy
  o.command.insert(o.command.end(), extra.begin(), extra.end());
  o.timeout_seconds = timeout;
  return o;
}

Matrix theta_rows(std::size_t n, double first) {
  Matrix theta = make_matrix("theta", n, 1);
  for (std::size_t i = 0; i < n; ++i) theta(i, 0) = first + 0.01 * static_cast<double>(i);
  return theta;
}

// Runs `body`, expects an error of type E whose message contains every one of `parts`.
template <class E, class Body>
void expect_error(const Body& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected an error mentioning '" << parts.front() << "'";
  } catch (const E& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "no '" << part << "' in: " << e.what();
  }
}

TEST(ExternalSimulator, HandshakeDeclaresTheSimulator) {
  const ExternalSimulator simulator(options());
  const SimulatorInfo& info = simulator.info();
  EXPECT_EQ(info.name, "smeared_gaussian");
  ASSERT_EQ(info.n_parameters(), 1u);
  EXPECT_EQ(info.parameters[0].name, "mu");
  EXPECT_EQ(info.parameters[0].min, -2.0);
  EXPECT_EQ(info.parameters[0].max, 2.0);
  EXPECT_EQ(info.observables, (std::vector<std::string>{"x1", "x2"}));
  EXPECT_TRUE(info.has_gold);
  EXPECT_FALSE(info.has_exact_likelihood);
}

TEST(ExternalSimulator, RowsDoNotDependOnBatchingAndFollowTheModel) {
  const ExternalSimulator whole(options());
  const ExternalSimulator split(options());
  constexpr std::size_t n = 2000;
  const Matrix theta = theta_rows(n, -1.0);
  Matrix x = make_matrix("x", n, 2);
  whole.simulate(theta, x, 500, 42);
  Matrix y = make_matrix("y", n, 2);
  const auto rows = [](std::size_t a, std::size_t b) { return std::make_pair(a, b); };
  split.simulate(Kokkos::subview(theta, rows(0, 700), Kokkos::ALL),
                 Kokkos::subview(y, rows(0, 700), Kokkos::ALL), 500, 42);
  split.simulate(Kokkos::subview(theta, rows(700, n), Kokkos::ALL),
                 Kokkos::subview(y, rows(700, n), Kokkos::ALL), 1200, 42);
  EXPECT_EQ(split.batches(), 2u);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(x(i, 0), y(i, 0)) << "row " << i;
    ASSERT_EQ(x(i, 1), y(i, 1)) << "row " << i;
  }
  // x1 − mu = z − mu + 0.5 ε ~ N(0, 1.25): its mean within 4 standard errors of 0, its variance of 1.25.
  double mean = 0, m2 = 0;
  for (std::size_t i = 0; i < n; ++i) mean += (x(i, 0) - theta(i, 0)) / n;
  for (std::size_t i = 0; i < n; ++i)
    m2 += (x(i, 0) - theta(i, 0) - mean) * (x(i, 0) - theta(i, 0) - mean) / n;
  EXPECT_NEAR(mean, 0.0, 4 * std::sqrt(1.25 / n));
  EXPECT_NEAR(m2, 1.25, 4 * 1.25 * std::sqrt(2.0 / n));
  // Another seed gives other rows.
  whole.simulate(theta, y, 500, 43);
  EXPECT_NE(x(0, 0), y(0, 0));
}

TEST(ExternalSimulator, GoldScoreIsTheDerivativeOfTheJointLogRatio) {
  const ExternalSimulator simulator(options());
  constexpr std::size_t n = 50;
  constexpr double h = 1e-4;
  const Matrix theta = theta_rows(n, 0.3);
  const double theta0[1] = {-0.5};
  Matrix x = make_matrix("x", n, 2);
  Matrix score = make_matrix("score", n, 1);
  Vector up("up", n), down("down", n), at("at", n);
  Matrix shifted = make_matrix("shifted", n, 1);
  const auto run = [&](double offset, const Vector& log_r) {
    for (std::size_t i = 0; i < n; ++i) shifted(i, 0) = theta(i, 0) + offset;
    simulator.simulate_gold(ExecutionSpace(), theta, x, shifted, theta0, log_r, score, 0, 7);
  };
  run(h, up);
  run(-h, down);
  run(0.0, at);
  Matrix plain = make_matrix("plain", n, 2);
  simulator.simulate(theta, plain, 0, 7);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(plain(i, 0), x(i, 0)) << "gold rows are the plain rows";
    // log r is quadratic in the gold θ: the central difference is exact up to rounding.
    EXPECT_NEAR((up(i) - down(i)) / (2 * h), score(i, 0), 1e-7) << "row " << i;
  }
  // log r(θ0 | θ0) = 0.
  for (std::size_t i = 0; i < n; ++i) shifted(i, 0) = theta0[0];
  simulator.simulate_gold(ExecutionSpace(), theta, x, shifted, theta0, at, score, 0, 7);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(at(i), 0.0);
}

TEST(ExternalSimulator, FailuresNameTheProgramAndTheBatch) {
  const Matrix theta = theta_rows(10, 0.0);
  Matrix x = make_matrix("x", 10, 2);
  {
    const ExternalSimulator crashing(options({"--crash-at-batch", "1"}));
    crashing.simulate(theta, x, 0, 1);
    expect_error<InputError>(
        [&] { crashing.simulate(theta, x, 10, 1); },
        {"smeared_gaussian.py", "batch 1 (10 rows from index 10)", "exited with status 3"});
    expect_error<InputError>([&] { crashing.simulate(theta, x, 20, 1); }, {"not running"});
  }
  {
    const ExternalSimulator wrong(options({"--wrong-shape-at-batch", "0"}));
    expect_error<InputError>([&] { wrong.simulate(theta, x, 0, 1); },
                             {"batch 0", "1 observables", "asked for 10 rows, 2 observables"});
  }
  {
    const ExternalSimulator nan(options({"--nan-at-batch", "0"}));
    expect_error<InputError>([&] { nan.simulate(theta, x, 0, 1); }, {"batch 0", "row 5", "NaN", "x2"});
  }
  {
    const ExternalSimulator slow(options({"--sleep-at-batch", "0"}, 1.0));
    expect_error<InputError>([&] { slow.simulate(theta, x, 0, 1); },
                             {"batch 0", "simulator.timeout_seconds", "killed"});
  }
  ExternalOptions missing;
  missing.command = {"/nonexistent/simulator"};
  expect_error<ConfigError>([&] { ExternalSimulator s(missing); },
                            {"simulator.command", "/nonexistent/simulator"});
  ExternalOptions talker;
  talker.command = {"echo", "hello, world"};
  expect_error<InputError>([&] { ExternalSimulator s(talker); }, {"the handshake", "NSBISIM1"});
  ExternalOptions silent;
  silent.command = {"true"};
  expect_error<InputError>([&] { ExternalSimulator s(silent); }, {"the handshake", "exited with status 0"});
}

}  // namespace
}  // namespace nsbi::sims
