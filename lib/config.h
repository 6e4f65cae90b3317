// The sqlbak configuration: loading /etc/sqlbak/sqlbak.yaml into plain structs.
//
// Loading is strict: unknown keys, wrong types, bad durations, bad enum values,
// duplicate database names, databases naming unknown targets and unreadable
// secret files are all errors. Every error is reported (not only the first),
// each as "FILE:LINE:COLUMN: message" with 1-based line and column taken from
// yaml-cpp's marks.
//
// Per-database settings are resolved at load time: each DatabaseConfig holds
// the effective values (its own keys over `defaults:` over built-in defaults).
//
// Thread-safety: load_config() is reentrant; Config is a plain value.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/status.h"

namespace sqlbak {

enum class CompressionAlgorithm { kNone, kZstd, kGzip };
enum class VerifyMode { kNone, kQuick, kIntegrity };

const char* to_string(CompressionAlgorithm a);
const char* to_string(VerifyMode v);

struct CompressionSettings {
  CompressionAlgorithm algorithm = CompressionAlgorithm::kZstd;
  int level = 3;  // zstd: 1..19 (validated); gzip: 1..9; none: ignored
};

struct RetentionPolicy {
  int keep_last = 1;
  int keep_hourly = 0;
  int keep_daily = 7;
  int keep_weekly = 4;
  int keep_monthly = 12;
  int keep_yearly = 0;
  std::chrono::seconds keep_within{0};
};

struct TargetConfig {
  std::string name;
  std::string type;  // "local" | "s3"
  // local
  std::string path;
  // s3 (validated now, used by the S3 target)
  std::string endpoint, region, bucket, prefix;
  std::string access_key_id_file, secret_access_key_file;  // resolved paths
  std::string storage_class, sse, sse_kms_key_id;
};

struct DatabaseSettings {
  std::string schedule = "*-*-* 02:00:00";  // systemd calendar expression (checked by the scheduler)
  std::string rotate = "Sun 01:00";
  CompressionSettings compression;
  VerifyMode verify = VerifyMode::kIntegrity;
  int step_pages = 1024;  // >= 1
  RetentionPolicy retention;
  std::vector<std::string> targets{"local"};
  std::chrono::seconds max_age{48 * 3600};
  std::string verify_schedule = "weekly";
  int verify_latest = 3;
  std::chrono::milliseconds busy_timeout{5000};
};

struct DatabaseConfig {
  std::string name;  // [A-Za-z0-9_.-]+, unique; used in object names
  std::string path;  // absolute path of the SQLite file
  DatabaseSettings settings;
};

struct HttpConfig {
  std::string listen;      // "HOST:PORT"
  std::string token_file;  // resolved path, may be empty
};

struct EmailAlertConfig {
  std::string url, from, username, password_file;
  bool starttls = false;
  std::vector<std::string> to, on;
};

struct WebhookAlertConfig {
  std::string url, token_file;
  std::vector<std::string> on;
};

struct AlertsConfig {
  std::optional<EmailAlertConfig> email;
  std::optional<WebhookAlertConfig> webhook;
  std::chrono::seconds repeat_after{3600};
};

struct Config {
  std::string source_file;  // the file it was loaded from
  std::string socket = "/run/sqlbak/control.sock";
  std::string socket_group = "sqlbak";
  std::string state_dir = "/var/lib/sqlbak";
  int workers = 2;
  std::optional<HttpConfig> http;
  DatabaseSettings defaults;
  std::map<std::string, TargetConfig> targets;
  AlertsConfig alerts;
  std::vector<DatabaseConfig> databases;

  // REQUIRES: nothing. Returns nullptr when no database has that name.
  const DatabaseConfig* find_database(const std::string& name) const;
};

// One configuration problem, located in the file.
struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is not tied to a place
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "FILE:LINE:COLUMN: message"
};

struct ConfigLoadResult {
  std::optional<Config> config;     // set when errors is empty
  std::vector<ConfigError> errors;  // every problem found
  // Not errors: the configuration or a secret file it names is readable or
  // writable by other users (lib/file_permissions.h), each naming the file and
  // the chmod that fixes it. Callers log or print them.
  std::vector<std::string> warnings;
};

// Loads and validates FILE. A `*_file` key whose value is a relative name is
// resolved against $CREDENTIALS_DIRECTORY when that is set (systemd
// LoadCredential=), otherwise against the directory of FILE; the resolved file
// must be readable.
ConfigLoadResult load_config(const std::string& file);

// Same, from text (file is used only in messages and to resolve relative paths).
ConfigLoadResult load_config_from_string(const std::string& text, const std::string& file);

// A commented example configuration that load_config accepts.
std::string example_config();

}  // namespace sqlbak
