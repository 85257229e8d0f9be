#include "nsbi/jobs/campaign_lock.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>

#include "nsbi/core/error.hpp"
#include "nsbi/core/json.hpp"
#include "nsbi/core/log.hpp"
#include "nsbi/core/signals.hpp"
#include "nsbi/jobs/stages.hpp"

namespace nsbi::jobs {
namespace {

constexpr double default_lease_seconds = 60;
// Renewals per lease time: a holder misses several in a row before its lease runs out.
constexpr double renewals_per_lease = 6;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string first_line_of(const std::string& path) {
  std::string text;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[256];
  const ssize_t n = read(fd, buffer, sizeof buffer);
  close(fd);
  if (n > 0) text.assign(buffer, static_cast<std::size_t>(n));
  return text.substr(0, text.find('\n'));
}

std::string utc_time(double seconds) {
  const auto whole = static_cast<std::time_t>(seconds);
  std::tm parts{};
  gmtime_r(&whole, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f s", std::max(0.0, seconds));
  return text;
}

std::string random_token() {
  std::random_device device;
  char text[40];
  std::snprintf(text, sizeof text, "%08x%08x%08x%08x", device(), device(), device(), device());
  return text;
}

// The whole file, 0 on success, else the errno.
int read_text(const std::string& path, std::string& text) {
  text.clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return error;
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return 0;
}

// Creates `path` (which must not exist) holding `lease`; the caller link()s or rename()s it into place, so
// the lock file is never seen half written.
void write_lease_file(const std::string& path, const LeaseHolder& lease) {
  json::Object body;
  body.set("what", lease.what)
      .set("token", lease.token)
      .set("pid", lease.pid)
      .set("host", lease.host)
      .set("boot_id", lease.boot_id)
      .set("pid_namespace", lease.pid_namespace)
      .set("slurm_job_id", lease.slurm_job_id)
      .set("slurm_array", lease.slurm_array)
      .set("slurm_restart_count", lease.slurm_restart_count)
      .set("started", lease.started)
      .set("renewed", lease.renewed)
      .set("lease_seconds", lease.lease_seconds);
  const std::string text = body.dump(2) + "\n";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError("cannot create the lock file '" + path + "': " + std::strerror(errno));
  std::size_t written = 0;
  int error = 0;
  while (written < text.size() && error == 0) {
    const ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno != EINTR) error = errno;
    if (n > 0) written += static_cast<std::size_t>(n);
  }
  // Network file systems report failed writes at close.
  if (close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    unlink(path.c_str());
    throw InputError("cannot write the lock file '" + path + "': " + std::strerror(error));
  }
}

// link(from, to), which fails when `to` exists: true when this call made `to`. Over NFS a retried link
// whose first reply was lost answers EEXIST although it succeeded: the link count of `from` tells.
bool link_exclusive(const std::string& from, const std::string& to) {
  if (link(from.c_str(), to.c_str()) == 0) return true;
  const int error = errno;
  if (error == EEXIST) {
    struct stat info {};
    return stat(from.c_str(), &info) == 0 && info.st_nlink == 2;
  }
  throw InputError("cannot create the lock file '" + to + "': " + std::strerror(error));
}

void remove_file(const std::string& path) { unlink(path.c_str()); }

// Whether process `pid` of this pid namespace runs. A killed process whose parent died too may stay a zombie
// (state Z) where nothing reaps orphans (a container without an init): it exists for kill() but is dead.
bool process_exists(std::int64_t pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  const std::string stat = first_line_of("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t name_end = stat.rfind(')');  // "pid (name) state ...", the name may hold spaces
  if (name_end == std::string::npos || name_end + 2 >= stat.size()) return true;
  const char state = stat[name_end + 2];
  return state != 'Z' && state != 'X';
}

std::string lease_advice(double lease_seconds) {
  return "wait for it to end, or stop it (a lock whose lease is not renewed for " +
         seconds_text(lease_seconds) + " is taken over)";
}

}  // namespace

double lock_lease_seconds() {
  const std::string text = environment("NSBI_LOCK_LEASE_SECONDS");
  if (text.empty()) return default_lease_seconds;
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(seconds) || seconds <= 0)
    throw ConfigError(
        "NSBI_LOCK_LEASE_SECONDS='" + text +
        "': expected a number of seconds > 0 (a setting for tests; unset it to use the default, " +
        seconds_text(default_lease_seconds) + ")");
  return seconds;
}

LeaseHolder LeaseHolder::this_process() {
  LeaseHolder self;
  self.pid = static_cast<std::int64_t>(getpid());
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) self.host = host;
  self.boot_id = first_line_of("/proc/sys/kernel/random/boot_id");
  char ns[128] = {};
  const ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (n > 0) self.pid_namespace.assign(ns, static_cast<std::size_t>(n));
  self.slurm_job_id = environment("SLURM_JOB_ID");
  const std::string array_job = environment("SLURM_ARRAY_JOB_ID");
  if (!array_job.empty()) self.slurm_array = array_job + "_" + environment("SLURM_ARRAY_TASK_ID");
  const std::string restarts = environment("SLURM_RESTART_COUNT");
  if (!restarts.empty()) self.slurm_restart_count = std::strtoll(restarts.c_str(), nullptr, 10);
  return self;
}

std::string LeaseHolder::describe(double now) const {
  std::string text = "pid " + std::to_string(pid) + " on host " + host;
  if (!slurm_job_id.empty()) {
    text += " (SLURM job " + slurm_job_id;
    if (!slurm_array.empty()) text += ", array task " + slurm_array;
    if (slurm_restart_count > 0) text += ", restart " + std::to_string(slurm_restart_count);
    text += ")";
  }
  return text + ", started " + utc_time(started) + ", lease renewed " + seconds_text(now - renewed) + " ago";
}

LeaseVerdict judge_lease(const LeaseHolder& lease, const LeaseHolder& self, double now) {
  if (!self.slurm_job_id.empty() && lease.slurm_job_id == self.slurm_job_id &&
      self.slurm_restart_count > lease.slurm_restart_count)
    return {false, "it is an earlier run of this SLURM job, which was requeued"};
  if (lease.host == self.host && lease.pid_namespace == self.pid_namespace) {
    if (!lease.boot_id.empty() && !self.boot_id.empty() && lease.boot_id != self.boot_id)
      return {false, "its host was restarted since"};
    if (!process_exists(lease.pid)) return {false, "its process no longer exists"};
  }
  const double age = now - lease.renewed;
  if (age > lease.lease_seconds)
    return {false, "its lease was last renewed " + seconds_text(age) + " ago (lease time " +
                       seconds_text(lease.lease_seconds) + ")"};
  return {};
}

std::optional<LeaseHolder> read_lease(const std::string& path) {
  // A renewal replaces the file while it is read: over NFS that read can fail (ESTALE), so try again.
  std::string problem;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::string text;
    const int error = read_text(path, text);
    if (error == ENOENT) return std::nullopt;
    if (error != 0) {
      problem = std::strerror(error);
      continue;
    }
    try {
      const YAML::Node node = YAML::Load(text);
      LeaseHolder lease;
      lease.what = node["what"].as<std::string>();
      lease.token = node["token"].as<std::string>();
      lease.pid = node["pid"].as<std::int64_t>();
      lease.host = node["host"].as<std::string>();
      lease.boot_id = node["boot_id"].as<std::string>();
      lease.pid_namespace = node["pid_namespace"].as<std::string>();
      lease.slurm_job_id = node["slurm_job_id"].as<std::string>();
      lease.slurm_array = node["slurm_array"].as<std::string>();
      lease.slurm_restart_count = node["slurm_restart_count"].as<std::int64_t>();
      lease.started = node["started"].as<double>();
      lease.renewed = node["renewed"].as<double>();
      lease.lease_seconds = node["lease_seconds"].as<double>();
      if (lease.token.empty() || lease.pid <= 0 || !std::isfinite(lease.renewed) ||
          !std::isfinite(lease.lease_seconds) || lease.lease_seconds <= 0)
        throw YAML::Exception(YAML::Mark::null_mark(), "a field is out of range");
      return lease;
    } catch (const YAML::Exception& e) {
      problem = std::string("not an nsbi lock file (") + e.what() + ")";
    }
  }
  throw ConfigError("cannot read the lock file '" + path + "': " + problem +
                    "; if no nsbi run uses this campaign directory, remove the file");
}

LeaseLock::LeaseLock(std::string path, const std::string& what, Options options)
    : path_(std::move(path)), self_(std::move(options.self)), on_lost_(std::move(options.on_lost)) {
  self_.what = what;
  self_.token = random_token();
  self_.lease_seconds = options.lease_seconds;
  self_.started = self_.renewed = now_seconds();
  struct Remove {
    std::string path;
    ~Remove() { remove_file(path); }
  };
  {
    const std::string temporary = path_ + "." + self_.token + ".tmp";
    write_lease_file(temporary, self_);
    const Remove remove_temporary{temporary};
    for (int attempt = 0;; ++attempt) {
      if (attempt == 8)
        throw ConfigError("the lock file '" + path_ + "' keeps changing hands: other runs of '" + what +
                          "' are starting on this campaign directory");
      if (link_exclusive(temporary, path_)) break;
      const std::optional<LeaseHolder> current = read_lease(path_);
      if (!current) continue;  // released meanwhile
      const double now = now_seconds();
      const LeaseVerdict verdict = judge_lease(*current, self_, now);
      if (verdict.live)
        throw ConfigError("'" + current->what + "' already runs on this campaign directory, as " +
                          current->describe(now) + " (lock file '" + path_ +
                          "'): " + lease_advice(current->lease_seconds));
      // Take over: only the run that creates the claim for this very lease may replace it.
      const std::string claim = path_ + ".takeover-" + current->token;
      const int fd = open(claim.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno == EEXIST)
        throw ConfigError(
            "the stale lock file '" + path_ + "' of " + current->describe(now) +
            " is being taken over by another run (claim file '" + claim +
            "'); if no other nsbi run is starting on this campaign directory, remove the claim file");
      if (fd < 0) throw InputError("cannot create the lock file '" + claim + "': " + std::strerror(errno));
      close(fd);
      const Remove remove_claim{claim};
      const std::optional<LeaseHolder> again = read_lease(path_);
      if (!again || again->token != current->token) continue;  // changed hands meanwhile: look again
      if (rename(temporary.c_str(), path_.c_str()) != 0)
        throw InputError("cannot replace the lock file '" + path_ + "': " + std::strerror(errno));
      log::warning("took over the lock file '", path_, "' of '", current->what, "' (", current->describe(now),
                   "): ", verdict.why_not);
      break;
    }
  }  // the temporary file is gone before the renewals, which use its name, start
  try {
    renewer_ = std::thread([this] { renew_until_stopped(); });
  } catch (...) {
    remove_file(path_);  // a lease nobody renews would hold the stage for a lease time
    throw;
  }
}

LeaseLock::~LeaseLock() {
  try {
    stop_renewing();
    if (!released_ && !lost_) remove_if_ours();
  } catch (...) {
    // Leaving the file behind only delays the next run by one lease time.
  }
}

void LeaseLock::release(const std::string& failure) {
  stop_renewing();
  released_ = true;
  if (lost_ && failure.empty())
    throw ConfigError(
        lost_message_ +
        ": this run went on until its stage ended, beside the run that took over; check that run's "
        "outcome, or run the stage again with --force");
  if (lost_) throw ConfigError(lost_message_ + "; this run then failed: " + failure);
  if (!remove_if_ours())
    throw ConfigError("the lock file '" + path_ + "' was taken over by another run while this run held it");
}

bool LeaseLock::remove_if_ours() {
  const std::optional<LeaseHolder> current = read_lease(path_);
  if (!current || current->token != self_.token) return false;
  if (unlink(path_.c_str()) != 0 && errno != ENOENT)
    throw InputError("cannot remove the lock file '" + path_ + "': " + std::strerror(errno));
  return true;
}

void LeaseLock::stop_renewing() {
  {
    const std::lock_guard<std::mutex> guard(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

void LeaseLock::lose(const std::string& message) {
  lost_message_ = message;
  if (on_lost_) on_lost_(message);
  lost_.store(true);
}

void LeaseLock::renew_until_stopped() {
  // Stop signals are for the thread that runs the stage.
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&signals, signal);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::chrono::duration<double> interval(self_.lease_seconds / renewals_per_lease);
  double renewed = self_.renewed;
  std::unique_lock<std::mutex> guard(mutex_);
  while (!wake_.wait_for(guard, interval, [this] { return stop_; })) {
    guard.unlock();
    LeaseHolder lease = self_;
    lease.renewed = now_seconds();
    try {
      const std::optional<LeaseHolder> current = read_lease(path_);
      if (!current) return lose("the lock file '" + path_ + "' was removed while this run held it");
      if (current->token != self_.token)
        return lose("the lock file '" + path_ + "' was taken over by '" + current->what + "' (" +
                    current->describe(lease.renewed) +
                    ") while this run held it, its lease not renewed in time");
      const std::string temporary = path_ + "." + self_.token + ".tmp";
      remove_file(temporary);  // left by a renewal that failed
      write_lease_file(temporary, lease);
      if (rename(temporary.c_str(), path_.c_str()) != 0) {
        const int error = errno;
        remove_file(temporary);
        throw InputError("cannot replace the lock file '" + path_ + "': " + std::strerror(error));
      }
      renewed = lease.renewed;
    } catch (const Error& e) {
      if (lease.renewed - renewed > self_.lease_seconds)
        return lose("could not renew the lock file '" + path_ + "' for " +
                    seconds_text(lease.renewed - renewed) + " (" + e.what() +
                    "), so another run may have taken it over");
      log::warning("could not renew the lock file '", path_, "' (", e.what(), "); trying again");
    }
    guard.lock();
  }
}

std::string stage_lock_path(const std::string& campaign_dir, const std::string& stage,
                            const distributed::WorkSlice& slice) {
  std::string name = stage;
  if (!slice.whole())
    name += std::string(stage == "train" ? ".members-" : ".slice-") + std::to_string(slice.index) + "-of-" +
            std::to_string(slice.count);
  return campaign_dir + "/work/locks/" + name + ".lock";
}

namespace {

// The lock files of `stage` in the campaign directory: the plain run's and every slice's.
std::vector<std::string> stage_lock_files(const std::string& campaign_dir, const std::string& stage) {
  std::vector<std::string> paths;
  const std::string directory = campaign_dir + "/work/locks";
  DIR* listing = opendir(directory.c_str());
  if (!listing) return paths;
  while (const dirent* entry = readdir(listing)) {
    const std::string name = entry->d_name;
    if (name.rfind(stage + ".", 0) == 0 && name.size() > 5 && name.compare(name.size() - 5, 5, ".lock") == 0)
      paths.push_back(directory + "/" + name);
  }
  closedir(listing);
  return paths;
}

std::string command_of(const std::string& stage, const distributed::WorkSlice& slice) {
  if (slice.whole()) return stage;
  return stage + (stage == "train" ? " --members " : " --slice ") + std::to_string(slice.index) + "/" +
         std::to_string(slice.count);
}

// A sliced run and the plain run of the same stage exclude each other: the plain run merges what the
// slices journaled (and with --force removes it). Each checks after taking its own lock, so of two that
// start together at least one is refused.
void refuse_beside_slices(const std::string& campaign_dir, const std::string& stage,
                          const distributed::WorkSlice& slice, const LeaseLock& lock) {
  const double now = now_seconds();
  if (slice.whole()) {
    for (const std::string& path : stage_lock_files(campaign_dir, stage)) {
      if (path == lock.path()) continue;
      const std::optional<LeaseHolder> lease = read_lease(path);
      if (lease && judge_lease(*lease, lock.holder(), now).live)
        throw ConfigError("'" + lease->what + "' runs on this campaign directory, as " +
                          lease->describe(now) + " (lock file '" + path + "'): the plain `nsbi " + stage +
                          "` merges the slices' work, so start it once every slice has ended; " +
                          lease_advice(lease->lease_seconds));
    }
    return;
  }
  const std::string plain = stage_lock_path(campaign_dir, stage, {});
  const std::optional<LeaseHolder> lease = read_lease(plain);
  if (lease && judge_lease(*lease, lock.holder(), now).live)
    throw ConfigError("the plain `nsbi " + stage +
                      "`, which merges the work of the slices, runs on this campaign directory, as " +
                      lease->describe(now) + " (lock file '" + plain +
                      "'): " + lease_advice(lease->lease_seconds));
}

}  // namespace

std::vector<LeaseHolder> live_stage_leases(const std::string& campaign_dir, const std::string& stage) {
  std::vector<LeaseHolder> live;
  const LeaseHolder self = LeaseHolder::this_process();
  const double now = now_seconds();
  for (const std::string& path : stage_lock_files(campaign_dir, stage)) {
    try {
      const std::optional<LeaseHolder> lease = read_lease(path);
      if (lease && judge_lease(*lease, self, now).live) live.push_back(*lease);
    } catch (const ConfigError& e) {
      log::warning(e.what());
    }
  }
  return live;
}

void run_locked(const Communicator& world, const Campaign& campaign, const std::string& stage,
                const distributed::WorkSlice& slice, const std::function<void()>& work) {
  std::optional<LeaseLock> lock;  // on rank 0
  world.agree(
      [&] {
        prepare_directory(campaign.config, "campaign.dir", campaign.dir + "/work/locks");
        LeaseLock::Options options;
        options.lease_seconds = lock_lease_seconds();
        options.on_lost = [alone = world.size() == 1](const std::string& message) {
          request_abort(message + ": this run stops here, writing nothing more beside the run that took over",
                        alone);
        };
        lock.emplace(stage_lock_path(campaign.dir, stage, slice), command_of(stage, slice),
                     std::move(options));
        try {
          refuse_beside_slices(campaign.dir, stage, slice, *lock);
        } catch (const Error&) {
          lock.reset();
          throw;
        }
      },
      /*root_only=*/true);
  try {
    work();
  } catch (const CollectiveError& e) {
    // Every rank is here: release together; a lease lost meanwhile is the error to report, with this one.
    world.agree([&] { lock->release(e.what()); }, /*root_only=*/true);
    throw;
  }
  world.agree([&] { lock->release(); }, /*root_only=*/true);
}

}  // namespace nsbi::jobs
