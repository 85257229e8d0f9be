#pragma once
// A user's simulator program (any language) as an nsbi simulator: nsbi runs it as a subprocess, without a
// shell, and talks to it over its stdin and stdout in the binary protocol of docs/external_simulators.md:
// the program declares its parameters, observables and gold in a handshake, then answers batches of θ with
// batches of x (and gold when asked). Each MPI rank runs its own copy of the program.
//
// Every failure is an InputError naming the program and the batch: the program exits or is killed, sends
// fewer bytes than it declared, answers with another shape than asked, sends NaN or ±Inf, or takes longer
// than the timeout (it is then killed). Stages keep the blocks finished before the failing one (simulate's
// .partial file, calibrate's journals), so a rerun with a fixed program resumes.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nsbi/sims/registry.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

/// The decoding of the program's messages, apart from the pipes they come through: what ExternalSimulator
/// reads, and what the fuzzer (fuzz/external_protocol.cpp) feeds bytes to.
namespace protocol {

/// A message that breaks the protocol; what() says what is wrong (ExternalSimulator adds the program and the
/// batch, and makes it an InputError).
class Violation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where decoding reads from: read(data, bytes, what) stores exactly `bytes` bytes or throws; `what` names
/// them for messages ("the response header").
using Reader = std::function<void(void* data, std::size_t bytes, const std::string& what)>;

/// The handshake: the simulator's name, its parameters with their domains, its observables and whether it
/// sends gold (`doc` is left empty). Violation for a handshake that is not one: magic bytes, lengths,
/// counts, domains, and parameter or observable names that are not plain (letters, digits, '_', '-') or
/// are declared twice.
SimulatorInfo read_handshake(const Reader& read);

/// What a batch asked for, to check its response against.
struct Batch {
  std::uint64_t number = 0;
  std::uint64_t first_index = 0;
  std::uint64_t rows = 0;
  bool gold = false;
};

/// The response to `batch`: x [rows × observables] into `x` and, when gold was asked, per row the joint log
/// ratio and then the joint score [rows × (1 + parameters)] into `gold`. Violation for another batch
/// number or shape than asked, wrong magic bytes, or a value that is NaN or ±Inf.
void read_response(const Reader& read, const SimulatorInfo& info, const Batch& batch, double* x,
                   double* gold);

}  // namespace protocol

struct ExternalOptions {
  std::vector<std::string> command;  // argv: the program and its arguments (PATH is searched)
  double timeout_seconds = 300;      // for the handshake and for each batch
};

class ExternalSimulator final : public Simulator {
 public:
  /// Starts the program and reads its handshake (InputError when it does not give one within the timeout).
  explicit ExternalSimulator(ExternalOptions options);
  ~ExternalSimulator() override;
  ExternalSimulator(const ExternalSimulator&) = delete;
  ExternalSimulator& operator=(const ExternalSimulator&) = delete;

  const SimulatorInfo& info() const override { return info_; }

  using Simulator::simulate;
  void simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                std::uint64_t first_index, std::uint64_t seed) const override;
  void simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                     const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                     const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const override;

  /// Batches answered so far (each simulate call is one batch).
  std::uint64_t batches() const { return batches_; }

 private:
  // One request and its answer; gold arrays are written only when `gold_theta` is given.
  void run_batch(const ConstMatrix& theta, const Matrix& x, const ConstMatrix* gold_theta,
                 const double* theta0, const Vector* log_r, const Matrix* score, std::uint64_t first_index,
                 std::uint64_t seed) const;
  void read_handshake();
  protocol::Reader reader() const;  // read_all on the program's output
  void write_all(const void* data, std::size_t bytes, const std::string& what) const;
  void read_all(void* data, std::size_t bytes, const std::string& what) const;
  [[noreturn]] void fail(const std::string& what) const;
  std::string program() const;
  void stop() const;

  ExternalOptions options_;
  SimulatorInfo info_;
  mutable pid_t pid_ = -1;
  mutable int to_child_ = -1;    // the program's stdin
  mutable int from_child_ = -1;  // the program's stdout
  mutable std::uint64_t batches_ = 0;
  mutable std::string batch_;  // the batch in flight, for messages ("batch 3: rows 8192-12287")
};

/// The options `external` declares: command (required), timeout_seconds.
std::vector<SimulatorOption> external_options();
/// The external simulator configured by `options` (ConfigError "simulator.<key>: ..." for bad values).
std::unique_ptr<Simulator> make_external(const SimulatorOptions& options);

}  // namespace nsbi::sims
