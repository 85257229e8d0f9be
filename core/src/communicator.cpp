#include "nsbi/core/communicator.hpp"

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

std::vector<double> Communicator::all_gather(const double* values, std::size_t count) const {
  std::vector<double> out(count * static_cast<std::size_t>(size_));
  NSBI_MPI_CHECK(MPI_Allgather(values, static_cast<int>(count), MPI_DOUBLE, out.data(),
                               static_cast<int>(count), MPI_DOUBLE, comm_));
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

std::string Communicator::broadcast(const std::string& text) const {
  std::int64_t length = static_cast<std::int64_t>(text.size());
  NSBI_MPI_CHECK(MPI_Bcast(&length, 1, MPI_INT64_T, 0, comm_));
  std::string out = is_root() ? text : std::string(static_cast<std::size_t>(length), '\0');
  if (length > 0) NSBI_MPI_CHECK(MPI_Bcast(out.data(), static_cast<int>(length), MPI_CHAR, 0, comm_));
  return out;
}

std::int64_t Communicator::broadcast(std::int64_t value) const {
  NSBI_MPI_CHECK(MPI_Bcast(&value, 1, MPI_INT64_T, 0, comm_));
  return value;
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
  int root = static_cast<int>(lowest);
  std::int64_t header[2] = {static_cast<std::int64_t>(code), static_cast<std::int64_t>(message.size())};
  NSBI_MPI_CHECK(MPI_Bcast(header, 2, MPI_INT64_T, root, comm_));
  message.resize(static_cast<std::size_t>(header[1]));
  if (header[1] > 0)
    NSBI_MPI_CHECK(MPI_Bcast(message.data(), static_cast<int>(header[1]), MPI_CHAR, root, comm_));
  // An error every rank raised (a config error) reads best without a rank; one that some ranks hit names it.
  const std::int64_t expected = root_only ? 1 : size_;
  if (size_ > 1 && n_failed < expected) message = "[rank " + std::to_string(root) + "] " + message;
  throw CollectiveError(static_cast<ExitCode>(header[0]), message);
}

}  // namespace nsbi
