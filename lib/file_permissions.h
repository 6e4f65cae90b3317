// Permission checks on the files that hold or lead to secrets: the
// configuration and the `*_file` secrets it names (S3 keys, SMTP password,
// HTTP and webhook tokens). A file that other users can read (or write) gets a
// warning naming it and the chmod that fixes it; nothing is refused, since a
// test box or a container may have good reasons.
//
// "Other users" means the permission bits for others (mode & 0006) on a file
// that others can reach: every directory above it is searchable by others
// (o+x). So a 0644 file inside a 0700 directory draws no warning: nobody but
// the owner gets to it. ACLs and group membership are not looked at.
//
// Thread-safety: the functions are reentrant; they only stat() paths.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace sqlbak {

// The warning for a file of mode MODE (st_mode bits) at PATH that others can
// reach, described as WHAT ("configuration file", "secret file (http.token_file)"),
// or nullopt when MODE grants others nothing. Pure.
// Example: "secret file (http.token_file) /etc/sqlbak/http.token is readable by
// other users (mode 0644); fix: chmod o-r /etc/sqlbak/http.token".
std::optional<std::string> others_access_warning(const std::string& path, mode_t mode, const std::string& what);

// Whether others can reach PATH: every directory above it (after resolving
// symbolic links) is searchable by others. False when PATH cannot be resolved.
bool reachable_by_others(const std::string& path);

// others_access_warning() for the file at PATH as it is on disk now, or nullopt
// when others cannot reach or use it, or it cannot be stat()ed (whoever reads
// it reports that).
std::optional<std::string> check_file_permissions(const std::string& path, const std::string& what);

}  // namespace sqlbak
