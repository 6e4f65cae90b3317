#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "lib/config.h"

using namespace std::chrono_literals;
using sqlbak::CompressionAlgorithm;
using sqlbak::ConfigLoadResult;
using sqlbak::load_config;
using sqlbak::load_config_from_string;
using sqlbak::VerifyMode;

namespace {

// A directory under /tmp, removed with its contents when the test ends.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/sqlbak-config-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content) const {
    std::string full = file(name);
    std::ofstream out(full, std::ios::binary);
    out << content;
    REQUIRE(out.good());
    return full;
  }

 private:
  std::string path_;
};

// Sets (or unsets) an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<std::string> error_lines(const ConfigLoadResult& result) {
  std::vector<std::string> lines;
  for (const auto& e : result.errors) lines.push_back(e.to_string());
  return lines;
}

std::string joined(const ConfigLoadResult& result) {
  std::string text;
  for (const auto& line : error_lines(result)) text += line + "\n";
  return text;
}

// Loads TEXT as x.yaml with no credentials directory, so that results do not
// depend on the environment the tests run in.
ConfigLoadResult load(const std::string& text) {
  ScopedEnv no_credentials("CREDENTIALS_DIRECTORY", std::nullopt);
  return load_config_from_string(text, "x.yaml");
}

sqlbak::Config load_ok(const std::string& text) {
  ConfigLoadResult result = load(text);
  INFO(joined(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config.has_value());
  return *result.config;
}

// The single error TEXT produces, as "FILE:LINE:COLUMN: message".
std::string only_error(const std::string& text) {
  ConfigLoadResult result = load(text);
  INFO(joined(result));
  REQUIRE(result.errors.size() == 1);
  CHECK_FALSE(result.config.has_value());
  return result.errors.front().to_string();
}

// The part of every test config that is not under test.
const std::string kLocalTarget = "targets:\n  local: {type: local, path: /var/backups/sqlbak}\n";

}  // namespace

TEST_CASE("a full configuration resolves per-database overrides", "[config]") {
  sqlbak::Config config = load_ok(R"(socket: /run/test/control.sock
socket_group: backup
state_dir: /var/lib/test
workers: 4
http:
  listen: 127.0.0.1:8080
defaults:
  schedule: "*-*-* 03:00:00"
  rotate: daily
  compression: {algorithm: zstd, level: 9}
  verify: quick
  step_pages: 256
  retention: {keep_last: 2, keep_daily: 10, keep_within: 2d}
  targets: [local]
  max_age: 36h
  verify_schedule: monthly
  verify_latest: 2
  busy_timeout: 250ms
targets:
  local: {type: local, path: /var/backups/sqlbak}
  second: {type: local, path: /mnt/backup}
databases:
  - name: shop
    path: /srv/app/shop.db
  - name: crm.v2
    path: /srv/app/crm.db
    schedule: hourly
    compression: {level: 19}
    retention: {keep_daily: 3, keep_yearly: 5}
    targets: [second, local]
    verify: none
    max_age: 2h
    busy_timeout: 10s
alerts:
  repeat_after: 30min
)");
  CHECK(config.source_file == "x.yaml");
  CHECK(config.socket == "/run/test/control.sock");
  CHECK(config.socket_group == "backup");
  CHECK(config.state_dir == "/var/lib/test");
  CHECK(config.workers == 4);
  REQUIRE(config.http.has_value());
  CHECK(config.http->listen == "127.0.0.1:8080");
  CHECK(config.http->token_file.empty());
  CHECK(config.alerts.repeat_after == 30min);
  CHECK_FALSE(config.alerts.email.has_value());
  REQUIRE(config.targets.size() == 2);
  CHECK(config.targets.at("second").type == "local");
  CHECK(config.targets.at("second").path == "/mnt/backup");
  CHECK(config.targets.at("second").name == "second");

  REQUIRE(config.databases.size() == 2);
  const sqlbak::DatabaseConfig* shop = config.find_database("shop");
  REQUIRE(shop != nullptr);
  CHECK(shop->path == "/srv/app/shop.db");
  const sqlbak::DatabaseSettings& s = shop->settings;
  CHECK(s.schedule == "*-*-* 03:00:00");
  CHECK(s.rotate == "daily");
  CHECK(s.compression.algorithm == CompressionAlgorithm::kZstd);
  CHECK(s.compression.level == 9);
  CHECK(s.verify == VerifyMode::kQuick);
  CHECK(s.step_pages == 256);
  CHECK(s.retention.keep_last == 2);
  CHECK(s.retention.keep_hourly == 0);   // built-in
  CHECK(s.retention.keep_daily == 10);
  CHECK(s.retention.keep_weekly == 4);   // built-in
  CHECK(s.retention.keep_monthly == 12); // built-in
  CHECK(s.retention.keep_within == 48h);
  CHECK(s.targets == std::vector<std::string>{"local"});
  CHECK(s.max_age == 36h);
  CHECK(s.verify_schedule == "monthly");
  CHECK(s.verify_latest == 2);
  CHECK(s.busy_timeout == 250ms);

  const sqlbak::DatabaseConfig* crm = config.find_database("crm.v2");
  REQUIRE(crm != nullptr);
  const sqlbak::DatabaseSettings& c = crm->settings;
  CHECK(c.schedule == "hourly");
  CHECK(c.rotate == "daily");  // from defaults
  // Nested maps override per sub-key: the algorithm still comes from defaults.
  CHECK(c.compression.algorithm == CompressionAlgorithm::kZstd);
  CHECK(c.compression.level == 19);
  CHECK(c.retention.keep_last == 2);   // defaults
  CHECK(c.retention.keep_daily == 3);  // own
  CHECK(c.retention.keep_yearly == 5); // own
  CHECK(c.retention.keep_within == 48h);
  CHECK(c.targets == std::vector<std::string>{"second", "local"});
  CHECK(c.verify == VerifyMode::kNone);
  CHECK(c.max_age == 2h);
  CHECK(c.busy_timeout == 10s);
  CHECK(c.step_pages == 256);

  CHECK(config.find_database("nope") == nullptr);
}

TEST_CASE("built-in defaults apply when the config leaves keys out", "[config]") {
  sqlbak::Config config = load_ok(kLocalTarget + "databases:\n  - {name: a, path: /a.db}\n");
  CHECK(config.socket == "/run/sqlbak/control.sock");
  CHECK(config.workers == 2);
  CHECK_FALSE(config.http.has_value());
  REQUIRE(config.databases.size() == 1);
  const sqlbak::DatabaseSettings& s = config.databases[0].settings;
  CHECK(s.schedule == "*-*-* 02:00:00");
  CHECK(s.compression.algorithm == CompressionAlgorithm::kZstd);
  CHECK(s.compression.level == 3);
  CHECK(s.verify == VerifyMode::kIntegrity);
  CHECK(s.targets == std::vector<std::string>{"local"});
  CHECK(s.max_age == 48h);
  CHECK(s.busy_timeout == 5000ms);
  CHECK(config.alerts.repeat_after == 1h);
}

TEST_CASE("a configuration that backs up nothing is valid", "[config]") {
  CHECK(load_ok("").databases.empty());
  CHECK(load_ok("# nothing but a comment\n").databases.empty());
  CHECK(load_ok("workers: 1\n").databases.empty());
  CHECK(load_ok("databases: []\n").databases.empty());
  CHECK(load_ok("databases:\n").databases.empty());
  CHECK(load_ok(kLocalTarget + "databases: []\n").targets.size() == 1);
}

TEST_CASE("an unknown key is reported at its line and column", "[config]") {
  std::string text = kLocalTarget +   // lines 1-2
                     "databases:\n"   // 3
                     "  - name: shop\n"
                     "    path: /srv/shop.db\n"
                     "    schedule: daily\n"
                     "    colour: blue\n";  // line 7, column 5
  CHECK(only_error(text) == "x.yaml:7:5: unknown key 'colour' in databases[0]");

  CHECK(only_error("workers: 2\nsockett: /run/x.sock\n") ==
        "x.yaml:2:1: unknown key 'sockett' at top level; did you mean 'socket'?");
  CHECK(only_error("defaults:\n  retention: {keep_lastt: 3}\n") ==
        "x.yaml:2:15: unknown key 'keep_lastt' in defaults.retention; did you mean 'keep_last'?");
  CHECK_THAT(only_error("defaults:\n  compression:\n    algo: zstd\n"),
             Catch::StartsWith("x.yaml:3:5: unknown key 'algo' in defaults.compression"));
  CHECK_THAT(only_error("alerts:\n  pager: {url: x}\n"),
             Catch::StartsWith("x.yaml:2:3: unknown key 'pager' in alerts"));
}

TEST_CASE("a repeated key is an error", "[config]") {
  CHECK(only_error("workers: 2\nstate_dir: /x\nworkers: 3\n") ==
        "x.yaml:3:1: duplicate key 'workers' at top level (first at line 1)");
}

TEST_CASE("values of the wrong type are reported", "[config]") {
  CHECK(only_error("workers: two\n") == "x.yaml:1:10: 'workers' must be an integer, got 'two'");
  CHECK(only_error("workers: 1.5\n") == "x.yaml:1:10: 'workers' must be an integer, got '1.5'");
  CHECK(only_error("workers: [1]\n") == "x.yaml:1:10: 'workers' must be an integer, got a list");
  CHECK(only_error("workers: \"2\"\n") ==
        "x.yaml:1:10: 'workers' must be an integer, got the quoted string '2'");
  // An empty value is placed at its key: yaml-cpp would point at the next line.
  CHECK(only_error("workers:\nstate_dir: /x\n") == "x.yaml:1:1: 'workers' must be an integer, got nothing");
  CHECK(only_error("socket: {a: b}\n") == "x.yaml:1:9: 'socket' must be a string, got a mapping");
  CHECK(only_error("defaults: [1, 2]\n") == "x.yaml:1:11: 'defaults' must be a mapping, got a list");
  CHECK(only_error("databases: {name: a}\n") == "x.yaml:1:12: 'databases' must be a list, got a mapping");
  CHECK(only_error("defaults:\n  targets: local\n") ==
        "x.yaml:2:12: 'defaults.targets' must be a list, got 'local'");
  CHECK_THAT(only_error("- a\n- b\n"), Catch::StartsWith("x.yaml:1:1: the configuration must be a mapping"));
  CHECK(only_error("alerts:\n  email: {url: 'smtp://m', from: a@b, to: [c@d], starttls: maybe}\n") ==
        "x.yaml:2:60: 'alerts.email.starttls' must be true or false, got 'maybe'");
}

TEST_CASE("integers out of range are reported", "[config]") {
  CHECK(only_error("workers: 0\n") == "x.yaml:1:10: 'workers' must be at least 1, got 0");
  CHECK(only_error("defaults:\n  step_pages: 0\n") ==
        "x.yaml:2:15: 'defaults.step_pages' must be at least 1, got 0");
  CHECK(only_error("defaults:\n  retention:\n    keep_daily: -1\n") ==
        "x.yaml:3:17: 'defaults.retention.keep_daily' must be at least 0, got -1");
  CHECK(only_error("defaults:\n  verify_latest: -2\n") ==
        "x.yaml:2:18: 'defaults.verify_latest' must be at least 0, got -2");
  CHECK(only_error("workers: 99999999999999\n") ==
        "x.yaml:1:10: 'workers' must be an integer, got '99999999999999'");
}

TEST_CASE("bad durations are reported with the reason", "[config]") {
  CHECK(only_error("defaults:\n  max_age: 2 days ago\n") ==
        "x.yaml:2:12: 'defaults.max_age': invalid duration '2 days ago': expected a number at 'ago' "
        "(write e.g. 90s, 30min, 48h, 7d)");
  CHECK_THAT(only_error("defaults:\n  retention: {keep_within: -1d}\n"),
             Catch::StartsWith("x.yaml:2:28: 'defaults.retention.keep_within': invalid duration '-1d'"));
  CHECK_THAT(only_error("alerts:\n  repeat_after: soon\n"),
             Catch::StartsWith("x.yaml:2:17: 'alerts.repeat_after': invalid duration 'soon'"));
  CHECK_THAT(only_error("defaults:\n  busy_timeout: 5 parsecs\n"),
             Catch::StartsWith("x.yaml:2:17: 'defaults.busy_timeout': invalid duration"));
  CHECK(only_error("defaults:\n  max_age: 0s\n") ==
        "x.yaml:2:12: 'defaults.max_age' must be at least 1s, got '0s'");
}

TEST_CASE("enum values outside their set are reported", "[config]") {
  CHECK(only_error("defaults:\n  compression: {algorithm: lz4}\n") ==
        "x.yaml:2:28: 'defaults.compression.algorithm' must be one of zstd, gzip, none, got 'lz4'");
  CHECK(only_error("defaults:\n  verify: full\n") ==
        "x.yaml:2:11: 'defaults.verify' must be one of integrity, quick, none, got 'full'");
}

TEST_CASE("compression levels are checked against the algorithm", "[config]") {
  CHECK(only_error("defaults:\n  compression: {algorithm: zstd, level: 20}\n") ==
        "x.yaml:2:41: 'defaults.compression.level' must be between 1 and 19 for zstd, got 20");
  CHECK(only_error("defaults:\n  compression: {algorithm: gzip, level: 10}\n") ==
        "x.yaml:2:41: 'defaults.compression.level' must be between 1 and 9 for gzip, got 10");
  CHECK(only_error("defaults:\n  compression: {level: 0}\n") ==
        "x.yaml:2:24: 'defaults.compression.level' must be between 1 and 19 for zstd, got 0");
  // The level does not matter without compression.
  CHECK(load_ok("defaults:\n  compression: {algorithm: none, level: 0}\n").defaults.compression.algorithm ==
        CompressionAlgorithm::kNone);
  CHECK(load_ok("defaults:\n  compression: {algorithm: gzip, level: 9}\n").defaults.compression.level == 9);

  // A database that switches to gzip must not keep an inherited zstd level.
  std::string text = kLocalTarget +
                      "defaults:\n"
                      "  compression: {algorithm: zstd, level: 15}\n"
                      "databases:\n"
                      "  - name: a\n"
                      "    path: /a.db\n"
                      "    compression: {algorithm: gzip}\n";  // line 8
  CHECK(only_error(text) ==
        "x.yaml:8:18: 'databases[0].compression.level' must be between 1 and 9 for gzip, got 15 "
        "(inherited; set 'level' here)");
}

TEST_CASE("database names and paths are checked", "[config]") {
  std::string text = kLocalTarget +
                     "databases:\n"
                     "  - name: shop\n"           // 4
                     "    path: /srv/shop.db\n"
                     "  - name: shop\n"           // 6
                     "    path: /srv/other.db\n"
                     "  - name: 'bad name'\n"     // 8
                     "    path: /srv/bad.db\n"
                     "  - name: ..\n"             // 10
                     "    path: /srv/dots.db\n"
                     "  - name: rel\n"            // 12
                     "    path: srv/rel.db\n"     // 13
                     "  - path: /srv/anon.db\n";  // 14
  ConfigLoadResult result = load(text);
  CHECK(error_lines(result) ==
        std::vector<std::string>{
            "x.yaml:6:11: duplicate database name 'shop' (first defined at line 4)",
            "x.yaml:8:11: database name 'bad name' must match [A-Za-z0-9_.-]+",
            "x.yaml:10:11: database name '..' must match [A-Za-z0-9_.-]+",
            "x.yaml:13:11: 'databases[4].path' must be an absolute path, got 'srv/rel.db'",
            "x.yaml:14:5: 'databases[5]' needs 'name'",
        });
  CHECK_FALSE(result.config.has_value());
}

TEST_CASE("databases must name defined targets", "[config]") {
  std::string text = kLocalTarget +
                     "databases:\n"
                     "  - name: a\n"
                     "    path: /a.db\n"
                     "    targets: [local, offsite, local]\n";  // line 6
  ConfigLoadResult result = load(text);
  CHECK(error_lines(result) ==
        std::vector<std::string>{
            "x.yaml:6:22: 'databases[0].targets' names target 'offsite', which is not defined under 'targets:'",
            "x.yaml:6:31: target 'local' is listed twice in 'databases[0].targets'",
        });

  CHECK(only_error("defaults:\n  targets: [nas]\n") ==
        "x.yaml:2:13: 'defaults.targets' names target 'nas', which is not defined under 'targets:'");
}

TEST_CASE("targets may be defined after the databases that use them", "[config]") {
  sqlbak::Config config = load_ok("databases:\n  - {name: a, path: /a.db, targets: [nas]}\n"
                                  "targets:\n  nas: {type: local, path: /mnt/nas}\n");
  CHECK(config.databases[0].settings.targets == std::vector<std::string>{"nas"});
}

TEST_CASE("a database without targets is an error", "[config]") {
  // No `local` target and no defaults.targets: the built-in [local] names nothing.
  CHECK(only_error("targets:\n  nas: {type: local, path: /mnt/nas}\ndatabases:\n  - name: a\n    path: /a.db\n") ==
        "x.yaml:4:5: database 'a' has no targets: define a target named 'local', or set 'targets' here or "
        "under 'defaults:'");
  CHECK(only_error(kLocalTarget + "databases:\n  - name: a\n    path: /a.db\n    targets: []\n") ==
        "x.yaml:4:5: database 'a' has no targets");
  CHECK(only_error(kLocalTarget + "defaults:\n  targets: []\ndatabases:\n  - {name: a, path: /a.db}\n") ==
        "x.yaml:6:5: database 'a' has no targets ('defaults.targets' is empty)");
  // A database that names its own targets needs no `local`.
  CHECK(load_ok("targets:\n  nas: {type: local, path: /mnt/nas}\n"
                "databases:\n  - {name: a, path: /a.db, targets: [nas]}\n")
            .databases.size() == 1);
}

TEST_CASE("targets are checked by type", "[config]") {
  CHECK(only_error("targets:\n  t: {type: ftp}\n") ==
        "x.yaml:2:13: 'targets.t.type' must be local or s3, got 'ftp'");
  CHECK(only_error("targets:\n  t: {path: /x}\n") ==
        "x.yaml:2:6: target 't' needs 'type: local' or 'type: s3'");
  CHECK(only_error("targets:\n  t: {type: local}\n") == "x.yaml:2:6: target 't' (local) needs 'path'");
  CHECK(only_error("targets:\n  t: {type: local, path: backups}\n") ==
        "x.yaml:2:26: 'targets.t.path' must be an absolute path, got 'backups'");
  CHECK(only_error("targets:\n  t: {type: local, path: /x, bucket: b}\n") ==
        "x.yaml:2:30: unknown key 'bucket' in targets.t");
  CHECK(only_error("targets:\n  'a/b': {type: local, path: /x}\n") ==
        "x.yaml:2:3: target name 'a/b' must match [A-Za-z0-9_.-]+");

  ConfigLoadResult result = load("targets:\n  s: {type: s3, endpoint: 'ftp://x', prefix: p/}\n");
  CHECK(error_lines(result) == std::vector<std::string>{
                                   "x.yaml:2:6: target 's' (s3) needs 'region'",
                                   "x.yaml:2:6: target 's' (s3) needs 'bucket'",
                                   "x.yaml:2:6: target 's' (s3) needs 'access_key_id_file'",
                                   "x.yaml:2:6: target 's' (s3) needs 'secret_access_key_file'",
                                   "x.yaml:2:27: 'targets.s.endpoint' must start with https:// or http://, got 'ftp://x'",
                               });
}

TEST_CASE("s3 server-side encryption settings are checked", "[config]") {
  TempDir dir;
  std::string key = dir.write("key", "k");
  std::string s3 = "targets:\n  s: {type: s3, endpoint: 'https://s3', region: r, bucket: b, access_key_id_file: " +
                   key + ", secret_access_key_file: " + key;
  CHECK(load_ok(s3 + ", sse: AES256}\n").targets.at("s").sse == "AES256");
  CHECK_THAT(only_error(s3 + ", sse: DES}\n"),
             Catch::EndsWith("'targets.s.sse' must be one of AES256, aws:kms, got 'DES'"));
  CHECK(only_error(s3 + ", sse_kms_key_id: k1}\n") ==
        "x.yaml:2:6: target 's': 'sse_kms_key_id' needs 'sse: aws:kms'");
}

TEST_CASE("an s3 target resolves its credential files", "[config]") {
  TempDir dir;
  dir.write("key-id", "AKIA\n");
  std::string secret = dir.write("secret", "s3cr3t\n");
  std::string config_file = dir.write("sqlbak.yaml", R"(targets:
  offsite:
    type: s3
    endpoint: "https://s3.eu-west-1.amazonaws.com"
    region: eu-west-1
    bucket: my-backups
    prefix: sqlbak/
    access_key_id_file: key-id
    secret_access_key_file: )" + secret + R"(
    storage_class: STANDARD_IA
    sse: aws:kms
    sse_kms_key_id: alias/backups
defaults:
  targets: [offsite]
databases:
  - {name: a, path: /a.db}
)");
  ScopedEnv no_credentials("CREDENTIALS_DIRECTORY", std::nullopt);
  ConfigLoadResult result = load_config(config_file);
  INFO(joined(result));
  REQUIRE(result.errors.empty());
  const sqlbak::TargetConfig& t = result.config->targets.at("offsite");
  CHECK(t.type == "s3");
  CHECK(t.endpoint == "https://s3.eu-west-1.amazonaws.com");
  CHECK(t.region == "eu-west-1");
  CHECK(t.bucket == "my-backups");
  CHECK(t.prefix == "sqlbak/");
  // Without $CREDENTIALS_DIRECTORY a relative name is next to the config file.
  CHECK(t.access_key_id_file == dir.file("key-id"));
  CHECK(t.secret_access_key_file == secret);
  CHECK(t.storage_class == "STANDARD_IA");
  CHECK(t.sse == "aws:kms");
  CHECK(t.sse_kms_key_id == "alias/backups");
  CHECK(result.config->databases[0].settings.targets == std::vector<std::string>{"offsite"});
}

TEST_CASE("relative secret files are looked up in $CREDENTIALS_DIRECTORY", "[config]") {
  TempDir credentials;
  credentials.write("http.token", "token\n");
  ScopedEnv env("CREDENTIALS_DIRECTORY", credentials.path());
  ConfigLoadResult result =
      load_config_from_string("http:\n  token_file: http.token\n", "/etc/sqlbak/sqlbak.yaml");
  INFO(joined(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config->http.has_value());
  CHECK(result.config->http->token_file == credentials.file("http.token"));
  CHECK(result.config->http->listen == "127.0.0.1:9469");

  // A name that is not there is reported with the path that was tried.
  result = load_config_from_string("http:\n  token_file: missing.token\n", "/etc/sqlbak/sqlbak.yaml");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() == "/etc/sqlbak/sqlbak.yaml:2:15: 'http.token_file': cannot read '" +
                                            credentials.file("missing.token") + "': No such file or directory");
}

TEST_CASE("unreadable secret files are errors naming the file", "[config]") {
  TempDir dir;
  std::filesystem::create_directory(dir.file("a-directory"));
  std::string text = "alerts:\n"
                     "  email:\n"
                     "    url: smtp://mail.example.com:587\n"
                     "    from: sqlbak@example.com\n"
                     "    to: [ops@example.com]\n"
                     "    password_file: " + dir.file("nope") + "\n"  // line 6
                     "  webhook:\n"
                     "    url: https://hooks.example.com/x\n"
                     "    token_file: " + dir.file("a-directory") + "\n";  // line 9
  ConfigLoadResult result = load(text);
  CHECK(error_lines(result) ==
        std::vector<std::string>{
            "x.yaml:6:20: 'alerts.email.password_file': cannot read '" + dir.file("nope") +
                "': No such file or directory",
            "x.yaml:9:17: 'alerts.webhook.token_file': '" + dir.file("a-directory") + "' is not a regular file",
        });

  if (::geteuid() != 0) {  // root reads everything
    std::string locked = dir.write("locked", "secret");
    REQUIRE(::chmod(locked.c_str(), 0) == 0);
    ConfigLoadResult denied = load("http: {token_file: " + locked + "}\n");
    REQUIRE(denied.errors.size() == 1);
    CHECK_THAT(denied.errors[0].message, Catch::Contains("Permission denied") && Catch::Contains(locked));
  }
}

TEST_CASE("alerts are read and checked", "[config]") {
  TempDir dir;
  std::string password = dir.write("smtp.password", "pw");
  sqlbak::Config config = load_ok("alerts:\n"
                                  "  email:\n"
                                  "    url: smtp://mail.example.com:587\n"
                                  "    starttls: true\n"
                                  "    from: sqlbak@example.com\n"
                                  "    to: [ops@example.com, dev@example.com]\n"
                                  "    username: sqlbak\n"
                                  "    password_file: " + password + "\n"
                                  "    on: [failure, success]\n"
                                  "  webhook: {url: 'https://hooks.example.com/sqlbak'}\n"
                                  "  repeat_after: 2h\n");
  REQUIRE(config.alerts.email.has_value());
  CHECK(config.alerts.email->starttls);
  CHECK(config.alerts.email->to == std::vector<std::string>{"ops@example.com", "dev@example.com"});
  CHECK(config.alerts.email->password_file == password);
  CHECK(config.alerts.email->on == std::vector<std::string>{"failure", "success"});
  REQUIRE(config.alerts.webhook.has_value());
  CHECK(config.alerts.webhook->url == "https://hooks.example.com/sqlbak");
  CHECK(config.alerts.webhook->on == std::vector<std::string>{"failure", "health"});  // the default
  CHECK(config.alerts.repeat_after == 2h);

  ConfigLoadResult result = load("alerts:\n  email: {url: 'http://x', to: []}\n  webhook: {on: [always]}\n");
  CHECK(error_lines(result) ==
        std::vector<std::string>{
            "x.yaml:2:10: 'alerts.email' needs 'from'",
            "x.yaml:2:16: 'alerts.email.url' must start with smtp:// or smtps://, got 'http://x'",
            "x.yaml:2:32: 'alerts.email.to' needs at least one address",
            "x.yaml:3:12: 'alerts.webhook' needs 'url'",
            "x.yaml:3:18: 'alerts.webhook.on' may contain failure, success and health, got 'always'",
        });
}

TEST_CASE("http.listen must be HOST:PORT", "[config]") {
  CHECK(load_ok("http: {listen: '[::1]:9469'}\n").http->listen == "[::1]:9469");
  CHECK(only_error("http: {listen: localhost}\n") ==
        "x.yaml:1:16: 'http.listen' must be HOST:PORT (e.g. 127.0.0.1:9469), got 'localhost'");
  CHECK_THAT(only_error("http: {listen: ':80'}\n"), Catch::Contains("must be HOST:PORT"));
  CHECK_THAT(only_error("http: {listen: 'h:99999'}\n"), Catch::Contains("must be HOST:PORT"));
  CHECK_FALSE(load_ok("http:\n").http.has_value());
}

TEST_CASE("every error is reported, in file order", "[config]") {
  std::string text = "workers: 0\n"                        // 1
                     "state_dir: relative\n"               // 2
                     "targets:\n"                          // 3
                     "  local: {type: local, path: /b}\n"  // 4
                     "defaults:\n"                         // 5
                     "  verify: maybe\n"                   // 6
                     "  step_pages: lots\n"                // 7
                     "databases:\n"                        // 8
                     "  - name: a\n"                       // 9
                     "    path: /a.db\n"                   // 10
                     "    max_age: forever\n"              // 11
                     "    extra: 1\n"                      // 12
                     "  - name: a\n"                       // 13
                     "    path: /b.db\n"                   // 14
                     "bogus: true\n";                      // 15
  ConfigLoadResult result = load(text);
  CHECK_FALSE(result.config.has_value());
  CHECK(error_lines(result) ==
        std::vector<std::string>{
            "x.yaml:1:10: 'workers' must be at least 1, got 0",
            "x.yaml:2:12: 'state_dir' must be an absolute path, got 'relative'",
            "x.yaml:6:11: 'defaults.verify' must be one of integrity, quick, none, got 'maybe'",
            "x.yaml:7:15: 'defaults.step_pages' must be an integer, got 'lots'",
            "x.yaml:11:14: 'databases[0].max_age': invalid duration 'forever': expected a number at 'forever' "
            "(write e.g. 90s, 30min, 48h, 7d)",
            "x.yaml:12:5: unknown key 'extra' in databases[0]",
            "x.yaml:13:11: duplicate database name 'a' (first defined at line 9)",
            "x.yaml:15:1: unknown key 'bogus' at top level",
        });
}

TEST_CASE("broken YAML is reported at its place", "[config]") {
  ConfigLoadResult result = load("workers: 2\ndatabases: [a, b\nstate_dir: /x\n");
  REQUIRE(result.errors.size() == 1);
  CHECK_FALSE(result.config.has_value());
  const sqlbak::ConfigError& e = result.errors[0];
  // yaml-cpp notices the unclosed list where the next mapping key begins.
  CHECK(e.line == 3);
  CHECK(e.column == 10);
  CHECK(e.to_string() == "x.yaml:3:10: YAML syntax error: end of sequence flow not found");

  CHECK(only_error("workers: 2\n  state_dir: /x\n") == "x.yaml:2:12: YAML syntax error: illegal map value");
  CHECK_THAT(only_error("workers: 2\n---\nworkers: 3\n"),
             Catch::StartsWith("x.yaml:3:1: only one YAML document is allowed"));
}

TEST_CASE("load_config reports a file it cannot read", "[config]") {
  TempDir dir;
  ConfigLoadResult result = load_config(dir.file("absent.yaml"));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 0);
  CHECK(result.errors[0].to_string() == dir.file("absent.yaml") + ": cannot read: No such file or directory");
}

TEST_CASE("load_config reads a file and names it in errors", "[config]") {
  TempDir dir;
  std::string file = dir.write("sqlbak.yaml", "workers: 1\nfoo: 1\n");
  ConfigLoadResult result = load_config(file);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() == file + ":2:1: unknown key 'foo' at top level");
}

TEST_CASE("enum names and error formatting", "[config]") {
  CHECK(std::string(sqlbak::to_string(CompressionAlgorithm::kZstd)) == "zstd");
  CHECK(std::string(sqlbak::to_string(CompressionAlgorithm::kGzip)) == "gzip");
  CHECK(std::string(sqlbak::to_string(CompressionAlgorithm::kNone)) == "none");
  CHECK(std::string(sqlbak::to_string(VerifyMode::kIntegrity)) == "integrity");
  CHECK(std::string(sqlbak::to_string(VerifyMode::kQuick)) == "quick");
  CHECK(std::string(sqlbak::to_string(VerifyMode::kNone)) == "none");
  CHECK(sqlbak::ConfigError{"f.yaml", 3, 7, "bad"}.to_string() == "f.yaml:3:7: bad");
  CHECK(sqlbak::ConfigError{"f.yaml", 0, 0, "unreadable"}.to_string() == "f.yaml: unreadable");
}

TEST_CASE("example_config() is a valid configuration", "[config]") {
  sqlbak::Config config = load_ok(sqlbak::example_config());
  CHECK(config.targets.contains("local"));
  REQUIRE(config.databases.size() == 1);
  CHECK(config.databases[0].name == "shop");
  CHECK(config.databases[0].settings.targets == std::vector<std::string>{"local"});
}

TEST_CASE("the shipped etc/sqlbak.yaml is valid and backs up nothing", "[config]") {
  const char* source_dir = ::getenv("SQLBAK_SOURCE_DIR");
  if (source_dir == nullptr || *source_dir == '\0') {
    FAIL("SQLBAK_SOURCE_DIR is not set; it must name the source tree so that etc/sqlbak.yaml can be found");
  }
  ScopedEnv no_credentials("CREDENTIALS_DIRECTORY", std::nullopt);
  std::string file = std::string(source_dir) + "/etc/sqlbak.yaml";
  ConfigLoadResult result = load_config(file);
  INFO(joined(result));
  REQUIRE(result.errors.empty());
  CHECK(result.config->databases.empty());
  REQUIRE(result.config->targets.contains("local"));
  CHECK(result.config->targets.at("local").path == "/var/backups/sqlbak");
  CHECK_FALSE(result.config->http.has_value());
}

TEST_CASE("calendar expressions are checked where they are written", "[config]") {
  CHECK(only_error(kLocalTarget + "defaults:\n  schedule: \"Mon..Fry 10:00\"\n") ==
        "x.yaml:4:13: calendar expression 'Mon..Fry 10:00': unknown weekday 'Fry'");
  CHECK(only_error(kLocalTarget + "databases:\n  - name: a\n    path: /a.db\n    rotate: \"25:00\"\n")
            .rfind("x.yaml:6:13: calendar expression '25:00'", 0) == 0);
  load_ok(kLocalTarget + "defaults:\n  schedule: \"Mon..Fri 22:30\"\n  rotate: weekly\n"
          "  verify_schedule: \"*-*-1 03:00\"\n");
}

// Found by fuzz_config: yaml-cpp 0.7's YAML::LoadAll never returns on a ','
// that starts no value (its parser reports one empty document after another
// without moving on), so the loader hung and grew until memory ran out.
TEST_CASE("a stray comma is a syntax error at its place, not a hang", "[config]") {
  CHECK(only_error(",") == "x.yaml:1:1: YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
  CHECK(only_error("\"a\",") == "x.yaml:1:4: YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
  CHECK(only_error("# settings\n[a], b\n") ==
        "x.yaml:2:4: YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
  CHECK(only_error("--- {workers: 2},\n") ==
        "x.yaml:1:17: YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
  // The fuzzer's find: the shipped configuration with a comment line broken.
  CHECK(only_error("# Schedules: calendar expressions\n \"Sun 01:00\", \"Mon..Fri 22:30\".\nworkers: 2\n") ==
        "x.yaml:2:13: YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
  // A second document is still that, whatever follows it.
  CHECK(only_error("workers: 2\n---\nworkers: 3\n---\n,\n") == "x.yaml:3:1: only one YAML document is allowed");
  CHECK(only_error("workers: 2\n---\n") == "x.yaml:3:1: only one YAML document is allowed");
  CHECK(load("").errors.empty());
  CHECK(load("# nothing\n").errors.empty());
  CHECK(load("---\nworkers: 2\n...\n").errors.empty());
}
