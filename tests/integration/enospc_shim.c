/* Test shim (LD_PRELOAD): write() to regular files under $HEARTH_ENOSPC_DIR fails with ENOSPC
 * once $HEARTH_ENOSPC_AFTER bytes have been written there, like a disk filling up. Other
 * descriptors (stdout, stderr, sockets) are untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long g_written = 0;

static int under_watched_dir(int fd) {
  const char* dir = getenv("HEARTH_ENOSPC_DIR");
  if (dir == NULL || *dir == '\0') return 0;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return strncmp(path, dir, strlen(dir)) == 0;
}

ssize_t write(int fd, const void* buf, size_t count) {
  static ssize_t (*real_write)(int, const void*, size_t) = NULL;
  if (real_write == NULL) real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  if (under_watched_dir(fd)) {
    const char* after = getenv("HEARTH_ENOSPC_AFTER");
    unsigned long long limit = after ? strtoull(after, NULL, 10) : 0;
    if (g_written >= limit) {
      errno = ENOSPC;
      return -1;
    }
    if (g_written + count > limit) count = (size_t)(limit - g_written);
    ssize_t n = real_write(fd, buf, count);
    if (n > 0) g_written += (unsigned long long)n;
    return n;
  }
  return real_write(fd, buf, count);
}
