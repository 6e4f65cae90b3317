// fault_inject: an LD_PRELOAD shim that makes one chosen I/O call of a real
// program fail (EIO, ENOSPC) or kills the program there (SIGKILL), so that the
// integration tests (tests/integration/test_io_faults.py) can put a fault at an
// exact point of a backup, a restore or a verify: "the fsync of the pack",
// "the rename of the manifest", "the second read of a pack".
//
// It wraps the libc calls that sqlbak and its libraries make on files (check
// with `nm -D --undefined-only sqlbakctl`): write, writev, pwrite(64), fsync,
// fdatasync, rename, renameat(2), read, readv, pread(64). A call *matches* when
//   - its family is in SQLBAK_FAULT_OPS (comma list of write, fsync, rename,
//     read; fdatasync counts as fsync, pwrite as write, pread as read),
//   - its file (the fd's path from /proc/self/fd, or either rename path) is
//     under SQLBAK_FAULT_DIR,
//   - the path contains SQLBAK_FAULT_PATH (optional substring; for a rename,
//     the new path),
//   - for calls on an fd, the file starts with SQLBAK_FAULT_MAGIC (optional:
//     e.g. SQLBAKPK for a pack, SQLBAKIX for an index, '{' for a manifest; a
//     write at offset 0 is judged by the bytes it writes).
// Matches are counted from 1 across all threads. Matches number
// SQLBAK_FAULT_NTH .. NTH+SQLBAK_FAULT_COUNT-1 (COUNT 1 by default, 0 means
// every later one) get SQLBAK_FAULT_ACTION:
//   eio, enospc   the call does nothing and fails with that errno
//   kill          SIGKILL before the call (it never happens)
//   kill_after    SIGKILL right after the call has succeeded
// SQLBAK_FAULT_LOG, when set, is a file to which one line per injected fault is
// appended ("fault N OP PATH ACTION"), and one per match when SQLBAK_FAULT_TRACE
// is 1, so a test can check that the fault hit what it meant to hit.
//
// Without SQLBAK_FAULT_DIR the shim passes every call through untouched.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum family { kWrite = 1, kFsync = 2, kRename = 4, kRead = 8 };

static struct {
  int ready;          // 1 once configured (from the first intercepted call on)
  int active;         // SQLBAK_FAULT_DIR is set
  char dir[PATH_MAX];  // resolved, without a trailing slash
  size_t dir_len;
  int families;
  const char* path_sub;
  const char* magic;
  size_t magic_len;
  long nth;
  long count;
  int action;  // 0 eio, 1 enospc, 2 kill, 3 kill_after
  const char* log;
  int trace;
} cfg;

static atomic_long matches;

enum { kEio, kEnospc, kKill, kKillAfter };

// Real functions, looked up lazily (dlsym result copied: ISO C has no cast
// between object and function pointers).
#define REAL(name, ret, ...)                                   \
  static ret (*real_##name)(__VA_ARGS__);                      \
  static void load_##name(void) {                              \
    if (real_##name == NULL) {                                 \
      void* p = dlsym(RTLD_NEXT, #name);                       \
      memcpy(&real_##name, &p, sizeof p);                      \
    }                                                          \
  }

REAL(write, ssize_t, int, const void*, size_t)
REAL(writev, ssize_t, int, const struct iovec*, int)
REAL(pwrite, ssize_t, int, const void*, size_t, off_t)
REAL(pwrite64, ssize_t, int, const void*, size_t, off_t)
REAL(read, ssize_t, int, void*, size_t)
REAL(readv, ssize_t, int, const struct iovec*, int)
REAL(pread, ssize_t, int, void*, size_t, off_t)
REAL(pread64, ssize_t, int, void*, size_t, off_t)
REAL(fsync, int, int)
REAL(fdatasync, int, int)
REAL(rename, int, const char*, const char*)
REAL(renameat, int, int, const char*, int, const char*)
REAL(renameat2, int, int, const char*, int, const char*, unsigned int)

static atomic_int config_state;  // 0 not yet, 1 in progress, 2 done

static void configure(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&config_state, &expected, 1)) {
    while (atomic_load(&config_state) != 2) {
    }
    return;
  }
  const char* dir = getenv("SQLBAK_FAULT_DIR");
  if (dir != NULL && dir[0] != '\0' && realpath(dir, cfg.dir) != NULL) {
    cfg.active = 1;
    cfg.dir_len = strlen(cfg.dir);
    while (cfg.dir_len > 1 && cfg.dir[cfg.dir_len - 1] == '/') cfg.dir[--cfg.dir_len] = '\0';
    const char* ops = getenv("SQLBAK_FAULT_OPS");
    if (ops == NULL) ops = "write,fsync,rename,read";
    if (strstr(ops, "write")) cfg.families |= kWrite;
    if (strstr(ops, "fsync")) cfg.families |= kFsync;
    if (strstr(ops, "rename")) cfg.families |= kRename;
    if (strstr(ops, "read")) cfg.families |= kRead;
    cfg.path_sub = getenv("SQLBAK_FAULT_PATH");
    if (cfg.path_sub != NULL && cfg.path_sub[0] == '\0') cfg.path_sub = NULL;
    cfg.magic = getenv("SQLBAK_FAULT_MAGIC");
    cfg.magic_len = cfg.magic ? strlen(cfg.magic) : 0;
    const char* n = getenv("SQLBAK_FAULT_NTH");
    cfg.nth = n ? strtol(n, NULL, 10) : 1;
    const char* c = getenv("SQLBAK_FAULT_COUNT");
    cfg.count = c ? strtol(c, NULL, 10) : 1;
    const char* a = getenv("SQLBAK_FAULT_ACTION");
    if (a == NULL || strcmp(a, "eio") == 0) cfg.action = kEio;
    else if (strcmp(a, "enospc") == 0) cfg.action = kEnospc;
    else if (strcmp(a, "kill") == 0) cfg.action = kKill;
    else if (strcmp(a, "kill_after") == 0) cfg.action = kKillAfter;
    else cfg.action = kEio;
    cfg.log = getenv("SQLBAK_FAULT_LOG");
    const char* t = getenv("SQLBAK_FAULT_TRACE");
    cfg.trace = t != NULL && strcmp(t, "1") == 0;
  }
  atomic_store(&config_state, 2);
}

static int under_dir(const char* path) {
  return strncmp(path, cfg.dir, cfg.dir_len) == 0 &&
         (path[cfg.dir_len] == '/' || path[cfg.dir_len] == '\0');
}

// PATH made absolute (relative to DIRFD or the working directory) into OUT.
static void absolute(int dirfd, const char* path, char* out, size_t size) {
  if (path[0] == '/') {
    snprintf(out, size, "%s", path);
    return;
  }
  char base[PATH_MAX] = "";
  if (dirfd == AT_FDCWD) {
    if (getcwd(base, sizeof base) == NULL) base[0] = '\0';
  } else {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, base, sizeof base - 1);
    base[n > 0 ? n : 0] = '\0';
  }
  snprintf(out, size, "%s/%s", base, path);
}

static int fd_path(int fd, char* out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, size - 1);
  if (n <= 0) return 0;
  out[n] = '\0';
  return 1;
}

static void log_line(const char* what, long seq, const char* op, const char* path) {
  if (cfg.log == NULL) return;
  load_write();
  int fd = open(cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  static const char* names[] = {"eio", "enospc", "kill", "kill_after"};
  char line[PATH_MAX + 128];
  int len = snprintf(line, sizeof line, "%s %ld %s %s %s\n", what, seq, op, path, names[cfg.action]);
  if (len > 0) (void)!real_write(fd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
  close(fd);
}

// Decides for one call. Returns 0 to pass it through, 1 to inject the action
// (before the call), 2 to kill after the call. PEEK, when not NULL, is the data
// a write puts at OFFSET (used for the magic test of a file still empty).
static int decide(int family, const char* op, int fd, const char* path_arg, const void* peek,
                  size_t peek_len, off_t offset) {
  if (atomic_load(&config_state) != 2) configure();
  if (!cfg.active || !(cfg.families & family)) return 0;
  int saved = errno;
  char path[PATH_MAX];
  if (path_arg != NULL) {
    snprintf(path, sizeof path, "%s", path_arg);
  } else if (!fd_path(fd, path, sizeof path)) {
    errno = saved;
    return 0;
  }
  int result = 0;
  if (!under_dir(path)) goto out;
  if (cfg.path_sub != NULL && strstr(path, cfg.path_sub) == NULL) goto out;
  if (cfg.magic_len > 0 && path_arg == NULL) {
    char head[64];
    size_t want = cfg.magic_len < sizeof head ? cfg.magic_len : sizeof head;
    if (peek != NULL && offset == 0) {
      if (peek_len < want || memcmp(peek, cfg.magic, want) != 0) goto out;
    } else {
      // The fd may be write-only: read the file through a descriptor of our own.
      load_pread();
      int rfd = open(path, O_RDONLY | O_CLOEXEC);
      ssize_t n = rfd >= 0 ? real_pread(rfd, head, want, 0) : -1;
      if (rfd >= 0) close(rfd);
      if (n != (ssize_t)want || memcmp(head, cfg.magic, want) != 0) goto out;
    }
  }
  long seq = atomic_fetch_add(&matches, 1) + 1;
  if (cfg.trace) log_line("match", seq, op, path);
  if (seq < cfg.nth || (cfg.count > 0 && seq >= cfg.nth + cfg.count)) goto out;
  log_line("fault", seq, op, path);
  if (cfg.action == kKill) kill(getpid(), SIGKILL);
  result = cfg.action == kKillAfter ? 2 : 1;
out:
  errno = saved;
  return result;
}

static int fail_errno(void) { return cfg.action == kEnospc ? ENOSPC : EIO; }

static void kill_now(void) {
  kill(getpid(), SIGKILL);
  for (;;) pause();
}

static off_t current_offset(int fd) {
  int saved = errno;
  off_t o = lseek(fd, 0, SEEK_CUR);
  errno = saved;
  return o;
}

#define FD_CALL(family, op, fd, peek, peek_len, offset, real_call) \
  do {                                                             \
    int d_ = decide(family, op, fd, NULL, peek, peek_len, offset); \
    if (d_ == 1) {                                                 \
      errno = fail_errno();                                        \
      return -1;                                                   \
    }                                                              \
    __typeof__(real_call) r_ = real_call;                          \
    if (d_ == 2 && r_ >= 0) kill_now();                            \
    return r_;                                                     \
  } while (0)

ssize_t write(int fd, const void* buf, size_t n) {
  load_write();
  FD_CALL(kWrite, "write", fd, buf, n, current_offset(fd), real_write(fd, buf, n));
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  load_writev();
  FD_CALL(kWrite, "writev", fd, cnt > 0 ? iov[0].iov_base : NULL, cnt > 0 ? iov[0].iov_len : 0,
          current_offset(fd), real_writev(fd, iov, cnt));
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  load_pwrite();
  FD_CALL(kWrite, "pwrite", fd, buf, n, off, real_pwrite(fd, buf, n, off));
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  load_pwrite64();
  FD_CALL(kWrite, "pwrite64", fd, buf, n, off, real_pwrite64(fd, buf, n, off));
}

ssize_t read(int fd, void* buf, size_t n) {
  load_read();
  FD_CALL(kRead, "read", fd, NULL, 0, 1, real_read(fd, buf, n));
}

ssize_t readv(int fd, const struct iovec* iov, int cnt) {
  load_readv();
  FD_CALL(kRead, "readv", fd, NULL, 0, 1, real_readv(fd, iov, cnt));
}

ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  load_pread();
  FD_CALL(kRead, "pread", fd, NULL, 0, 1, real_pread(fd, buf, n, off));
}

ssize_t pread64(int fd, void* buf, size_t n, off_t off) {
  load_pread64();
  FD_CALL(kRead, "pread64", fd, NULL, 0, 1, real_pread64(fd, buf, n, off));
}

int fsync(int fd) {
  load_fsync();
  FD_CALL(kFsync, "fsync", fd, NULL, 0, 1, real_fsync(fd));
}

int fdatasync(int fd) {
  load_fdatasync();
  FD_CALL(kFsync, "fdatasync", fd, NULL, 0, 1, real_fdatasync(fd));
}

// A rename matches on its new path (where the object appears), or on the old
// one when only that is under the directory.
static int decide_rename(const char* op, int olddirfd, const char* oldpath, int newdirfd,
                         const char* newpath) {
  if (atomic_load(&config_state) != 2) configure();
  if (!cfg.active || !(cfg.families & kRename)) return 0;
  char from[PATH_MAX], to[PATH_MAX];
  int saved = errno;
  absolute(olddirfd, oldpath, from, sizeof from);
  absolute(newdirfd, newpath, to, sizeof to);
  errno = saved;
  return decide(kRename, op, -1, under_dir(to) ? to : from, NULL, 0, 0);
}

#define RENAME_CALL(op, od, o, nd, n, real_call) \
  do {                                           \
    int d_ = decide_rename(op, od, o, nd, n);    \
    if (d_ == 1) {                               \
      errno = fail_errno();                      \
      return -1;                                 \
    }                                            \
    int r_ = real_call;                          \
    if (d_ == 2 && r_ == 0) kill_now();          \
    return r_;                                   \
  } while (0)

int rename(const char* oldpath, const char* newpath) {
  load_rename();
  RENAME_CALL("rename", AT_FDCWD, oldpath, AT_FDCWD, newpath, real_rename(oldpath, newpath));
}

int renameat(int od, const char* oldpath, int nd, const char* newpath) {
  load_renameat();
  RENAME_CALL("renameat", od, oldpath, nd, newpath, real_renameat(od, oldpath, nd, newpath));
}

int renameat2(int od, const char* oldpath, int nd, const char* newpath, unsigned int flags) {
  load_renameat2();
  RENAME_CALL("renameat2", od, oldpath, nd, newpath,
              real_renameat2(od, oldpath, nd, newpath, flags));
}
