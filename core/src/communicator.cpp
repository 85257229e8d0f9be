#include "nsbi/core/communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <vector>

namespace nsbi {

namespace detail {
void check_mpi(int code, const char* call, const char* function, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::ostringstream what;
  what << function << ": " << call << " failed on rank " << rank << ": " << text << " (" << file << ":"
       << line << ")";
  throw InternalError(what.str());
}
}  // namespace detail

Communicator::Communicator(MPI_Comm comm) : comm_(comm) {
  NSBI_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  NSBI_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

Communicator Communicator::split(int color) const {
  MPI_Comm comm = MPI_COMM_NULL;
  NSBI_MPI_CHECK(MPI_Comm_split(comm_, color, rank_, &comm));
  Communicator out(comm);
  out.owned_ = std::shared_ptr<MPI_Comm>(new MPI_Comm(comm), [](MPI_Comm* owned) {
    MPI_Comm_free(owned);
    delete owned;
  });
  return out;
}

void Communicator::sum_in_place(float* values, std::size_t count) const {
  NSBI_ASSERT(count <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "too many values");
  NSBI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_));
}

void Communicator::sum_in_place(double* values, std::size_t count) const {
  NSBI_ASSERT(count <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "too many values");
  NSBI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm_));
}

void Communicator::sum_in_place(std::int64_t* values, std::size_t count) const {
  NSBI_ASSERT(count <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "too many values");
  NSBI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_INT64_T, MPI_SUM, comm_));
}

std::vector<double> Communicator::all_gather(const double* values, std::size_t count) const {
  std::vector<double> out(count * static_cast<std::size_t>(size_));
  NSBI_MPI_CHECK(MPI_Allgather(values, static_cast<int>(count), MPI_DOUBLE, out.data(),
                               static_cast<int>(count), MPI_DOUBLE, comm_));
  return out;
}

std::vector<std::uint64_t> Communicator::all_gather(const std::uint64_t* values, std::size_t count) const {
  std::vector<std::uint64_t> out(count * static_cast<std::size_t>(size_));
  NSBI_MPI_CHECK(MPI_Allgather(values, static_cast<int>(count), MPI_UINT64_T, out.data(),
                               static_cast<int>(count), MPI_UINT64_T, comm_));
  return out;
}

void Communicator::barrier() const { NSBI_MPI_CHECK(MPI_Barrier(comm_)); }

std::int64_t Communicator::sum(std::int64_t value) const {
  std::int64_t out = 0;
  NSBI_MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_SUM, comm_));
  return out;
}

std::int64_t Communicator::max(std::int64_t value) const {
  std::int64_t out = 0;
  NSBI_MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MAX, comm_));
  return out;
}

double Communicator::max(double value) const {
  double out = 0;
  NSBI_MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, comm_));
  return out;
}

bool Communicator::any(bool flag) const { return max(std::int64_t{flag ? 1 : 0}) != 0; }

void Communicator::broadcast_bytes(void* data, std::size_t bytes, int root) const {
  constexpr std::size_t piece_bytes = std::size_t{1} << 30;
  auto* cursor = static_cast<char*>(data);
  for (std::size_t offset = 0; offset < bytes; offset += piece_bytes) {
    const std::size_t piece = std::min(piece_bytes, bytes - offset);
    NSBI_MPI_CHECK(MPI_Bcast(cursor + offset, static_cast<int>(piece), MPI_BYTE, root, comm_));
  }
}

void Communicator::broadcast(std::uint64_t& value, int root) const {
  NSBI_MPI_CHECK(MPI_Bcast(&value, 1, MPI_UINT64_T, root, comm_));
}

template <class Vector>
void Communicator::broadcast_vector(Vector& values, int root) const {
  std::uint64_t count = values.size();
  broadcast(count, root);
  values.resize(static_cast<std::size_t>(count));
  broadcast_bytes(values.data(), values.size() * sizeof(values[0]), root);
}

void Communicator::broadcast(std::vector<char>& bytes, int root) const { broadcast_vector(bytes, root); }

void Communicator::broadcast(std::vector<unsigned char>& bytes, int root) const {
  broadcast_vector(bytes, root);
}

void Communicator::broadcast(std::vector<double>& values, int root) const { broadcast_vector(values, root); }

std::string Communicator::broadcast(const std::string& text, int root) const {
  std::vector<char> bytes(text.begin(), text.end());
  broadcast(bytes, root);
  return std::string(bytes.begin(), bytes.end());
}

void Communicator::abort(ExitCode code) const {
  MPI_Abort(comm_, static_cast<int>(code));
  std::_Exit(static_cast<int>(code));  // MPI_Abort does not return; this is for the compiler
}

void Communicator::agree(const std::function<void()>& work, bool root_only) const {
  std::int64_t failed_rank = size_;  // "nobody" sorts after every real rank
  ExitCode code = ExitCode::success;
  std::string message;
  if (!root_only || is_root()) {
    try {
      work();
    } catch (const Error& e) {
      failed_rank = rank_;
      code = e.code();
      message = e.what();
    }
  }
  const bool i_failed = failed_rank != size_;
  const std::int64_t lowest = -max(std::int64_t{-failed_rank});
  if (lowest == size_) return;
  const std::int64_t n_failed = sum(std::int64_t{i_failed ? 1 : 0});
  const int root = static_cast<int>(lowest);
  std::uint64_t agreed_code = static_cast<std::uint64_t>(code);
  broadcast(agreed_code, root);
  message = broadcast(message, root);
  // An error every rank raised (a config error) reads best without a rank; one that some ranks hit names it.
  const std::int64_t expected = root_only ? 1 : size_;
  if (size_ > 1 && n_failed < expected) message = "[rank " + std::to_string(root) + "] " + message;
  throw CollectiveError(static_cast<ExitCode>(agreed_code), message);
}

}  // namespace nsbi
