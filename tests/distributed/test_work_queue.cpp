// The journaled work queue on 1, 2 and 4 ranks: merged results equal the serial computation bit for bit,
// every item runs once, slow ranks take fewer items, and a stopped, torn, failed or foreign run resumes (or
// is refused) as the contract says.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nsbi/distributed/work_queue.hpp"

namespace nsbi::distributed {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t item_size = 3;

// The result of an item: a function of the index alone, with a NaN and an infinity now and then (the queue
// must carry non-finite values unchanged).
void item_value(std::uint64_t item, double* out) {
  const double x = static_cast<double>(item);
  out[0] = std::sin(0.37 * x) * 1e3 + x;
  out[1] = item % 17 == 5 ? std::numeric_limits<double>::quiet_NaN() : std::exp(-0.01 * x) / 3.0;
  out[2] = item % 23 == 7 ? -std::numeric_limits<double>::infinity() : std::sqrt(x + 0.5);
}

std::vector<double> serial_results(std::uint64_t n_items) {
  std::vector<double> values(n_items * item_size);
  for (std::uint64_t item = 0; item < n_items; ++item) item_value(item, values.data() + item * item_size);
  return values;
}

// Bitwise, so that NaNs compare equal to themselves (and == on doubles never runs into the FE_INVALID trap).
void expect_same_bits(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    ASSERT_EQ(std::memcmp(&actual[i], &expected[i], sizeof(double)), 0)
        << "value " << i << " (item " << i / item_size << ")";
}

// A journal directory of its own for each test: rank 0 makes a fresh name and every rank uses it.
class WorkQueue : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base;
    if (world.is_root()) {
      char name[] = "/tmp/nsbi-test-work-queue-XXXXXX";
      ASSERT_NE(mkdtemp(name), nullptr);
      base = name;
    }
    base_ = world.broadcast(base);
    directory = base_ + "/journals";  // absent at first: the queue creates it
  }
  void TearDown() override {
    world.barrier();
    if (world.is_root()) fs::remove_all(base_);
  }

  WorkQueueOptions options(std::uint64_t n_items, const std::string& identity = "work-queue test v1") const {
    WorkQueueOptions o;
    o.directory = directory;
    o.identity = identity;
    o.n_items = n_items;
    o.item_size = item_size;
    return o;
  }

  // Per item, how many times this rank computed it; summed over ranks.
  std::vector<double> summed(std::vector<double> counts) const {
    world.sum_in_place(counts.data(), counts.size());
    return counts;
  }

  std::vector<std::string> journal_files() const {
    std::vector<std::string> paths;
    for (const auto& entry : fs::directory_iterator(directory)) paths.push_back(entry.path().string());
    std::sort(paths.begin(), paths.end());
    return paths;
  }

  const Communicator world;
  std::string directory;

 private:
  std::string base_;
};

// Runs the queue with a work function that computes item_value and counts, per item, the calls on this rank.
WorkQueueResult run_counting(const Communicator& world, const WorkQueueOptions& options,
                             std::vector<double>& counts,
                             const std::function<void(std::uint64_t)>& before = nullptr) {
  counts.assign(options.n_items, 0.0);
  return run_work_queue(world, options, [&](std::uint64_t item, double* out) {
    if (before) before(item);
    counts.at(item) += 1;
    item_value(item, out);
  });
}

// The exit code of the CollectiveError that `run` throws on every rank; success when it throws none.
ExitCode thrown_code(const std::function<void()>& run) {
  try {
    run();
  } catch (const CollectiveError& e) {
    return e.code();
  }
  return ExitCode::success;
}

TEST_F(WorkQueue, EqualsTheSerialComputationAndRunsEveryItemOnce) {
  const std::uint64_t n = 103;  // not a multiple of any rank count
  WorkQueueOptions o = options(n);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  o.progress = [&](std::uint64_t done, std::uint64_t at_start) { progress.emplace_back(done, at_start); };
  std::vector<double> counts;
  const WorkQueueResult result = run_counting(world, o, counts);

  EXPECT_EQ(result.items_done_at_start, 0u);
  EXPECT_EQ(result.items_computed, n);
  const double mine = std::count_if(counts.begin(), counts.end(), [](double c) { return c > 0; });
  EXPECT_EQ(world.sum(static_cast<std::int64_t>(mine)), static_cast<std::int64_t>(n));
  const std::vector<double> total = summed(counts);
  for (std::uint64_t item = 0; item < n; ++item) EXPECT_EQ(total[item], 1.0) << "item " << item;
  expect_same_bits(result.results, serial_results(n));

  // Progress: rank 0 only, never decreasing, ending at every item.
  if (world.is_root()) {
    ASSERT_FALSE(progress.empty());
    for (std::size_t i = 1; i < progress.size(); ++i) EXPECT_LE(progress[i - 1].first, progress[i].first);
    EXPECT_EQ(progress.back().first, n);
    for (const auto& p : progress) EXPECT_EQ(p.second, 0u);
  } else {
    EXPECT_TRUE(progress.empty());
  }

  // One journal per rank that computed something, named after one run.
  const std::vector<std::string> files = journal_files();
  EXPECT_EQ(static_cast<std::int64_t>(files.size()), world.sum(mine > 0 ? 1 : 0));
  for (const std::string& path : files) {
    const std::string name = fs::path(path).filename().string();
    const std::string first = fs::path(files.front()).filename().string();
    EXPECT_EQ(name.substr(0, name.find("-rank")), first.substr(0, first.find("-rank"))) << name;
    EXPECT_EQ(fs::path(path).extension(), ".journal");
  }

  // A second run finds everything done, computes nothing and returns the same bits.
  o.progress = nullptr;
  const WorkQueueResult again = run_counting(world, o, counts);
  EXPECT_EQ(again.items_done_at_start, n);
  EXPECT_EQ(again.items_computed, 0u);
  EXPECT_EQ(world.sum(static_cast<std::int64_t>(std::count(counts.begin(), counts.end(), 1.0))), 0);
  expect_same_bits(again.results, serial_results(n));
}

TEST_F(WorkQueue, NoItemsIsAnEmptyCompleteRun) {
  const WorkQueueResult result =
      run_work_queue(world, options(0), [](std::uint64_t, double*) { throw std::logic_error("no item"); });
  EXPECT_EQ(result.items_computed, 0u);
  EXPECT_TRUE(result.results.empty());
}

TEST_F(WorkQueue, ASlowRankTakesFewerItems) {
  if (world.size() == 1) GTEST_SKIP() << "balance needs two ranks";
  // Rank 0 (which also holds the counter) takes 40 ms per item, the others 2 ms: a static split would give
  // every rank n / size items; the shared counter must give rank 0 well under half of that.
  const std::uint64_t n = 120;
  std::vector<double> counts;
  const auto start = std::chrono::steady_clock::now();
  const WorkQueueResult result = run_counting(world, options(n), counts, [&](std::uint64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(world.is_root() ? 40 : 2));
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double mine = std::count(counts.begin(), counts.end(), 1.0);
  const std::vector<double> per_rank = world.all_gather(&mine, 1);
  const double fair_share = static_cast<double>(n) / world.size();
  EXPECT_LT(per_rank[0], fair_share / 2) << "rank 0 (slow) took " << per_rank[0] << " of " << n;
  for (int rank = 1; rank < world.size(); ++rank)
    EXPECT_GT(per_rank[rank], per_rank[0]) << "rank " << rank << " (fast) took " << per_rank[rank];
  expect_same_bits(result.results, serial_results(n));
  if (world.is_root()) {
    std::printf("[ balance  ] %d ranks, %llu items in %.3f s; items per rank:", world.size(),
                static_cast<unsigned long long>(n), seconds);
    for (double c : per_rank) std::printf(" %.0f", c);
    std::printf("\n");
  }
}

TEST_F(WorkQueue, AStoppedRunResumesWithTheRemainingItems) {
  const std::uint64_t n = 60;
  const int k = 3;
  WorkQueueOptions first = options(n);
  int taken = 0;
  first.stop_requested = [&] { return taken >= k; };
  std::vector<double> counts_first;
  const ExitCode code = thrown_code([&] {
    run_counting(world, first, counts_first, [&](std::uint64_t) {
      ++taken;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  });
  EXPECT_EQ(code, ExitCode::interrupted);
  EXPECT_LE(taken, k);  // no rank takes an item after its stop
  const std::int64_t computed_first = world.sum(taken);
  EXPECT_GE(computed_first, k);
  EXPECT_LT(computed_first, static_cast<std::int64_t>(n));

  std::vector<double> counts_second;
  WorkQueueOptions second = options(n);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  second.progress = [&](std::uint64_t done, std::uint64_t at_start) {
    progress.emplace_back(done, at_start);
  };
  const WorkQueueResult resumed = run_counting(world, second, counts_second);
  EXPECT_EQ(resumed.items_done_at_start, static_cast<std::uint64_t>(computed_first));
  if (world.is_root()) {
    // Progress counts the earlier run's items too.
    ASSERT_FALSE(progress.empty());
    EXPECT_EQ(progress.front().first, static_cast<std::uint64_t>(computed_first));
    EXPECT_EQ(progress.back().first, n);
    for (const auto& p : progress) EXPECT_EQ(p.second, static_cast<std::uint64_t>(computed_first));
  }
  EXPECT_EQ(resumed.items_computed, n - static_cast<std::uint64_t>(computed_first));
  // Across both runs, every item ran exactly once.
  const std::vector<double> a = summed(counts_first);
  const std::vector<double> b = summed(counts_second);
  for (std::uint64_t item = 0; item < n; ++item) EXPECT_EQ(a[item] + b[item], 1.0) << "item " << item;
  expect_same_bits(resumed.results, serial_results(n));
}

TEST_F(WorkQueue, AStopOnOneRankStopsTheOthers) {
  if (world.size() == 1) GTEST_SKIP() << "needs a second rank";
  // Rank 0 stops before its first item; without it telling them, the others would run all 2000 items
  // (2 s or more at 1 ms each).
  const std::uint64_t n = 2000;
  WorkQueueOptions o = options(n);
  o.stop_requested = [&] { return world.is_root(); };
  std::vector<double> counts;
  std::int64_t computed = 0;
  const ExitCode code = thrown_code([&] {
    run_counting(world, o, counts, [&](std::uint64_t) {
      ++computed;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  });
  EXPECT_EQ(code, ExitCode::interrupted);
  EXPECT_LT(world.sum(computed), static_cast<std::int64_t>(n / 2));
  if (world.is_root()) {
    EXPECT_EQ(std::count(counts.begin(), counts.end(), 1.0), 0);
  }
}

// Stops every rank after `per_rank` items; returns the number of items computed by all ranks.
std::uint64_t stopped_run(const Communicator& world, WorkQueueOptions o, int per_rank,
                          std::vector<double>& counts) {
  int taken = 0;
  o.stop_requested = [&] { return taken >= per_rank; };
  EXPECT_EQ(thrown_code([&] { run_counting(world, o, counts, [&](std::uint64_t) { ++taken; }); }),
            ExitCode::interrupted);
  return static_cast<std::uint64_t>(world.sum(taken));
}

// Rank 0 edits the largest journal (the one sure to hold records); every rank waits for it.
void edit_largest_journal(const Communicator& world, const std::vector<std::string>& files,
                          const std::function<void(const std::string&, std::uintmax_t)>& edit) {
  if (world.is_root() && files.empty()) ADD_FAILURE() << "no journal to edit";
  if (world.is_root() && !files.empty()) {
    const auto largest = *std::max_element(files.begin(), files.end(), [](const auto& x, const auto& y) {
      return fs::file_size(x) < fs::file_size(y);
    });
    edit(largest, fs::file_size(largest));
  }
  world.barrier();
}

TEST_F(WorkQueue, ATornLastRecordIsComputedAgain) {
  const std::uint64_t n = 40;
  std::vector<double> counts_first;
  const std::uint64_t computed_first = stopped_run(world, options(n), 4, counts_first);
  ASSERT_GE(computed_first, 1u);
  // The process died while writing its last record: 5 bytes of the checksum are missing.
  edit_largest_journal(world, journal_files(),
                       [](const std::string& path, std::uintmax_t size) { fs::resize_file(path, size - 5); });

  std::vector<double> counts_second;
  const WorkQueueResult resumed = run_counting(world, options(n), counts_second);
  EXPECT_EQ(resumed.items_done_at_start, computed_first - 1);
  EXPECT_EQ(resumed.items_computed, n - computed_first + 1);
  // Exactly one item (the torn one) ran twice, the others once.
  const std::vector<double> a = summed(counts_first);
  const std::vector<double> b = summed(counts_second);
  int twice = 0;
  for (std::uint64_t item = 0; item < n; ++item) {
    EXPECT_GE(a[item] + b[item], 1.0) << "item " << item;
    EXPECT_LE(a[item] + b[item], 2.0) << "item " << item;
    twice += a[item] + b[item] == 2.0;
  }
  EXPECT_EQ(twice, 1);
  expect_same_bits(resumed.results, serial_results(n));
}

TEST_F(WorkQueue, ACorruptRecordAndEverythingAfterItIsComputedAgain) {
  const std::uint64_t n = 40;
  std::vector<double> counts_first;
  const std::uint64_t computed_first = stopped_run(world, options(n), 4, counts_first);
  ASSERT_GE(computed_first, 1u);
  // One flipped bit in the first value of the last record (record: item, size, 3 values, checksum): read
  // as it is, the merged result would differ from the serial one; the checksum must catch it.
  const std::uintmax_t record_bytes = 8 * (2 + item_size + 1);
  edit_largest_journal(world, journal_files(), [&](const std::string& path, std::uintmax_t size) {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(size - record_bytes + 16);
    char byte = 0;
    file.seekg(at);
    file.read(&byte, 1);
    byte ^= 0x10;
    file.seekp(at);
    file.write(&byte, 1);
  });

  std::vector<double> counts_second;
  const WorkQueueResult resumed = run_counting(world, options(n), counts_second);
  EXPECT_EQ(resumed.items_done_at_start, computed_first - 1);
  EXPECT_EQ(resumed.items_computed, n - computed_first + 1);
  expect_same_bits(resumed.results, serial_results(n));
}

TEST_F(WorkQueue, DuplicateItemsMustHaveTheSameBits) {
  const std::uint64_t n = 30;
  std::vector<double> counts;
  const std::uint64_t computed_first = stopped_run(world, options(n), 3, counts);
  // A copy of a journal (as a crashed run that recomputed finished items would leave): the same bits twice.
  edit_largest_journal(world, journal_files(), [&](const std::string& path, std::uintmax_t) {
    fs::copy_file(path, directory + "/copy.journal");
  });
  std::vector<double> counts_second;
  const WorkQueueResult resumed = run_counting(world, options(n), counts_second);
  EXPECT_EQ(resumed.items_done_at_start, computed_first);
  expect_same_bits(resumed.results, serial_results(n));

  // Now the same items with other values, written under the same identity: a determinism bug, refused.
  // The first run's journals are hidden while a second run (other values) computes the same first items.
  const std::vector<std::string> files = journal_files();
  if (world.is_root())
    for (const std::string& path : files) fs::rename(path, path + ".hidden");
  world.barrier();
  int taken = 0;
  WorkQueueOptions o = options(n);
  o.stop_requested = [&] { return taken >= 2; };
  ASSERT_EQ(thrown_code([&] {
              run_work_queue(world, o, [&](std::uint64_t item, double* out) {
                ++taken;
                item_value(item, out);
                out[0] += 1;
              });
            }),
            ExitCode::interrupted);
  if (world.is_root())
    for (const std::string& path : files) fs::rename(path + ".hidden", path);
  world.barrier();
  try {
    run_counting(world, options(n), counts);
    ADD_FAILURE() << "expected an internal error for differing duplicates";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::internal);
    EXPECT_NE(std::string(e.what()).find("differs from the same item"), std::string::npos) << e.what();
  }
}

TEST_F(WorkQueue, AJournalOfAnotherConfigurationIsRefusedEverywhere) {
  const std::uint64_t n = 20;
  std::vector<double> counts;
  run_counting(world, options(n, "config A"), counts);
  std::string message;
  try {
    run_counting(world, options(n, "config B"), counts);
    ADD_FAILURE() << "expected a usage error for journals of another identity";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    message = e.what();
  }
  EXPECT_NE(message.find(directory + "/"), std::string::npos) << "names the journal: " << message;
  EXPECT_NE(message.find(".journal'"), std::string::npos) << message;
  EXPECT_NE(message.find("another configuration"), std::string::npos) << message;
  EXPECT_NE(message.find("--force"), std::string::npos) << message;
  EXPECT_EQ(world.broadcast(message), message) << "the same message on every rank";
  EXPECT_EQ(world.sum(std::count(counts.begin(), counts.end(), 1.0)), 0) << "nothing computed";

  // --force: the caller removes the journals; the directory goes too once empty.
  remove_work_journals(world, directory);
  const bool removed = !fs::exists(directory);
  world.barrier();  // before rank 0 makes the directory again below
  EXPECT_TRUE(removed);
  const WorkQueueResult fresh = run_counting(world, options(n, "config B"), counts);
  EXPECT_EQ(fresh.items_computed, n);
  expect_same_bits(fresh.results, serial_results(n));
}

TEST_F(WorkQueue, RemovingJournalsKeepsOtherFiles) {
  std::vector<double> counts;
  run_counting(world, options(10), counts);
  if (world.is_root()) std::ofstream(directory + "/results.h5") << "not a journal";
  world.barrier();
  remove_work_journals(world, directory);
  ASSERT_TRUE(fs::exists(directory));
  EXPECT_EQ(journal_files(), std::vector<std::string>{directory + "/results.h5"});
  remove_work_journals(world, directory + "/missing");  // nothing there: nothing to do
}

TEST_F(WorkQueue, AFailureOnOneRankIsTheSameErrorEverywhereAndKeepsFinishedItems) {
  const std::uint64_t n = 400;
  const int failing_rank = world.size() - 1;
  int taken = 0;
  std::vector<double> counts;
  std::string message;
  const auto start = std::chrono::steady_clock::now();
  try {
    run_counting(world, options(n), counts, [&](std::uint64_t item) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (world.rank() == failing_rank && ++taken == 3)
        throw InputError("toy " + std::to_string(item) + " exploded");
    });
    ADD_FAILURE() << "expected the failure to reach every rank";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    message = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(message.find("exploded"), std::string::npos) << message;
  if (world.size() > 1) {
    EXPECT_EQ(message.rfind("[rank " + std::to_string(failing_rank) + "] ", 0), 0u) << message;
  }
  EXPECT_EQ(world.broadcast(message), message) << "the same message on every rank";
  // The others stopped soon (without the failing rank telling them, they would run all 400 items).
  // (The throwing call is not counted: run_counting counts after `before`.)
  const std::int64_t finished = world.sum(std::count(counts.begin(), counts.end(), 1.0));
  EXPECT_LT(finished, static_cast<std::int64_t>(n / 2));
  EXPECT_GE(finished, 2);

  // Everything finished before the failure is journaled: the rerun computes only the rest.
  std::vector<double> counts_again;
  const WorkQueueResult rerun = run_counting(world, options(n), counts_again);
  EXPECT_EQ(rerun.items_done_at_start, static_cast<std::uint64_t>(finished));
  EXPECT_EQ(rerun.items_computed, n - static_cast<std::uint64_t>(finished));
  expect_same_bits(rerun.results, serial_results(n));
  if (world.is_root()) std::printf("[ failure  ] every rank stopped %.3f s after start\n", seconds);
}

TEST_F(WorkQueue, AForeignExceptionBecomesACollectiveInternalError) {
  std::vector<double> counts;
  std::string message;
  try {
    run_counting(world, options(50), counts, [&](std::uint64_t item) {
      if (item == 7) throw std::runtime_error("not an nsbi error");
    });
    ADD_FAILURE() << "expected an error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::internal);
    message = e.what();
  }
  EXPECT_NE(message.find("not an nsbi error"), std::string::npos) << message;
  EXPECT_EQ(world.broadcast(message), message);
}

}  // namespace
}  // namespace nsbi::distributed
