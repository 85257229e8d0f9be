#include "nsbi/distributed/work_queue.hpp"

#include <fcntl.h>
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <system_error>

#include "nsbi/core/log.hpp"

namespace nsbi::distributed {
namespace {

namespace fs = std::filesystem;

constexpr char journal_magic[8] = {'N', 'S', 'B', 'I', 'J', 'R', 'N', '1'};
constexpr const char* journal_suffix = ".journal";
// Records reach the OS after every item; a sync to disk costs milliseconds, so it is rationed.
constexpr std::chrono::seconds sync_interval{2};

std::uint64_t fnv1a(const unsigned char* bytes, std::size_t count, std::uint64_t hash) {
  for (std::size_t i = 0; i < count; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}
constexpr std::uint64_t fnv1a_basis = 0xcbf29ce484222325ULL;

std::uint64_t record_checksum(std::uint64_t item, std::uint64_t item_size, const double* values) {
  std::uint64_t hash = fnv1a(reinterpret_cast<const unsigned char*>(&item), 8, fnv1a_basis);
  hash = fnv1a(reinterpret_cast<const unsigned char*>(&item_size), 8, hash);
  return fnv1a(reinterpret_cast<const unsigned char*>(values), item_size * 8, hash);
}

std::string system_message() { return std::strerror(errno); }

// A run's tag for its journal names: random, so that no two runs (even with the same rank count) share a
// file.
std::string new_run_id() {
  std::random_device device;
  const std::uint64_t bits =
      (std::uint64_t{device()} << 32) ^ device() ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

// "-slice<k>of<K>" in the names of a sliced run's journals, "" for an unsliced run.
std::string slice_tag(const WorkSlice& slice) {
  if (slice.whole()) return "";
  return "-slice" + std::to_string(slice.index) + "of" + std::to_string(slice.count);
}

std::string journal_path(const std::string& directory, const std::string& run_id, const WorkSlice& slice,
                         int rank) {
  return directory + "/" + run_id + slice_tag(slice) + "-rank" + std::to_string(rank) + journal_suffix;
}

// Whether a sliced run reads the journal `name`: its own slice's and unsliced runs' (an unsliced run reads
// every journal).
bool readable_by(const WorkSlice& slice, const std::string& name) {
  if (slice.whole()) return true;
  const std::size_t at = name.find("-slice");
  return at == std::string::npos ||
         name.compare(at, slice_tag(slice).size() + 5, slice_tag(slice) + "-rank") == 0;
}

bool is_journal(const fs::directory_entry& entry) {
  const std::string name = entry.path().filename().string();
  const std::size_t suffix = std::strlen(journal_suffix);
  std::error_code error;
  return entry.is_regular_file(error) && name.size() > suffix &&
         name.compare(name.size() - suffix, suffix, journal_suffix) == 0;
}

std::vector<std::string> journals_in(const std::string& directory) {
  std::vector<std::string> paths;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error))
    if (is_journal(entry)) paths.push_back(entry.path().string());
  if (error) throw IoError("nsbi::run_work_queue: cannot list '" + directory + "': " + error.message());
  std::sort(paths.begin(), paths.end());  // a fixed order, so that a duplicate is always reported alike
  return paths;
}

// One rank's journal of this run, created when it finishes its first item (a rank that gets no item leaves
// no file).
class JournalWriter {
 public:
  JournalWriter(std::string path, std::string identity)
      : path_(std::move(path)), identity_(std::move(identity)) {}
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  ~JournalWriter() {
    if (file_) std::fclose(file_);
  }

  void append(std::uint64_t item, const double* values, std::size_t item_size) {
    if (!file_) open();
    record_.resize(3 + item_size);
    record_[0] = item;
    record_[1] = item_size;
    std::memcpy(record_.data() + 2, values, item_size * 8);
    record_[2 + item_size] = record_checksum(item, item_size, values);
    // One fwrite per record: a crash leaves at most the last record torn, which reading recognises.
    if (std::fwrite(record_.data(), 8, record_.size(), file_) != record_.size() || std::fflush(file_) != 0)
      fail("write");
    if (std::chrono::steady_clock::now() - last_sync_ >= sync_interval) sync();
  }

  void close() {
    if (!file_) return;
    sync();
    std::FILE* file = file_;
    file_ = nullptr;
    if (std::fclose(file) != 0) fail("close");
  }

 private:
  void open() {
    // O_EXCL: a run never appends to a file it did not create.
    const int descriptor = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (descriptor < 0) fail("create");
    file_ = fdopen(descriptor, "wb");
    if (!file_) {
      ::close(descriptor);
      fail("open");
    }
    const std::uint64_t length = identity_.size();
    if (std::fwrite(journal_magic, 1, 8, file_) != 8 || std::fwrite(&length, 8, 1, file_) != 1 ||
        std::fwrite(identity_.data(), 1, identity_.size(), file_) != identity_.size() ||
        std::fflush(file_) != 0)
      fail("write");
    sync();
    // The new name must survive a crash too, or the records in it are lost with it.
    const std::string directory = fs::path(path_).parent_path().string();
    const int directory_descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
    if (directory_descriptor >= 0) {
      ::fsync(directory_descriptor);
      ::close(directory_descriptor);
    }
  }

  void sync() {
    if (::fsync(fileno(file_)) != 0) fail("sync");
    last_sync_ = std::chrono::steady_clock::now();
  }

  [[noreturn]] void fail(const char* what) const {
    throw IoError("nsbi::run_work_queue: cannot " + std::string(what) + " the work journal '" + path_ +
                  "': " + describe_system_error(errno, path_) +
                  "; the items journaled before are kept: run the same command to resume once that is fixed");
  }

  std::string path_;
  std::string identity_;
  std::FILE* file_ = nullptr;
  std::vector<std::uint64_t> record_;
  std::chrono::steady_clock::time_point last_sync_;
};

// The results held by the journals (rank 0 only): results[item * item_size ..] and whether item is there.
struct JournalContents {
  std::vector<double> results;
  std::vector<unsigned char> present;
  std::uint64_t n_present = 0;
};

class FileCloser {
 public:
  explicit FileCloser(std::FILE* file) : file_(file) {}
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;
  ~FileCloser() { std::fclose(file_); }

 private:
  std::FILE* file_;
};

// A work journal open for reading from its start, with the bytes consumed so far.
class JournalInput {
 public:
  explicit JournalInput(const std::string& path) : path_(path), file_(open(path)), closer_(file_) {
    struct stat info {};
    if (fstat(fileno(file_), &info) != 0)
      throw IoError("nsbi::run_work_queue: cannot read the work journal '" + path_ +
                    "': " + system_message());
    size_ = static_cast<std::uint64_t>(info.st_size);
  }

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t offset() const { return offset_; }
  /// Moves back to `offset`, the start of a record that turned out torn, for the warning.
  void rewind_to(std::uint64_t offset) { offset_ = offset; }

  /// Reads `bytes` into `to`; false, reading nothing, if the file ends before.
  bool read(void* to, std::uint64_t bytes) {
    if (size_ - offset_ < bytes) return false;
    if (std::fread(to, 1, bytes, file_) != bytes)
      throw IoError("nsbi::run_work_queue: cannot read the work journal '" + path_ +
                    "': " + system_message());
    offset_ += bytes;
    return true;
  }

  /// What a run that died while writing leaves behind; the items from there on are simply computed again.
  void torn(const char* what) const {
    log::warning("work queue: the work journal '", path_, "' has ", what, " at byte ", offset_,
                 "; reading it stops there and the items from there on are computed again");
  }

 private:
  static std::FILE* open(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file)
      throw IoError("nsbi::run_work_queue: cannot open the work journal '" + path + "': " + system_message());
    return file;
  }

  std::string path_;
  std::FILE* file_;
  FileCloser closer_;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
};

// Reads the journal's magic and identity: false (with a warning) if the header is torn; an error if the file
// is no journal or holds another configuration's results.
bool read_journal_header(JournalInput& input, const WorkQueueOptions& options) {
  char magic[8] = {};
  const std::uint64_t magic_bytes = std::min<std::uint64_t>(input.size(), 8);
  input.read(magic, magic_bytes);
  if (std::memcmp(magic, journal_magic, magic_bytes) != 0)
    throw IoError("nsbi::run_work_queue: '" + input.path() +
                  "' is not an nsbi work journal; remove it (or run with --force)");
  std::uint64_t length = 0;
  if (magic_bytes < 8 || !input.read(&length, 8)) {
    input.torn("an incomplete header");
    return false;
  }
  std::string identity;
  if (length > input.size() - input.offset()) {
    input.torn("an incomplete header");
    return false;
  }
  identity.resize(length);
  input.read(identity.data(), length);
  if (identity != options.identity)
    throw ConfigError(
        "nsbi::run_work_queue: the work journal '" + input.path() +
        "' holds results from another configuration (or seed); remove its directory or run with "
        "--force to discard them");
  return true;
}

// Adds the complete records after the header to `contents`, up to the end or the first torn record.
void read_journal_records(JournalInput& input, const WorkQueueOptions& options, JournalContents& contents) {
  const std::string& path = input.path();
  const std::uint64_t size = input.size();
  const std::size_t item_size = options.item_size;
  std::vector<double> values;
  while (input.offset() < size) {
    const std::uint64_t record_start = input.offset();
    std::uint64_t head[2] = {};
    if (!input.read(head, 16)) return input.torn("an incomplete record");
    const std::uint64_t item = head[0];
    const std::uint64_t record_size = head[1];
    // A corrupt size must not allocate more than the file holds.
    if (record_size > (size - input.offset()) / 8 || (size - input.offset()) / 8 - record_size < 1) {
      input.rewind_to(record_start);
      return input.torn("an incomplete record");
    }
    values.resize(record_size);
    std::uint64_t checksum = 0;
    input.read(values.data(), record_size * 8);
    input.read(&checksum, 8);
    if (checksum != record_checksum(item, record_size, values.data())) {
      input.rewind_to(record_start);
      return input.torn("a corrupt record");
    }
    if (record_size != item_size || item >= options.n_items)
      throw ConfigError("nsbi::run_work_queue: the work journal '" + path + "' holds item " +
                        std::to_string(item) + " of " + std::to_string(record_size) +
                        " values, but this run has " + std::to_string(options.n_items) + " items of " +
                        std::to_string(item_size) +
                        ": results from another configuration; remove its directory "
                        "or run with --force to discard them");
    double* slot = contents.results.data() + item * item_size;
    if (contents.present[item]) {
      // The same item twice (an earlier run recomputed what it could not know was done): harmless if the
      // bits agree, a determinism bug if not.
      if (std::memcmp(slot, values.data(), item_size * 8) != 0)
        throw InternalError("nsbi::run_work_queue: item " + std::to_string(item) + " in '" + path +
                            "' differs from the same item in another journal of '" + options.directory +
                            "': the work is not a function of the item alone");
      continue;
    }
    std::memcpy(slot, values.data(), item_size * 8);
    contents.present[item] = 1;
    ++contents.n_present;
  }
}

// Adds the complete records of the journal at `path` to `contents`. A torn or corrupt record ends the
// reading of that file (the process that wrote it died there); another identity is the user's error.
void read_journal(const std::string& path, const WorkQueueOptions& options, JournalContents& contents) {
  JournalInput input(path);
  if (read_journal_header(input, options)) read_journal_records(input, options, contents);
}

// Runs `work` for Communicator::agree, which passes on nsbi errors only: anything else (std::filesystem,
// std::bad_alloc) would leave the other ranks waiting in the collective.
std::function<void()> with_nsbi_errors(const char* function, const std::function<void()>& work) {
  return [function, work] {
    try {
      work();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw InternalError(std::string(function) + ": " + e.what());
    }
  };
}

// The first error a rank met in its loop, kept until every rank has finished its current item.
struct Failure {
  bool failed = false;
  ExitCode code = ExitCode::success;
  std::string message;
};

// The shared counter: word 0 numbers the pending items handed out, word 1 counts the items finished by this
// run (for rank 0's progress). Both live on rank 0; every access is a passive-target atomic.
class WorkCounter {
 public:
  explicit WorkCounter(const Communicator& comm) {
    const MPI_Aint bytes = comm.is_root() ? 2 * sizeof(std::uint64_t) : 0;
    NSBI_MPI_CHECK(
        MPI_Win_allocate(bytes, sizeof(std::uint64_t), MPI_INFO_NULL, comm.get(), &words_, &window_));
    if (comm.is_root()) {
      NSBI_MPI_CHECK(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window_));
      words_[0] = 0;
      words_[1] = 0;
      NSBI_MPI_CHECK(MPI_Win_sync(window_));
      NSBI_MPI_CHECK(MPI_Win_unlock(0, window_));
    }
    comm.barrier();
  }
  WorkCounter(const WorkCounter&) = delete;
  WorkCounter& operator=(const WorkCounter&) = delete;
  // Not freed on an exception: MPI_Win_free is collective, and an MPI failure ends the job anyway.
  void free() { NSBI_MPI_CHECK(MPI_Win_free(&window_)); }

  /// Takes a ticket (adds `increment` to word 0) after adding `finished` to word 1; returns the ticket and,
  /// when `finished_total` is set, the new value of word 1.
  std::uint64_t take(std::uint64_t increment, std::uint64_t finished, std::uint64_t* finished_total) {
    std::uint64_t ticket = 0;
    NSBI_MPI_CHECK(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_));
    if (finished > 0)
      NSBI_MPI_CHECK(MPI_Accumulate(&finished, 1, MPI_UINT64_T, 0, 1, 1, MPI_UINT64_T, MPI_SUM, window_));
    NSBI_MPI_CHECK(MPI_Fetch_and_op(&increment, &ticket, MPI_UINT64_T, 0, 0, MPI_SUM, window_));
    if (finished_total)
      NSBI_MPI_CHECK(MPI_Fetch_and_op(nullptr, finished_total, MPI_UINT64_T, 0, 1, MPI_NO_OP, window_));
    NSBI_MPI_CHECK(MPI_Win_unlock(0, window_));
    return ticket;
  }

 private:
  MPI_Win window_ = MPI_WIN_NULL;
  std::uint64_t* words_ = nullptr;
};

using WorkFunction = std::function<void(std::uint64_t item, double* out)>;

// Rank 0 alone reads the earlier journals (not every rank the same files) into `contents` and names this run
// `run_id`; every rank gets the name and its slice's items still to compute, in increasing order.
std::vector<std::uint64_t> pending_items(const Communicator& comm, const WorkQueueOptions& options,
                                         JournalContents& contents, std::string& run_id) {
  const std::uint64_t n_items = options.n_items;
  const auto read_earlier_journals = [&] {
    std::error_code error;
    fs::create_directories(options.directory, error);
    if (error)
      throw IoError("nsbi::run_work_queue: cannot create the journal directory '" + options.directory +
                    "': " + error.message());
    contents.results.assign(n_items * options.item_size, 0.0);
    contents.present.assign(n_items, 0);
    for (const std::string& path : journals_in(options.directory))
      if (readable_by(options.slice, fs::path(path).filename().string()))
        read_journal(path, options, contents);
    run_id = new_run_id();
  };
  comm.agree(with_nsbi_errors("nsbi::run_work_queue", read_earlier_journals), /*root_only=*/true);
  run_id = comm.broadcast(run_id);
  std::vector<unsigned char> done = comm.is_root() ? contents.present : std::vector<unsigned char>();
  comm.broadcast(done);
  std::vector<std::uint64_t> pending;
  for (std::uint64_t item = options.slice.index; item < n_items; item += options.slice.count)
    if (!done[item]) pending.push_back(item);
  return pending;
}

// Computes the `pending` items that the shared counter hands this rank, journaling each, until none is left,
// a stop is requested or an item fails (kept in `failure`); rank 0 reports progress when `report`. Returns
// the items this rank computed. Collective (the counter), whatever happens in the loop.
std::uint64_t compute_items(const Communicator& comm, const WorkQueueOptions& options,
                            const std::string& run_id, const std::vector<std::uint64_t>& pending,
                            std::uint64_t done_at_start, bool report, const WorkFunction& work,
                            Failure& failure) {
  const std::uint64_t n_pending = pending.size();
  // Closing the counter (adding n_pending, so that every later ticket is past the end) is how a rank that
  // stops or fails tells the others to take no more items. Each rank closes it at most once.
  NSBI_ASSERT(
      n_pending <= std::numeric_limits<std::uint64_t>::max() / (static_cast<std::uint64_t>(comm.size()) + 2),
      "too many work items for the shared counter");
  WorkCounter counter(comm);
  JournalWriter journal(journal_path(options.directory, run_id, options.slice, comm.rank()),
                        options.identity);
  std::vector<double> out(options.item_size);
  std::uint64_t computed = 0;
  std::uint64_t unreported = 0;
  const auto remember = [&](ExitCode code, const std::string& message) {
    failure = {true, code, message};
    counter.take(n_pending, unreported, nullptr);
    unreported = 0;
  };
  for (;;) {
    std::uint64_t item = 0;
    try {
      if (options.stop_requested && options.stop_requested()) {
        counter.take(n_pending, unreported, nullptr);
        break;
      }
      std::uint64_t finished_total = 0;
      const std::uint64_t ticket = counter.take(1, unreported, report ? &finished_total : nullptr);
      unreported = 0;
      if (report) options.progress(done_at_start + finished_total, done_at_start);
      if (ticket >= n_pending) break;
      item = pending[ticket];
      std::fill(out.begin(), out.end(), 0.0);
      work(item, out.data());
      journal.append(item, out.data(), options.item_size);
      ++computed;
      ++unreported;
    } catch (const Error& e) {
      remember(e.code(), e.what());
      break;
    } catch (const std::exception& e) {
      remember(ExitCode::internal,
               "nsbi::run_work_queue: work item " + std::to_string(item) + " failed: " + e.what());
      break;
    } catch (...) {
      remember(ExitCode::internal, "nsbi::run_work_queue: work item " + std::to_string(item) +
                                       " failed with an unknown exception");
      break;
    }
  }
  try {
    journal.close();
  } catch (const Error& e) {
    if (!failure.failed) failure = {true, e.code(), e.what()};
  }
  counter.free();
  return computed;
}

// Merge of an unsliced run: rank 0 adds this run's journals (what is on disk, not what is in memory) to those
// read at start in `contents` and checks that every item is there; every rank gets all results.
std::vector<double> merged_results(const Communicator& comm, const WorkQueueOptions& options,
                                   const std::string& run_id, JournalContents& contents) {
  const auto read_this_run = [&] {
    for (int rank = 0; rank < comm.size(); ++rank) {
      const std::string path = journal_path(options.directory, run_id, options.slice, rank);
      std::error_code error;
      if (fs::exists(path, error)) read_journal(path, options, contents);
    }
    if (contents.n_present == options.n_items) return;
    const auto missing = std::find(contents.present.begin(), contents.present.end(), 0);
    throw InternalError("nsbi::run_work_queue: item " + std::to_string(missing - contents.present.begin()) +
                        " was computed but is missing from the journals of '" + options.directory + "'");
  };
  comm.agree(with_nsbi_errors("nsbi::run_work_queue", read_this_run), /*root_only=*/true);
  std::vector<double> results = comm.is_root() ? std::move(contents.results) : std::vector<double>();
  comm.broadcast(results);
  return results;
}

}  // namespace

WorkQueueResult run_work_queue(const Communicator& comm, const WorkQueueOptions& options,
                               const WorkFunction& work) {
  NSBI_ASSERT(options.item_size >= 1, "a work item must have at least one result value");
  NSBI_ASSERT(!options.directory.empty(), "the work queue needs a journal directory");
  NSBI_ASSERT(options.slice.count >= 1 && options.slice.index < options.slice.count,
              "a work slice's index must be below its count");
  NSBI_ASSERT(options.n_items <= std::numeric_limits<std::uint64_t>::max() / 8 / options.item_size,
              "too many work items");

  JournalContents contents;
  std::string run_id;
  const std::vector<std::uint64_t> pending = pending_items(comm, options, contents, run_id);
  WorkQueueResult result;
  const std::uint64_t slice_items = options.slice.size(options.n_items);
  result.items_done_at_start = slice_items - pending.size();
  const bool report = comm.is_root() && static_cast<bool>(options.progress);
  std::uint64_t computed = 0;
  Failure failure;
  if (!pending.empty())
    computed =
        compute_items(comm, options, run_id, pending, result.items_done_at_start, report, work, failure);
  // Every rank has finished its current item: the same error everywhere, or none.
  comm.agree([&] {
    if (failure.failed) throw Error(failure.code, failure.message);
  });

  result.items_computed = static_cast<std::uint64_t>(comm.sum(static_cast<std::int64_t>(computed)));
  const std::uint64_t items_done = result.items_done_at_start + result.items_computed;
  NSBI_ASSERT(items_done <= slice_items, "more items finished than there are");
  // The last word on progress, once every rank is done (a callback that throws must not strand the others).
  const auto report_final = [&] {
    if (report) options.progress(items_done, result.items_done_at_start);
  };
  comm.agree(with_nsbi_errors("nsbi::run_work_queue", report_final), /*root_only=*/true);
  // Every rank has the same counts: they throw alike, without agreeing first.
  if (items_done < slice_items)
    throw CollectiveError(ExitCode::interrupted, "stopped by a signal after " + std::to_string(items_done) +
                                                     " of " + std::to_string(slice_items) +
                                                     " work items; the finished ones are journaled in '" +
                                                     options.directory + "': run the same command to resume");
  // A slice's results stay in its journals: the unsliced run that follows merges every slice.
  if (!options.slice.whole()) return result;
  result.results = merged_results(comm, options, run_id, contents);
  return result;
}

WorkJournalSummary summarize_work_journals(const std::string& directory) {
  WorkJournalSummary summary;
  std::error_code error;
  if (!fs::is_directory(directory, error)) return summary;
  std::vector<std::uint64_t> items;
  for (const std::string& path : journals_in(directory)) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) continue;
    FileCloser closer(file);
    char magic[8] = {};
    std::uint64_t length = 0;
    if (std::fread(magic, 1, 8, file) != 8 || std::memcmp(magic, journal_magic, 8) != 0 ||
        std::fread(&length, 8, 1, file) != 1 || std::fseek(file, static_cast<long>(length), SEEK_CUR) != 0)
      continue;
    ++summary.files;
    std::vector<double> values;
    for (;;) {
      std::uint64_t head[2] = {};
      std::uint64_t checksum = 0;
      if (std::fread(head, 8, 2, file) != 2 || head[1] > (std::uint64_t{1} << 28)) break;
      values.resize(head[1]);
      if (std::fread(values.data(), 8, head[1], file) != head[1] || std::fread(&checksum, 8, 1, file) != 1 ||
          checksum != record_checksum(head[0], head[1], values.data()))
        break;
      items.push_back(head[0]);
    }
    struct statx times {};
    if (statx(AT_FDCWD, path.c_str(), 0, STATX_BTIME | STATX_MTIME, &times) == 0) {
      const double modified = static_cast<double>(times.stx_mtime.tv_sec) + 1e-9 * times.stx_mtime.tv_nsec;
      summary.last_modified = std::max(summary.last_modified, modified);
      if (times.stx_mask & STATX_BTIME) {
        const double born = static_cast<double>(times.stx_btime.tv_sec) + 1e-9 * times.stx_btime.tv_nsec;
        summary.first_created = summary.first_created == 0 ? born : std::min(summary.first_created, born);
      }
    }
  }
  std::sort(items.begin(), items.end());
  summary.items = static_cast<std::uint64_t>(std::unique(items.begin(), items.end()) - items.begin());
  return summary;
}

void remove_work_journals(const Communicator& comm, const std::string& directory) {
  const auto remove = [&] {
    std::error_code error;
    if (!fs::exists(directory, error)) return;
    for (const std::string& path : journals_in(directory))
      if (!fs::remove(path, error) && error)
        throw IoError("nsbi::remove_work_journals: cannot remove '" + path + "': " + error.message());
    if (fs::is_empty(directory, error) && !error) fs::remove(directory, error);
    if (error)
      throw IoError("nsbi::remove_work_journals: cannot remove '" + directory + "': " + error.message());
  };
  comm.agree(with_nsbi_errors("nsbi::remove_work_journals", remove), /*root_only=*/true);
}

}  // namespace nsbi::distributed
