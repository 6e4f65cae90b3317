#include "lib/local_store.h"

#include "lib/host_name.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <random>

namespace sqlbak {

bool is_valid_object_key(std::string_view key) {
  if (key.empty() || key.front() == '/' || key.back() == '/') return false;
  size_t seg_start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == '/') {
      std::string_view seg = key.substr(seg_start, i - seg_start);
      if (seg.empty() || seg == "." || seg == "..") return false;
      seg_start = i + 1;
      continue;
    }
    char c = key[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Status write_all(int fd, std::string_view data, const std::string& what) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "cannot write " + what);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status fsync_dir(const std::string& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "cannot open directory " + dir);
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "cannot fsync directory " + dir);
  return Status::Ok();
}

std::string random_suffix() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* kHex = "0123456789abcdef";
  std::string s;
  uint64_t v = rng();
  for (int i = 0; i < 12; ++i, v >>= 4) s.push_back(kHex[v & 15]);
  return s;
}

class LocalLock : public StoreLock {
 public:
  LocalLock(int fd, bool wrote_holder) : fd_(fd), wrote_holder_(wrote_holder) {}
  ~LocalLock() override {
    // An exclusive holder's name must not outlive it: a later conflict with
    // shared holders would otherwise name it.
    if (wrote_holder_) (void)!::ftruncate(fd_, 0);
    ::close(fd_);  // closing drops the flock
  }

 private:
  int fd_;
  bool wrote_holder_;
};

}  // namespace

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::open(const std::string& name,
                                                                 const std::string& root,
                                                                 bool writable) {
  std::string what = "target '" + name + "' directory " + root;
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(what + " does not exist");
    return Status::FromErrno(errno, "cannot access " + what);
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(what + " is not a directory");
  if (::access(root.c_str(), writable ? (R_OK | W_OK | X_OK) : (R_OK | X_OK)) != 0)
    return Status::FromErrno(errno, std::string("cannot ") + (writable ? "write to " : "read ") +
                                        what);
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(name, root));
}

std::string LocalObjectStore::describe() const {
  return "target '" + name_ + "' (" + root_ + ")";
}

Status LocalObjectStore::ensure_dir(const std::string& dir) const {
  // Create each missing component below root_; they are few and shallow. A new
  // directory is made durable (its parent fsynced) before anything goes in it:
  // a manifest that survives a power loss must not lose its pack's directory.
  const size_t slash = dir.rfind('/');
  const auto created = [&] { return slash == std::string::npos ? Status::Ok() : fsync_dir(dir.substr(0, slash)); };
  if (::mkdir(dir.c_str(), 0750) == 0) return created();
  if (errno == EEXIST) return Status::Ok();
  if (errno == ENOENT) {
    if (slash == std::string::npos || slash <= root_.size()) return Status::FromErrno(ENOENT, "cannot create " + dir);
    SQLBAK_RETURN_IF_ERROR(ensure_dir(dir.substr(0, slash)));
    if (::mkdir(dir.c_str(), 0750) == 0) return created();
    if (errno == EEXIST) return Status::Ok();
  }
  return Status::FromErrno(errno, "cannot create directory " + dir);
}

Status LocalObjectStore::put(const std::string& key, std::string_view data) {
  if (!is_valid_object_key(key)) return Status::Internal("invalid object key '" + key + "'");
  puts_.fetch_add(1, std::memory_order_relaxed);
  bytes_written_.fetch_add(data.size(), std::memory_order_relaxed);
  const std::string final_path = path_of(key);
  const std::string dir = final_path.substr(0, final_path.rfind('/'));
  const std::string tmp_dir = root_ + "/tmp";
  SQLBAK_RETURN_IF_ERROR(ensure_dir(tmp_dir));
  SQLBAK_RETURN_IF_ERROR(ensure_dir(dir));
  const std::string tmp_path =
      tmp_dir + "/" + std::to_string(::getpid()) + "-" + random_suffix();

  FileDescriptor fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (fd.get() < 0) return Status::FromErrno(errno, "cannot create " + tmp_path);
  Status st = write_all(fd.get(), data, tmp_path);
  if (st.ok() && ::fsync(fd.get()) != 0) st = Status::FromErrno(errno, "cannot fsync " + tmp_path);
  if (st.ok() && ::close(fd.release()) != 0) st = Status::FromErrno(errno, "cannot close " + tmp_path);
  if (st.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0)
    st = Status::FromErrno(errno, "cannot rename " + tmp_path + " to " + final_path);
  if (!st.ok()) {
    ::unlink(tmp_path.c_str());
    return st.WithContext(describe());
  }
  return fsync_dir(dir).WithContext(describe());
}

Status LocalObjectStore::get(const std::string& key, std::string* data) const {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  gets_.fetch_add(1, std::memory_order_relaxed);
  const std::string path = path_of(key);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "cannot open object " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "cannot stat object " + path);
  data->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data->size()) {
    ssize_t n = ::read(fd.get(), data->data() + done, data->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read object " + path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data->resize(done);
  bytes_read_.fetch_add(done, std::memory_order_relaxed);
  return Status::Ok();
}

Status LocalObjectStore::get_range(const std::string& key, uint64_t offset, uint64_t length,
                                   std::string* data) const {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  gets_.fetch_add(1, std::memory_order_relaxed);
  const std::string path = path_of(key);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "cannot open object " + path);
  data->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd.get(), data->data() + done, length - done,
                        static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read object " + path);
    if (n == 0) return Status::Corruption("object " + path + " is shorter than expected");
    done += static_cast<size_t>(n);
  }
  bytes_read_.fetch_add(done, std::memory_order_relaxed);
  return Status::Ok();
}

Result<bool> LocalObjectStore::exists(const std::string& key) const {
  gets_.fetch_add(1, std::memory_order_relaxed);
  struct stat st {};
  if (::stat(path_of(key).c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "cannot stat " + path_of(key));
}

Result<std::vector<ObjectInfo>> LocalObjectStore::list(const std::string& prefix) const {
  lists_.fetch_add(1, std::memory_order_relaxed);
  // Walk the directory that holds PREFIX (keys are short paths) and filter.
  std::vector<ObjectInfo> out;
  std::string base = prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/'));
  std::vector<std::string> pending{base};
  while (!pending.empty()) {
    std::string rel = pending.back();
    pending.pop_back();
    std::string dir = rel.empty() ? root_ : root_ + "/" + rel;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;
      return Status::FromErrno(errno, "cannot list " + dir);
    }
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string key = rel.empty() ? name : rel + "/" + name;
      if (rel.empty() && (name == "tmp" || name == "locks")) continue;
      struct stat st {};
      if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;  // removed meanwhile
      if (S_ISDIR(st.st_mode)) {
        if (key.compare(0, std::min(key.size(), prefix.size()), prefix, 0,
                        std::min(key.size(), prefix.size())) == 0)
          pending.push_back(key);
      } else if (S_ISREG(st.st_mode) && key.compare(0, prefix.size(), prefix) == 0) {
        out.push_back({key, static_cast<uint64_t>(st.st_size)});
      }
    }
    ::closedir(d);
  }
  return out;
}

Status LocalObjectStore::remove(const std::string& key) {
  if (!is_valid_object_key(key)) return Status::InvalidArgument("invalid object key '" + key + "'");
  deletes_.fetch_add(1, std::memory_order_relaxed);
  const std::string path = path_of(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "cannot remove " + path);
  }
  // Durable before the caller goes on: prune removes a manifest, then what only
  // it needed; after a power loss the manifest must not come back without them.
  return fsync_dir(path.substr(0, path.rfind('/'))).WithContext(describe());
}

TransferCounters LocalObjectStore::counters() const {
  TransferCounters c;
  c.put_requests = puts_.load(std::memory_order_relaxed);
  c.get_requests = gets_.load(std::memory_order_relaxed);
  c.list_requests = lists_.load(std::memory_order_relaxed);
  c.delete_requests = deletes_.load(std::memory_order_relaxed);
  c.bytes_uploaded = bytes_written_.load(std::memory_order_relaxed);
  c.bytes_downloaded = bytes_read_.load(std::memory_order_relaxed);
  return c;
}

void LocalObjectStore::remove_stale_temporaries() const {
  const std::string tmp_dir = root_ + "/tmp";
  DIR* d = ::opendir(tmp_dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    size_t dash = name.find('-');
    if (dash == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.substr(0, dash).c_str(), nullptr, 10));
    // Another live process (even of another database) may be writing it.
    if (pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
    if (pid == ::getpid()) continue;
    ::unlink((tmp_dir + "/" + name).c_str());
  }
  ::closedir(d);
}

Result<int> LocalObjectStore::flock_file(const std::string& name, int operation) const {
  if (!is_valid_object_key(name)) return Status::Internal("invalid lock name '" + name + "'");
  const std::string dir = root_ + "/locks";
  SQLBAK_RETURN_IF_ERROR(ensure_dir(dir).WithContext(describe()));
  const std::string path = dir + "/" + name + ".lock";
  FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (fd.get() < 0) return Status::FromErrno(errno, "cannot open lock file " + path);
  if (::flock(fd.get(), operation | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Status::FromErrno(errno, "cannot lock " + path);
    // Only exclusive holders write their name; shared holders are many.
    std::string holder(256, '\0');
    ssize_t n = ::pread(fd.get(), holder.data(), holder.size(), 0);
    holder.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    return Status::Locked("'" + name + "' on " + describe() + " is locked by another process" +
                          (holder.empty() ? "" : " (" + holder + ")"));
  }
  return fd.release();
}

Result<std::unique_ptr<StoreLock>> LocalObjectStore::lock(const std::string& name) {
  auto fd = flock_file(name, LOCK_EX);
  if (!fd.ok()) return fd.status();
  std::time_t now = std::time(nullptr);
  char when[32];
  std::tm utc{};
  ::gmtime_r(&now, &utc);  // gmtime's static buffer races between two jobs' locks
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::string owner =
      "host " + local_host_name() + ", pid " + std::to_string(::getpid()) + ", since " + when + "\n";
  if (::ftruncate(*fd, 0) == 0) (void)!::pwrite(*fd, owner.data(), owner.size(), 0);
  remove_stale_temporaries();
  return std::unique_ptr<StoreLock>(new LocalLock(*fd, true));
}

Result<std::unique_ptr<StoreLock>> LocalObjectStore::lock_shared(const std::string& name) {
  auto fd = flock_file(name, LOCK_SH);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<StoreLock>(new LocalLock(*fd, false));
}

}  // namespace sqlbak
