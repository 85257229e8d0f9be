#pragma once
// The error vocabulary of nsbi (one of each, used everywhere); every error carries its exit code:
//   - user errors: ConfigError (bad config or command line, exit 2) and InputError (bad input data, exit 3),
//     with IoError, an InputError, for a file that cannot be read or written (missing, unreadable, foreign,
//     corrupt, or refused by the operating system: no space left, an I/O error);
//   - Interrupted: a stage stopped on a signal after saving its progress (exit 4): the one way to say so;
//   - InternalError: a bug in nsbi (exit 1): a broken invariant (NSBI_ASSERT), a misuse of a library's API
//     (HDF5 refusing nsbi's arguments), a failure of oneDNN or MPI.
// An error that every rank raised together is a CollectiveError (communicator.hpp) carrying the same code.
// The CLI ends the job with the error's code and prefixes the message with the MPI rank.

#include <stdexcept>
#include <string>

namespace nsbi {

enum class ExitCode : int { success = 0, internal = 1, usage = 2, bad_input = 3, interrupted = 4 };

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

/// Bad config file, bad command line, bad option value: exit code 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(ExitCode::usage, what) {}
};

/// Data that cannot be read or written: bad input data (dataset, observed events, foreign or truncated file),
/// or a file the operating system refused to read or write (no space left, an I/O error, no permission):
/// exit code 3.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(ExitCode::bad_input, what) {}
};

/// A file that cannot be read or written: missing, unreadable, foreign or truncated, or refused by the
/// operating system (no space left, a quota, an I/O error, no permission). The user fixes the file, the
/// path or the file system: exit code 3, like any bad input.
class IoError : public InputError {
 public:
  using InputError::InputError;
};

/// A stage stopped on request (SIGTERM/SIGUSR1) after saving its progress: exit code 4.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& what) : Error(ExitCode::interrupted, what) {}
};

/// A broken internal invariant (a bug in nsbi): exit code 1.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& what) : Error(ExitCode::internal, what) {}
};

/// The operating system's error `error` (an errno value) met writing or reading `path`, for messages:
/// strerror's text and, for a full file system or quota (ENOSPC, EDQUOT), where that file system is mounted
/// and its free space, e.g. "No space left on device (the file system mounted at '/scratch' has 0 B of
/// 20.0 MiB free)".
std::string describe_system_error(int error, const std::string& path);

/// Whether the file system holding `path` (a file, existing or not) has less than 1 MiB available.
bool file_system_full(const std::string& path);

namespace detail {
[[noreturn]] void throw_internal_error(const char* condition, const std::string& message,
                                       const char* function, const char* file, int line);
}  // namespace detail

}  // namespace nsbi

/// Checks an internal invariant; on failure throws nsbi::InternalError naming the function, file and line.
#define NSBI_ASSERT(condition, message)                                                          \
  do {                                                                                           \
    if (!(condition))                                                                            \
      ::nsbi::detail::throw_internal_error(#condition, (message), __func__, __FILE__, __LINE__); \
  } while (false)
