// Test-only write-failure injection, loaded with LD_PRELOAD (never linked into nsbi): with
//   NSBI_TEST_FAIL_WRITE=<path suffix>:<bytes>:<rank>
// the process of MPI rank <rank> (OMPI_COMM_WORLD_RANK or PMI_RANK; a process without one is rank 0) lets
// <bytes> bytes through to files whose path ends with <path suffix>, then fails every further write to such
// files with ENOSPC, as a full file system does. (A suffix, not a substring: MPI-IO keeps files of its own
// named after the data file, e.g. OMPIO's shared file pointer "<file>_cid-....sm".) It wraps the calls that
// reach files from nsbi, HDF5 (through MPI-IO) and the C and C++ streams: write, writev, pwrite, pwritev and
// their 64-bit names, and fwrite (whose own writes stay inside the C library, out of reach of a preloaded
// library). The rest of the program is untouched, so the code under test runs exactly as it does on a full
// disk.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int g_parsed = 0;
static int g_active = 0;
static char g_suffix[4096];
static size_t g_suffix_length = 0;
static long long g_bytes_left = 0;

static void parse(void) {
  g_parsed = 1;
  const char* spec = getenv("NSBI_TEST_FAIL_WRITE");
  if (!spec || !*spec) return;
  char copy[4096];
  snprintf(copy, sizeof copy, "%s", spec);
  char* last = strrchr(copy, ':');
  if (!last) return;
  *last = '\0';
  char* middle = strrchr(copy, ':');
  if (!middle) return;
  *middle = '\0';
  const char* rank_text = getenv("OMPI_COMM_WORLD_RANK");
  if (!rank_text) rank_text = getenv("PMI_RANK");
  if (atoi(last + 1) != (rank_text ? atoi(rank_text) : 0)) return;
  snprintf(g_suffix, sizeof g_suffix, "%s", copy);
  g_suffix_length = strlen(g_suffix);
  g_bytes_left = atoll(middle + 1);
  g_active = 1;
}

// Whether a write of `count` bytes to `fd` is refused; counts the bytes that pass.
static int refuse(int fd, size_t count) {
  if (!g_parsed) parse();
  if (!g_active || fd <= 2) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const int saved = errno;
  const ssize_t length = readlink(link, path, sizeof path - 1);
  errno = saved;
  if (length <= 0) return 0;
  path[length] = '\0';
  if ((size_t)length < g_suffix_length || strcmp(path + length - g_suffix_length, g_suffix) != 0) return 0;
  if ((long long)count > g_bytes_left) {
    g_bytes_left = 0;
    errno = ENOSPC;
    return 1;
  }
  g_bytes_left -= (long long)count;
  return 0;
}

static size_t total(const struct iovec* iov, int n) {
  size_t sum = 0;
  for (int i = 0; i < n; ++i) sum += iov[i].iov_len;
  return sum;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void* data, size_t count) {
  if (refuse(fd, count)) return -1;
  return NEXT(write)(fd, data, count);
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
  if (refuse(fd, total(iov, n))) return -1;
  return NEXT(writev)(fd, iov, n);
}

ssize_t pwrite(int fd, const void* data, size_t count, off_t offset) {
  if (refuse(fd, count)) return -1;
  return NEXT(pwrite)(fd, data, count, offset);
}

ssize_t pwrite64(int fd, const void* data, size_t count, off64_t offset) {
  if (refuse(fd, count)) return -1;
  return NEXT(pwrite64)(fd, data, count, offset);
}

ssize_t pwritev(int fd, const struct iovec* iov, int n, off_t offset) {
  if (refuse(fd, total(iov, n))) return -1;
  return NEXT(pwritev)(fd, iov, n, offset);
}

ssize_t pwritev64(int fd, const struct iovec* iov, int n, off64_t offset) {
  if (refuse(fd, total(iov, n))) return -1;
  return NEXT(pwritev64)(fd, iov, n, offset);
}

size_t fwrite(const void* data, size_t size, size_t count, FILE* stream) {
  if (refuse(fileno(stream), size * count)) return 0;
  return NEXT(fwrite)(data, size, count, stream);
}
