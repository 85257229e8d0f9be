#pragma once
// A thin wrapper over an MPI communicator: every MPI call is checked, and failures that happen on some
// ranks only are turned into the same error on all ranks (agree), so a user error never deadlocks a job.

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"

/// Checks the return code of an MPI call; on failure throws nsbi::InternalError with MPI's own message.
#define NSBI_MPI_CHECK(call) ::nsbi::detail::check_mpi((call), #call, __func__, __FILE__, __LINE__)

namespace nsbi {

namespace detail {
void check_mpi(int code, const char* call, const char* function, const char* file, int line);
}

/// An error that every rank of a communicator raised together, with the same message: reported once (by
/// rank 0), and the job ends with its exit code on every rank without MPI_Abort.
class CollectiveError : public Error {
 public:
  CollectiveError(ExitCode code, const std::string& what) : Error(code, what) {}
};

class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD);

  MPI_Comm get() const noexcept { return comm_; }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  bool is_root() const noexcept { return rank_ == 0; }

  /// Collective: the communicator of the ranks that pass the same `color`, ordered as in this one. It owns
  /// its MPI communicator (freed with the last copy).
  Communicator split(int color) const;

  void barrier() const;
  std::int64_t sum(std::int64_t value) const;
  std::int64_t max(std::int64_t value) const;
  double max(double value) const;
  bool any(bool flag) const;
  /// In place: every rank's values[i] becomes the sum over ranks (MPI_Allreduce, MPI_IN_PLACE).
  void sum_in_place(float* values, std::size_t count) const;
  void sum_in_place(double* values, std::size_t count) const;
  void sum_in_place(std::int64_t* values, std::size_t count) const;
  /// Every rank's `count` values, in rank order, on every rank ([size * count]).
  std::vector<double> all_gather(const double* values, std::size_t count) const;
  std::vector<std::uint64_t> all_gather(const std::uint64_t* values, std::size_t count) const;
  /// Rank `root`'s string on every rank.
  std::string broadcast(const std::string& text, int root = 0) const;
  /// In place: every rank's value, or buffer resized to root's, becomes rank `root`'s. Buffers of any size
  /// (sent in pieces: MPI counts are int).
  void broadcast(std::uint64_t& value, int root = 0) const;
  void broadcast(std::vector<char>& bytes, int root = 0) const;
  void broadcast(std::vector<unsigned char>& bytes, int root = 0) const;
  void broadcast(std::vector<double>& values, int root = 0) const;

  /// Ends the whole job at once with exit code `code` (MPI_Abort): for an error some ranks met alone, which
  /// the others, inside another collective call, cannot be told.
  [[noreturn]] void abort(ExitCode code) const;

  /// Runs `work` on every rank (or on rank 0 only when `root_only`). If it throws an nsbi::Error on any rank,
  /// every rank throws a CollectiveError carrying the message (prefixed with the rank when size > 1) and exit
  /// code of the lowest failing rank. Collective: every rank must call it.
  void agree(const std::function<void()>& work, bool root_only = false) const;

 private:
  MPI_Comm comm_;
  std::shared_ptr<MPI_Comm> owned_;  // set when this object created comm_ (split)
  int rank_ = 0;
  int size_ = 1;

  /// Rank `root`'s `bytes` bytes at `data` on every rank; every rank passes the same size.
  void broadcast_bytes(void* data, std::size_t bytes, int root) const;
  /// Root's size, then root's elements, into `values` on every rank.
  template <class Vector>
  void broadcast_vector(Vector& values, int root) const;
};

}  // namespace nsbi
