#include "nsbi/sims/external.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "nsbi/core/error.hpp"

extern char** environ;

namespace nsbi::sims {
namespace {

// docs/external_simulators.md: every message starts with 8 magic bytes; numbers are little-endian.
constexpr char handshake_magic[8] = {'N', 'S', 'B', 'I', 'S', 'I', 'M', '1'};
constexpr char request_magic[8] = {'N', 'S', 'B', 'I', 'R', 'E', 'Q', '1'};
constexpr char response_magic[8] = {'N', 'S', 'B', 'I', 'R', 'E', 'S', '1'};
// Bounds that keep a garbled handshake from asking for absurd allocations.
constexpr std::uint64_t max_names = 4096;
constexpr std::uint64_t max_name_bytes = 4096;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the protocol's numbers are little-endian");

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = strsignal(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) +
           (name ? std::string(" (") + name + ")" : "");
  }
  return "stopped (status " + std::to_string(status) + ")";
}

// Names become config keys (simulate.proposal.<parameter>.kind) and CSV columns: plain names only.
bool is_plain_name(const std::string& name) {
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

// A name from the program for a message: bytes other than printable ASCII as \xNN, at most 64 of them shown.
std::string quoted(const std::string& name) {
  std::string text;
  for (std::size_t i = 0; i < name.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isprint(c)) {
      text += static_cast<char>(c);
    } else {
      constexpr char hex[] = "0123456789abcdef";
      text += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    }
  }
  return "'" + text + (name.size() > 64 ? "'... (" + std::to_string(name.size()) + " bytes)" : "'");
}

}  // namespace

namespace protocol {

SimulatorInfo read_handshake(const Reader& read) {
  char magic[8];
  read(magic, 8, "its handshake");
  if (std::memcmp(magic, handshake_magic, 8) != 0)
    throw Violation(
        "its output does not start with the handshake's magic bytes \"NSBISIM1\" (does it print something "
        "else to stdout first? Messages belong on stderr)");
  const auto number = [&](const std::string& what) {
    std::uint64_t value = 0;
    read(&value, sizeof value, what);
    return value;
  };
  const auto text = [&](const std::string& what) {
    const std::uint64_t length = number("the length of " + what);
    if (length == 0 || length > max_name_bytes)
      throw Violation("the handshake gives " + what + " a length of " + std::to_string(length) +
                      " bytes (1 to " + std::to_string(max_name_bytes) + ")");
    std::string value(length, '\0');
    read(value.data(), length, what);
    return value;
  };
  const auto count = [&](const std::string& what) {
    const std::uint64_t n = number("the number of " + what);
    if (n == 0 || n > max_names)
      throw Violation("the handshake declares " + std::to_string(n) + " " + what + " (1 to " +
                      std::to_string(max_names) + ")");
    return n;
  };
  // A name of a parameter or an observable: plain, and not one declared before in the same list.
  const auto name = [&](const std::string& what, const std::vector<std::string>& before) {
    const std::string value = text(what);
    if (!is_plain_name(value))
      throw Violation("the handshake declares " + what + " as " + quoted(value) +
                      ": names are letters, digits, '_' and '-' (they become config keys and CSV columns)");
    if (std::find(before.begin(), before.end(), value) != before.end())
      throw Violation("the handshake declares " + what + " as " + quoted(value) +
                      ", a name it already declared");
    return value;
  };
  SimulatorInfo info;
  info.name = text("the simulator's name");
  const std::uint64_t n_parameters = count("parameters");
  std::vector<std::string> parameter_names;
  for (std::uint64_t p = 0; p < n_parameters; ++p) {
    Parameter parameter;
    parameter.name = name("parameter " + std::to_string(p) + "'s name", parameter_names);
    parameter_names.push_back(parameter.name);
    read(&parameter.min, sizeof(double), "parameter " + parameter.name + "'s minimum");
    read(&parameter.max, sizeof(double), "parameter " + parameter.name + "'s maximum");
    if (!(std::isfinite(parameter.min) && std::isfinite(parameter.max) && parameter.min < parameter.max))
      throw Violation("the handshake declares parameter " + parameter.name + " on [" +
                      std::to_string(parameter.min) + ", " + std::to_string(parameter.max) +
                      "]: its domain must be finite with min < max");
    parameter.doc = "declared by the program";
    info.parameters.push_back(parameter);
  }
  const std::uint64_t n_observables = count("observables");
  for (std::uint64_t d = 0; d < n_observables; ++d)
    info.observables.push_back(name("observable " + std::to_string(d) + "'s name", info.observables));
  const std::uint64_t gold = number("the gold flag");
  if (gold > 1) throw Violation("the handshake's gold flag is " + std::to_string(gold) + " (0 or 1)");
  info.has_gold = gold == 1;
  return info;
}

void read_response(const Reader& read, const SimulatorInfo& info, const Batch& batch, double* x,
                   double* gold) {
  const std::uint64_t n = batch.rows;
  const std::uint64_t n_x = info.n_observables();
  char magic[8];
  read(magic, 8, "the response's magic bytes");
  if (std::memcmp(magic, response_magic, 8) != 0)
    throw Violation(
        "the response does not start with the magic bytes \"NSBIRES1\" (stray output on stdout?)");
  std::uint64_t answer[4];
  read(answer, sizeof answer, "the response header");
  const std::uint64_t gold_columns = batch.gold ? 1 + info.n_parameters() : 0;
  if (answer[0] != batch.number || answer[1] != n || answer[2] != n_x || answer[3] != gold_columns)
    throw Violation("the response is for batch " + std::to_string(answer[0]) + " with " +
                    std::to_string(answer[1]) + " rows, " + std::to_string(answer[2]) + " observables and " +
                    std::to_string(answer[3]) + " gold columns, but batch " + std::to_string(batch.number) +
                    " asked for " + std::to_string(n) + " rows, " + std::to_string(n_x) +
                    " observables and " + std::to_string(gold_columns) + " gold columns");
  read(x, n * n_x * sizeof(double), "x");
  if (batch.gold) read(gold, n * gold_columns * sizeof(double), "the gold");
  for (std::uint64_t i = 0; i < n; ++i)
    for (std::uint64_t d = 0; d < n_x; ++d)
      if (!std::isfinite(x[i * n_x + d]))
        throw Violation("row " + std::to_string(i) + " (index " + std::to_string(batch.first_index + i) +
                        ") has " + (std::isnan(x[i * n_x + d]) ? "NaN" : "±Inf") + " in observable " +
                        info.observables[d]);
  for (std::uint64_t i = 0; i < n && batch.gold; ++i)
    for (std::uint64_t c = 0; c < gold_columns; ++c)
      if (!std::isfinite(gold[i * gold_columns + c]))
        throw Violation(
            "row " + std::to_string(i) + " (index " + std::to_string(batch.first_index + i) +
            ") has a non-finite " +
            (c == 0 ? std::string("joint log ratio") : "joint score for " + info.parameters[c - 1].name));
}

}  // namespace protocol

ExternalSimulator::ExternalSimulator(ExternalOptions options) : options_(std::move(options)) {
  if (options_.command.empty()) throw ConfigError("simulator.command: name the simulator program to run");
  if (!(options_.timeout_seconds > 0)) throw ConfigError("simulator.timeout_seconds: must be positive");
  // A program that dies makes writes to its stdin fail with EPIPE instead of killing nsbi.
  signal(SIGPIPE, SIG_IGN);
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    throw InputError("external simulator: cannot create pipes: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::vector<char*> argv;
  for (auto& argument : options_.command) argv.push_back(argument.data());
  argv.push_back(nullptr);
  // No shell: the program and its arguments are passed as they are.
  const int spawned = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  if (spawned != 0) {
    pid_ = -1;
    stop();
    throw ConfigError("simulator.command: cannot run '" + options_.command[0] +
                      "': " + std::strerror(spawned));
  }
  batch_ = "the handshake";
  try {
    read_handshake();
  } catch (...) {
    stop();
    throw;
  }
}

ExternalSimulator::~ExternalSimulator() { stop(); }

std::string ExternalSimulator::program() const {
  std::string text;
  for (const auto& argument : options_.command) text += (text.empty() ? "" : " ") + argument;
  return text;
}

void ExternalSimulator::fail(const std::string& what) const {
  const bool handshake = batch_ == "the handshake";
  const std::string message =
      "external simulator '" + program() + "', " + batch_ + ": " + what +
      " (docs/external_simulators.md describes the protocol" +
      (handshake ? ")"
                 : "; the work finished before this batch is kept: run the same command again once the "
                   "program is fixed)");
  stop();
  throw InputError(message);
}

// Ends the program: closes its stdin (its cue to exit), waits briefly, then kills it. Appends nothing.
void ExternalSimulator::stop() const {
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  to_child_ = from_child_ = -1;
  if (pid_ <= 0) return;
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void ExternalSimulator::write_all(const void* data, std::size_t bytes, const std::string& what) const {
  const auto* p = static_cast<const char*>(data);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.timeout_seconds);
  while (bytes > 0) {
    pollfd fd{to_child_, POLLOUT, 0};
    const auto left = std::chrono::duration<double, std::milli>(deadline - std::chrono::steady_clock::now());
    const int ready = poll(&fd, 1, static_cast<int>(std::max(0.0, left.count())));
    if (ready == 0)
      fail("it did not read " + what + " within simulator.timeout_seconds = " +
           std::to_string(options_.timeout_seconds) + " s; it was killed");
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = write(to_child_, p, bytes);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      int status = 0;
      const bool ended = waitpid(pid_, &status, WNOHANG) == pid_;
      if (ended) pid_ = -1;
      fail("writing " + what + " failed: the program " +
           (ended ? status_text(status) : "closed its input (" + std::string(std::strerror(errno)) + ")"));
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

void ExternalSimulator::read_all(void* data, std::size_t bytes, const std::string& what) const {
  auto* p = static_cast<char*>(data);
  const std::size_t wanted = bytes;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.timeout_seconds);
  while (bytes > 0) {
    pollfd fd{from_child_, POLLIN, 0};
    const auto left = std::chrono::duration<double, std::milli>(deadline - std::chrono::steady_clock::now());
    const int ready = poll(&fd, 1, static_cast<int>(std::max(0.0, left.count())));
    if (ready == 0)
      fail("no " + what + " within simulator.timeout_seconds = " + std::to_string(options_.timeout_seconds) +
           " s (" + std::to_string(wanted - bytes) + " of " + std::to_string(wanted) +
           " bytes arrived); it was killed");
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = read(from_child_, p, bytes);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      // End of its output: it ended (or closed stdout). Its exit status says which.
      int status = 0;
      std::string ended = "closed its output";
      for (int i = 0; i < 100 && pid_ > 0; ++i) {
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          ended = status_text(status);
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      fail("the program " + ended + " after sending " + std::to_string(wanted - bytes) + " of the " +
           std::to_string(wanted) + " bytes of " + what);
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

void ExternalSimulator::read_handshake() {
  try {
    info_ = protocol::read_handshake(reader());
  } catch (const protocol::Violation& violation) {
    fail(violation.what());
  }
  info_.doc = "external simulator: " + program();
}

protocol::Reader ExternalSimulator::reader() const {
  return [this](void* data, std::size_t bytes, const std::string& what) { read_all(data, bytes, what); };
}

void ExternalSimulator::simulate(const ExecutionSpace&, const ConstMatrix& theta, const Matrix& x,
                                 std::uint64_t first_index, std::uint64_t seed) const {
  run_batch(theta, x, nullptr, nullptr, nullptr, nullptr, first_index, seed);
}

void ExternalSimulator::simulate_gold(const ExecutionSpace&, const ConstMatrix& theta, const Matrix& x,
                                      const ConstMatrix& gold_theta, const double* theta0,
                                      const Vector& log_r, const Matrix& score, std::uint64_t first_index,
                                      std::uint64_t seed) const {
  NSBI_ASSERT(info_.has_gold, "simulate_gold on an external simulator that declared no gold");
  run_batch(theta, x, &gold_theta, theta0, &log_r, &score, first_index, seed);
}

void ExternalSimulator::run_batch(const ConstMatrix& theta, const Matrix& x, const ConstMatrix* gold_theta,
                                  const double* theta0, const Vector* log_r, const Matrix* score,
                                  std::uint64_t first_index, std::uint64_t seed) const {
  const std::uint64_t n = theta.extent(0);
  const std::uint64_t n_theta = info_.n_parameters();
  const std::uint64_t n_x = info_.n_observables();
  NSBI_ASSERT(theta.extent(1) == n_theta && x.extent(0) == n && x.extent(1) == n_x &&
                  theta.span_is_contiguous() && x.span_is_contiguous(),
              "theta/x shapes do not match external simulator " + info_.name);
  const bool gold = gold_theta != nullptr;
  const std::uint64_t number = batches_;
  batch_ = "batch " + std::to_string(number) + " (" + std::to_string(n) + " rows from index " +
           std::to_string(first_index) + ")";
  if (pid_ <= 0 && to_child_ < 0) fail("the program is not running (it failed on an earlier batch)");

  const std::uint64_t header[5] = {number, first_index, seed, n, gold ? 1u : 0u};
  write_all(request_magic, 8, "the request's magic bytes");
  write_all(header, sizeof header, "the request header");
  write_all(theta.data(), n * n_theta * sizeof(double), "θ");
  if (gold) {
    write_all(theta0, n_theta * sizeof(double), "θ0");
    write_all(gold_theta->data(), n * n_theta * sizeof(double), "the gold θ");
  }

  const std::uint64_t gold_columns = gold ? 1 + n_theta : 0;
  std::vector<double> gold_rows(n * gold_columns);
  try {
    protocol::read_response(reader(), info_, {number, first_index, n, gold}, x.data(), gold_rows.data());
  } catch (const protocol::Violation& violation) {
    fail(violation.what());
  }
  for (std::uint64_t i = 0; i < n && gold; ++i) {
    (*log_r)(i) = gold_rows[i * gold_columns];
    for (std::uint64_t p = 0; p < n_theta; ++p) (*score)(i, p) = gold_rows[i * gold_columns + 1 + p];
  }
  ++batches_;
}

std::vector<SimulatorOption> external_options() {
  SimulatorOption command;
  command.key = "command";
  command.doc =
      "the simulator program and its arguments, run without a shell (docs/external_simulators.md), e.g. "
      "[python3, my_simulator.py]";
  command.string_list = true;
  SimulatorOption timeout;
  timeout.key = "timeout_seconds";
  timeout.default_value = "300";
  timeout.doc =
      "seconds the program may take for its handshake and for each batch before it is killed and the stage "
      "fails";
  timeout.minimum = 0.001;
  return {command, timeout};
}

std::unique_ptr<Simulator> make_external(const SimulatorOptions& options) {
  ExternalOptions external;
  for (const auto& [key, value] : options) {
    if (key == "command") {
      const YAML::Node list = YAML::Load(value);
      if (!list.IsSequence() || list.size() == 0)
        throw ConfigError(
            "simulator.command: give the program and its arguments as a list, e.g. [python3, sim.py]");
      for (const auto& item : list) external.command.push_back(item.as<std::string>());
    } else if (key == "timeout_seconds") {
      external.timeout_seconds = std::stod(value);
    } else {
      throw ConfigError("simulator." + key + ": simulator external has no such option");
    }
  }
  return std::make_unique<ExternalSimulator>(external);
}

}  // namespace nsbi::sims
