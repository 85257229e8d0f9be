// The lease lock of a stage on a campaign directory (campaign_lock.hpp): acquire, refuse, renew, take over
// a stale lease, a dead process' lease and a requeued SLURM job's lease, one winner among concurrent takers,
// and a holder that finds its lease taken over.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "nsbi/jobs/campaign_lock.hpp"

namespace nsbi::jobs {
namespace {

namespace fs = std::filesystem;

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A fresh directory per test.
std::string scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("nsbi_test_lock_" + std::to_string(getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Another process on another host, whose lease this process cannot check by its pid.
LeaseHolder elsewhere(const std::string& host = "node-elsewhere") {
  LeaseHolder holder = LeaseHolder::this_process();
  holder.host = host;
  holder.pid = 4242;
  return holder;
}

LeaseLock::Options options(const LeaseHolder& self, double lease_seconds = 60) {
  LeaseLock::Options o;
  o.self = self;
  o.lease_seconds = lease_seconds;
  return o;
}

// A lock file as another run would have left it (written whole: temporary file, then rename).
void write_lease(const std::string& path, const LeaseHolder& lease) {
  const std::string temporary = path + ".test.tmp";
  std::ofstream out(temporary);
  out << "{\"what\": \"" << lease.what << "\", \"token\": \"" << lease.token << "\", \"pid\": " << lease.pid
      << ", \"host\": \"" << lease.host << "\", \"boot_id\": \"" << lease.boot_id
      << "\", \"pid_namespace\": \"" << lease.pid_namespace << "\", \"slurm_job_id\": \""
      << lease.slurm_job_id << "\", \"slurm_array\": \"" << lease.slurm_array
      << "\", \"slurm_restart_count\": " << lease.slurm_restart_count
      << ", \"started\": " << std::to_string(lease.started)
      << ", \"renewed\": " << std::to_string(lease.renewed) << ", \"lease_seconds\": " << lease.lease_seconds
      << "}\n";
  out.close();
  ASSERT_EQ(std::rename(temporary.c_str(), path.c_str()), 0);
}

LeaseHolder foreign_lease(LeaseHolder holder, double renewed_seconds_ago, double lease_seconds = 60) {
  holder.what = "calibrate";
  holder.token = "foreign0000token";
  holder.started = now() - 1000;
  holder.renewed = now() - renewed_seconds_ago;
  holder.lease_seconds = lease_seconds;
  return holder;
}

std::string refusal(const std::string& path, const LeaseHolder& self) {
  try {
    LeaseLock second(path, "calibrate", options(self));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(CampaignLock, AcquiresRefusesASecondRunAndReleases) {
  const std::string path = scratch("acquire") + "/calibrate.lock";
  {
    LeaseLock lock(path, "calibrate", options(LeaseHolder::this_process()));
    const std::optional<LeaseHolder> lease = read_lease(path);
    ASSERT_TRUE(lease);
    EXPECT_EQ(lease->what, "calibrate");
    EXPECT_EQ(lease->pid, getpid());
    EXPECT_EQ(lease->token, lock.holder().token);
    // Refused, from another host or from this one (the holder's pid is alive), naming the holder.
    for (const LeaseHolder& self : {elsewhere(), LeaseHolder::this_process()}) {
      const std::string message = refusal(path, self);
      EXPECT_NE(message.find("'calibrate' already runs on this campaign directory, as pid " +
                             std::to_string(getpid()) + " on host " + lease->host),
                std::string::npos)
          << message;
      EXPECT_NE(message.find(path), std::string::npos) << message;
    }
    EXPECT_EQ(read_lease(path)->token, lock.holder().token);  // the refused runs left it alone
    lock.release();
    EXPECT_FALSE(fs::exists(path));
  }
  // Free again; the destructor releases too.
  {
    LeaseLock lock(path, "calibrate", options(elsewhere()));
    EXPECT_TRUE(fs::exists(path));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(fs::directory_iterator(fs::path(path).parent_path()), fs::directory_iterator());  // no litter
}

TEST(CampaignLock, TheHolderRenewsItsLease) {
  const std::string path = scratch("renew") + "/simulate.lock";
  LeaseLock lock(path, "simulate", options(LeaseHolder::this_process(), /*lease_seconds=*/0.6));
  const double started = read_lease(path)->renewed;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // 2.5 lease times
  const std::optional<LeaseHolder> lease = read_lease(path);
  ASSERT_TRUE(lease);
  EXPECT_GT(lease->renewed, started + 0.9);
  EXPECT_LT(now() - lease->renewed, 0.6);
  EXPECT_FALSE(refusal(path, elsewhere()).empty());  // still live for others
  EXPECT_FALSE(lock.lost());
  lock.release();
}

TEST(CampaignLock, TakesOverALeaseNotRenewedInTime) {
  const std::string path = scratch("stale") + "/calibrate.lock";
  // Renewed 59 s ago with a 60 s lease: live. 61 s ago: stale, taken over with a warning.
  write_lease(path, foreign_lease(elsewhere("node-a"), 59));
  EXPECT_FALSE(refusal(path, elsewhere("node-b")).empty());
  write_lease(path, foreign_lease(elsewhere("node-a"), 61));
  testing::internal::CaptureStderr();
  LeaseLock lock(path, "calibrate", options(elsewhere("node-b")));
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("took over the lock file '" + path + "' of 'calibrate' (pid 4242 on host node-a"),
            std::string::npos)
      << warning;
  EXPECT_NE(warning.find("its lease was last renewed 61 s ago (lease time 60 s)"), std::string::npos)
      << warning;
  EXPECT_EQ(read_lease(path)->token, lock.holder().token);
  EXPECT_EQ(read_lease(path)->host, "node-b");
  EXPECT_FALSE(fs::exists(path + ".takeover-foreign0000token"));  // the claim is gone
}

TEST(CampaignLock, TakesOverALeaseOfADeadProcessOfThisHostAtOnce) {
  const std::string path = scratch("dead") + "/simulate.lock";
  // pid_max itself is never a process id.
  std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
  std::int64_t pid_max = 0;
  ASSERT_TRUE(pid_max_file >> pid_max);
  LeaseHolder dead = LeaseHolder::this_process();
  dead.pid = pid_max;
  // Renewed just now, but its process is gone: taken over without waiting.
  write_lease(path, foreign_lease(dead, 0));
  testing::internal::CaptureStderr();
  { LeaseLock lock(path, "simulate", options(LeaseHolder::this_process())); }
  EXPECT_NE(testing::internal::GetCapturedStderr().find("its process no longer exists"), std::string::npos);
  // A zombie (killed, not reaped: its parent died too, and nothing reaps orphans) is dead as well.
  const pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  ASSERT_GT(zombie, 0);
  for (int i = 0; i < 200 && fs::exists("/proc/" + std::to_string(zombie)); ++i) {
    std::ifstream stat("/proc/" + std::to_string(zombie) + "/stat");
    std::string text;
    std::getline(stat, text);
    if (text.find(") Z ") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  LeaseHolder undead = LeaseHolder::this_process();
  undead.pid = zombie;
  write_lease(path, foreign_lease(undead, 0));
  testing::internal::CaptureStderr();
  { LeaseLock lock(path, "simulate", options(LeaseHolder::this_process())); }
  EXPECT_NE(testing::internal::GetCapturedStderr().find("its process no longer exists"), std::string::npos);
  ASSERT_EQ(waitpid(zombie, nullptr, 0), zombie);
  // The same dead pid on another host is not judged from here: live until its lease runs out.
  LeaseHolder remote = dead;
  remote.host = "node-remote";
  write_lease(path, foreign_lease(remote, 0));
  EXPECT_FALSE(refusal(path, LeaseHolder::this_process()).empty());
  // A lease from before this host restarted is dead too.
  LeaseHolder before_reboot = LeaseHolder::this_process();
  before_reboot.boot_id = "another-boot";
  write_lease(path, foreign_lease(before_reboot, 0));
  testing::internal::CaptureStderr();
  { LeaseLock lock(path, "simulate", options(LeaseHolder::this_process())); }
  EXPECT_NE(testing::internal::GetCapturedStderr().find("its host was restarted since"), std::string::npos);
}

TEST(CampaignLock, ARequeuedSlurmJobOwnsItsEarlierRunsLease) {
  const std::string path = scratch("requeue") + "/calibrate.slice-1-of-4.lock";
  LeaseHolder first = elsewhere("node-a");
  first.slurm_job_id = "5678";
  first.slurm_array = "5670_1";
  write_lease(path, foreign_lease(first, 0));
  // The same job, not requeued (another step of it): refused, naming the job.
  LeaseHolder same_job = elsewhere("node-b");
  same_job.slurm_job_id = "5678";
  const std::string message = refusal(path, same_job);
  EXPECT_NE(message.find("pid 4242 on host node-a (SLURM job 5678, array task 5670_1)"), std::string::npos)
      << message;
  // Another job: refused. The job requeued (restart count 1): its own lease, taken at once.
  LeaseHolder other_job = same_job;
  other_job.slurm_job_id = "9999";
  other_job.slurm_restart_count = 1;
  EXPECT_FALSE(refusal(path, other_job).empty());
  LeaseHolder requeued = same_job;
  requeued.slurm_restart_count = 1;
  testing::internal::CaptureStderr();
  LeaseLock lock(path, "calibrate --slice 1/4", options(requeued));
  EXPECT_NE(
      testing::internal::GetCapturedStderr().find("an earlier run of this SLURM job, which was requeued"),
      std::string::npos);
  EXPECT_EQ(read_lease(path)->slurm_restart_count, 1);
}

TEST(CampaignLock, OfConcurrentTakersExactlyOneWins) {
  const std::string directory = scratch("race");
  constexpr int rounds = 20, takers = 6;
  for (int round = 0; round < rounds; ++round) {
    const std::string path = directory + "/calibrate.lock";
    write_lease(path, foreign_lease(elsewhere("node-dead"), 600));
    std::atomic<int> ready{0}, winners{0}, refused{0};
    std::vector<std::unique_ptr<LeaseLock>> held(takers);
    std::vector<std::thread> threads;
    testing::internal::CaptureStderr();
    for (int t = 0; t < takers; ++t)
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < takers) {
        }
        try {
          held[t] =
              std::make_unique<LeaseLock>(path, "calibrate", options(elsewhere("node-" + std::to_string(t))));
          ++winners;
        } catch (const ConfigError&) {
          ++refused;
        }
      });
    for (auto& thread : threads) thread.join();
    testing::internal::GetCapturedStderr();
    ASSERT_EQ(winners.load(), 1) << "round " << round;
    ASSERT_EQ(refused.load(), takers - 1);
    for (const auto& lock : held) {
      if (!lock) continue;
      EXPECT_EQ(read_lease(path)->token, lock->holder().token);
    }
    held.clear();
    EXPECT_FALSE(fs::exists(path));
    // Only the lock itself ever existed: no claim or temporary file is left.
    EXPECT_EQ(fs::directory_iterator(directory), fs::directory_iterator());
  }
}

TEST(CampaignLock, AHolderWhoseLeaseWasTakenOverStops) {
  const std::string path = scratch("lost") + "/train.lock";
  std::atomic<int> calls{0};
  std::string message;
  LeaseLock::Options o = options(LeaseHolder::this_process(), /*lease_seconds=*/0.3);
  o.on_lost = [&](const std::string& text) {
    message = text;
    ++calls;
  };
  LeaseLock lock(path, "train", o);
  // Another run took the lease over (as after this holder was frozen for longer than its lease).
  LeaseHolder successor = foreign_lease(elsewhere("node-new"), 0);
  successor.what = "train";
  write_lease(path, successor);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 100 && !lock.lost(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  testing::internal::GetCapturedStderr();
  ASSERT_TRUE(lock.lost());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(message.find("was taken over by 'train' (pid 4242 on host node-new"), std::string::npos)
      << message;
  try {
    lock.release();
    ADD_FAILURE() << "release after the lease was lost must throw";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("this run went on until its stage ended"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_lease(path)->token, successor.token);  // the successor's lease is untouched
}

TEST(CampaignLock, UnreadableLockFilesAreNamed) {
  const std::string path = scratch("unreadable") + "/infer.lock";
  std::ofstream(path) << "not a lock\n";
  try {
    read_lease(path);
    ADD_FAILURE() << "a foreign file was read as a lease";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read the lock file '" + path + "'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(read_lease(path + ".missing"));
}

TEST(CampaignLock, FileNamesAndLeaseTime) {
  EXPECT_EQ(stage_lock_path("runs/a", "simulate", {}), "runs/a/work/locks/simulate.lock");
  EXPECT_EQ(stage_lock_path("runs/a", "calibrate", {1, 4}), "runs/a/work/locks/calibrate.slice-1-of-4.lock");
  EXPECT_EQ(stage_lock_path("runs/a", "train", {0, 2}), "runs/a/work/locks/train.members-0-of-2.lock");
  unsetenv("NSBI_LOCK_LEASE_SECONDS");
  EXPECT_EQ(lock_lease_seconds(), 60);
  setenv("NSBI_LOCK_LEASE_SECONDS", "2.5", 1);
  EXPECT_EQ(lock_lease_seconds(), 2.5);
  setenv("NSBI_LOCK_LEASE_SECONDS", "0", 1);
  EXPECT_THROW(lock_lease_seconds(), ConfigError);
  unsetenv("NSBI_LOCK_LEASE_SECONDS");
}

}  // namespace
}  // namespace nsbi::jobs
