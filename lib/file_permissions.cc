#include "lib/file_permissions.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace sqlbak {

std::optional<std::string> others_access_warning(const std::string& path, mode_t mode, const std::string& what) {
  const bool readable = (mode & S_IROTH) != 0;
  const bool writable = (mode & S_IWOTH) != 0;
  if (!readable && !writable) return std::nullopt;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode & 07777));
  const char* how = readable && writable ? "readable and writable" : readable ? "readable" : "writable";
  const char* fix = readable && writable ? "o-rw" : readable ? "o-r" : "o-w";
  return what + " " + path + " is " + how + " by other users (mode " + octal + "); fix: chmod " + fix + " " +
         path;
}

bool reachable_by_others(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(path, ec);
  if (ec) return false;
  // Only search permission on each directory matters for reaching the file.
  for (p = p.parent_path();; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (p == p.root_path() || p.empty()) return true;
  }
}

std::optional<std::string> check_file_permissions(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0 || !reachable_by_others(path)) return std::nullopt;
  return others_access_warning(path, st.st_mode, what);
}

}  // namespace sqlbak
