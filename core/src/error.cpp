#include "nsbi/core/error.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace nsbi {
namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  while (bytes >= 1024.0 && unit + 1 < sizeof units / sizeof units[0]) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

}  // namespace

std::string describe_system_error(int error, const std::string& path) {
  const std::string text = std::strerror(error);
  if ((error != ENOSPC && error != EDQUOT) || path.empty()) return text;
  char resolved[PATH_MAX];
  struct stat here {};
  if (!realpath(parent_of(path).c_str(), resolved) || stat(resolved, &here) != 0) return text;
  // The mount point: the highest directory above the file on the same device.
  std::string mount = resolved;
  while (mount != "/") {
    struct stat above {};
    const std::string up = parent_of(mount);
    if (stat(up.c_str(), &above) != 0 || above.st_dev != here.st_dev) break;
    mount = up;
  }
  struct statvfs space {};
  if (statvfs(resolved, &space) != 0) return text + " (the file system mounted at '" + mount + "')";
  const double block = static_cast<double>(space.f_frsize);
  return text + " (the file system mounted at '" + mount + "' has " +
         bytes_text(static_cast<double>(space.f_bavail) * block) + " of " +
         bytes_text(static_cast<double>(space.f_blocks) * block) + " free)";
}

bool file_system_full(const std::string& path) {
  struct statvfs space {};
  if (statvfs(parent_of(path).c_str(), &space) != 0) return false;
  return static_cast<double>(space.f_bavail) * static_cast<double>(space.f_frsize) < 1024.0 * 1024.0;
}

namespace detail {

void throw_internal_error(const char* condition, const std::string& message, const char* function,
                          const char* file, int line) {
  std::ostringstream what;
  what << function << ": internal error: " << message << " (failed: " << condition << ", at " << file << ":"
       << line << "; please report this as a bug)";
  throw InternalError(what.str());
}

}  // namespace detail
}  // namespace nsbi
