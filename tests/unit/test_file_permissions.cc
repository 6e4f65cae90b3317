// lib/file_permissions.h, and the warnings load_config() returns through it:
// a configuration or a secret file that other users can read or write.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "lib/config.h"
#include "lib/file_permissions.h"
#include "tests/unit/testutil.h"

using sqlbak::check_file_permissions;
using sqlbak::others_access_warning;
using sqlbak::reachable_by_others;

namespace {

std::string write_file(const std::string& path, const std::string& content, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The tests open a temporary directory to others; that only means something
// when the directories above it are open too ($TMPDIR may be private).
bool temp_parent_is_open(const sqlbak::test::TempDir& dir) {
  if (reachable_by_others(dir.path())) return true;
  WARN("the temporary directory's parents are closed to others; test not run");
  return false;
}

}  // namespace

TEST_CASE("others_access_warning names the file, the mode and the chmod that fixes it", "[file_permissions]") {
  CHECK_FALSE(others_access_warning("/etc/sqlbak/s3.key", 0100600, "secret file").has_value());
  CHECK_FALSE(others_access_warning("/etc/sqlbak/s3.key", 0100640, "secret file").has_value());
  CHECK_FALSE(others_access_warning("/etc/sqlbak/s3.key", 0100660, "secret file").has_value());

  auto readable = others_access_warning("/etc/sqlbak/s3.key", 0100644, "secret file (targets.s3.secret_access_key_file)");
  REQUIRE(readable.has_value());
  CHECK(*readable ==
        "secret file (targets.s3.secret_access_key_file) /etc/sqlbak/s3.key is readable by other users "
        "(mode 0644); fix: chmod o-r /etc/sqlbak/s3.key");

  auto writable = others_access_warning("/etc/sqlbak/sqlbak.yaml", 0100602, "configuration file");
  REQUIRE(writable.has_value());
  CHECK(contains(*writable, "is writable by other users (mode 0602)"));
  CHECK(contains(*writable, "fix: chmod o-w /etc/sqlbak/sqlbak.yaml"));

  auto both = others_access_warning("/x", 0100666, "configuration file");
  REQUIRE(both.has_value());
  CHECK(contains(*both, "readable and writable by other users (mode 0666)"));
  CHECK(contains(*both, "chmod o-rw /x"));
}

TEST_CASE("only files that others can reach draw a warning", "[file_permissions]") {
  sqlbak::test::TempDir dir;  // mkdtemp: 0700, nobody else gets in
  if (!temp_parent_is_open(dir)) return;
  const std::string file = write_file(dir / "token", "secret\n", 0644);
  CHECK_FALSE(reachable_by_others(file));
  CHECK_FALSE(check_file_permissions(file, "secret file").has_value());

  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  CHECK(reachable_by_others(file));
  auto w = check_file_permissions(file, "secret file");
  REQUIRE(w.has_value());
  CHECK(contains(*w, file));
  CHECK(contains(*w, "chmod o-r " + file));

  // o+x without o+r on the directory still lets others open a known name.
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);
  CHECK(check_file_permissions(file, "secret file").has_value());

  REQUIRE(::chmod(file.c_str(), 0640) == 0);
  CHECK_FALSE(check_file_permissions(file, "secret file").has_value());
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  CHECK_FALSE(check_file_permissions(file, "secret file").has_value());

  // A name that does not exist is not this module's to report.
  CHECK_FALSE(check_file_permissions(dir / "missing", "secret file").has_value());
  CHECK_FALSE(reachable_by_others(dir / "missing"));
}

TEST_CASE("a symbolic link is judged by the file it leads to", "[file_permissions]") {
  sqlbak::test::TempDir open_dir, closed_dir;
  if (!temp_parent_is_open(open_dir)) return;
  REQUIRE(::chmod(open_dir.path().c_str(), 0755) == 0);
  const std::string hidden = write_file(closed_dir / "token", "secret\n", 0644);
  std::filesystem::create_symlink(hidden, open_dir / "link");
  // The link is in an open directory, but the file is in a closed one.
  CHECK_FALSE(check_file_permissions(open_dir / "link", "secret file").has_value());
  REQUIRE(::chmod(closed_dir.path().c_str(), 0755) == 0);
  CHECK(check_file_permissions(open_dir / "link", "secret file").has_value());
}

TEST_CASE("load_config warns about a world-readable configuration and secret files", "[file_permissions][config]") {
  sqlbak::test::TempDir dir;
  if (!temp_parent_is_open(dir)) return;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const std::string token = write_file(dir / "http.token", "tok\n", 0644);
  const std::string password = write_file(dir / "smtp.password", "pw\n", 0600);
  const std::string config = write_file(dir / "sqlbak.yaml",
                                        "state_dir: " + dir.path() + "/state\n"
                                        "http:\n"
                                        "  listen: 127.0.0.1:9469\n"
                                        "  token_file: " + token + "\n"
                                        "alerts:\n"
                                        "  email: {url: \"smtp://mail.example.com:25\", from: a@example.com,"
                                        " to: [b@example.com], username: u, password_file: " + password + "}\n"
                                        "targets:\n"
                                        "  local: {type: local, path: " + dir.path() + "/repo}\n",
                                        0644);

  sqlbak::ConfigLoadResult r = sqlbak::load_config(config);
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  REQUIRE(r.warnings.size() == 2);
  CHECK(contains(r.warnings[0], "configuration file " + config + " is readable by other users (mode 0644)"));
  CHECK(contains(r.warnings[0], "chmod o-r " + config));
  CHECK(contains(r.warnings[1], "secret file (http.token_file) " + token));
  CHECK(contains(r.warnings[1], "chmod o-r " + token));
  // The secret itself is never part of a warning.
  for (const std::string& w : r.warnings) CHECK_FALSE(contains(w, "tok\n"));

  // Fixed as the warnings say: silence. A warning never makes the configuration invalid.
  REQUIRE(::chmod(config.c_str(), 0640) == 0);
  REQUIRE(::chmod(token.c_str(), 0600) == 0);
  REQUIRE(::chmod(password.c_str(), 0604) == 0);
  r = sqlbak::load_config(config);
  REQUIRE(r.errors.empty());
  REQUIRE(r.warnings.size() == 1);
  CHECK(contains(r.warnings[0], "secret file (alerts.email.password_file) " + password));
  REQUIRE(::chmod(password.c_str(), 0600) == 0);
  CHECK(sqlbak::load_config(config).warnings.empty());

  // An invalid configuration still reports its errors, not just warnings.
  write_file(config, "bogus_key: 1\n", 0644);
  r = sqlbak::load_config(config);
  CHECK_FALSE(r.config.has_value());
  CHECK_FALSE(r.errors.empty());
}
