#include "lib/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string_view>

#include "lib/calendar.h"
#include "lib/duration.h"
#include "lib/file_permissions.h"

namespace sqlbak {

const char* to_string(CompressionAlgorithm a) {
  switch (a) {
    case CompressionAlgorithm::kNone: return "none";
    case CompressionAlgorithm::kZstd: return "zstd";
    case CompressionAlgorithm::kGzip: return "gzip";
  }
  return "unknown";
}

const char* to_string(VerifyMode v) {
  switch (v) {
    case VerifyMode::kNone: return "none";
    case VerifyMode::kQuick: return "quick";
    case VerifyMode::kIntegrity: return "integrity";
  }
  return "unknown";
}

const DatabaseConfig* Config::find_database(const std::string& name) const {
  for (const DatabaseConfig& db : databases) {
    if (db.name == name) return &db;
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

// A value in the file together with what messages call it.
struct Field {
  YAML::Node value;
  // Where errors about the value point. yaml-cpp places an empty value at the
  // start of the next token, often the next line, so an empty value is
  // located at its key instead.
  YAML::Mark mark;
  std::string path;  // "databases[0].compression.level"
};

// A key a mapping accepts and how its value is read.
struct KeySpec {
  std::string_view key;
  std::function<void(const Field&)> read;
};
using KeyTable = std::vector<KeySpec>;

template <typename Enum>
struct EnumName {
  std::string_view name;
  Enum value;
};

constexpr EnumName<CompressionAlgorithm> kCompressionNames[] = {
    {"zstd", CompressionAlgorithm::kZstd},
    {"gzip", CompressionAlgorithm::kGzip},
    {"none", CompressionAlgorithm::kNone},
};

constexpr EnumName<VerifyMode> kVerifyNames[] = {
    {"integrity", VerifyMode::kIntegrity},
    {"quick", VerifyMode::kQuick},
    {"none", VerifyMode::kNone},
};

constexpr std::string_view kAlertEvents[] = {"failure", "success", "health"};
// What an alert channel is sent when its `on:` is left out.
std::vector<std::string> default_alert_events() { return {"failure", "health"}; }

struct RetentionCount {
  std::string_view key;
  int RetentionPolicy::*count;
};

constexpr RetentionCount kRetentionCounts[] = {
    {"keep_last", &RetentionPolicy::keep_last},       {"keep_hourly", &RetentionPolicy::keep_hourly},
    {"keep_daily", &RetentionPolicy::keep_daily},     {"keep_weekly", &RetentionPolicy::keep_weekly},
    {"keep_monthly", &RetentionPolicy::keep_monthly}, {"keep_yearly", &RetentionPolicy::keep_yearly},
};

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// How a value that has the wrong type is described back to the user.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar:
      // A quoted "3" is a string in YAML; saying so explains the refusal.
      return node.Tag() == "!" ? "the quoted string " + in_quotes(node.Scalar()) : in_quotes(node.Scalar());
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

bool is_plain_scalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_valid_name(std::string_view name) {
  // Names become parts of object names and paths: "." and ".." would walk.
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return s.starts_with(p); });
}

class ConfigLoader {
 public:
  explicit ConfigLoader(std::string file);
  ConfigLoadResult load(const std::string& text);
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

 private:
  void error(const YAML::Mark& at, std::string message);
  void error(const Field& at, const std::string& message) { error(at.mark, message); }

  static Field child(const Field& parent, const YAML::Node& value, const YAML::Mark& key_mark,
                     const std::string& path);
  // Checks that FIELD is a mapping (an empty value counts as an empty one),
  // reports unknown and repeated keys, and hands each known key to its reader.
  // Returns the keys that were present.
  std::set<std::string, std::less<>> visit_map(const Field& field, const KeyTable& keys);
  // Reports each key of REQUIRED that PRESENT lacks, at FIELD.
  void require_keys(const Field& field, const std::set<std::string, std::less<>>& present,
                    const std::vector<std::string_view>& required, const std::string& what);

  // Typed readers: a wrong value is reported and leaves OUT unchanged.
  // They return whether OUT was set.
  bool read_string(const Field& f, std::string& out);
  bool read_nonempty_string(const Field& f, std::string& out);
  bool read_absolute_path(const Field& f, std::string& out);
  bool read_url(const Field& f, std::initializer_list<std::string_view> schemes, std::string& out);
  bool read_one_of(const Field& f, std::initializer_list<std::string_view> allowed, std::string& out);
  bool read_host_port(const Field& f, std::string& out);
  bool read_int(const Field& f, int min, int max, int& out);
  bool read_bool(const Field& f, bool& out);
  bool read_seconds(const Field& f, std::chrono::seconds min, std::chrono::seconds& out);
  bool read_milliseconds(const Field& f, std::chrono::milliseconds& out);
  bool read_string_list(const Field& f, std::vector<std::string>& out);
  bool read_secret_file(const Field& f, std::string& out);
  template <typename Enum, size_t N>
  bool read_enum(const Field& f, const EnumName<Enum> (&names)[N], Enum& out);

  void read_targets(const Field& f);
  void read_target(const Field& f, const std::string& name);
  // The keys shared by `defaults:` and each database. TARGETS_GIVEN is set
  // when the mapping names its own targets.
  KeyTable settings_keys(DatabaseSettings& settings, bool& targets_given);
  void read_compression(const Field& f, CompressionSettings& out);
  void read_retention(const Field& f, RetentionPolicy& out);
  void read_target_names(const Field& f, std::vector<std::string>& out);
  void read_databases(const Field& f);
  void read_database(const Field& f);
  void read_database_name(const Field& f, std::string& out);
  void read_http(const Field& f);
  void read_alerts(const Field& f);
  void read_email_alert(const Field& f);
  void read_webhook_alert(const Field& f);
  void read_alert_events(const Field& f, std::vector<std::string>& out);

  std::string file_;
  std::filesystem::path secrets_dir_;
  Config config_;
  std::vector<ConfigError> errors_;
  bool defaults_targets_given_ = false;
  std::vector<std::string> warnings_;  // see ConfigLoadResult::warnings
  std::map<std::string, int> database_name_lines_;  // name -> 1-based line of its first definition
};

ConfigLoader::ConfigLoader(std::string file) : file_(std::move(file)) {
  config_.source_file = file_;
  const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
  if (credentials != nullptr && *credentials != '\0') {
    secrets_dir_ = credentials;
  } else {
    std::filesystem::path dir = std::filesystem::path(file_).parent_path();
    if (dir.empty()) dir = ".";
    // Absolute, so that a later chdir (systemd WorkingDirectory=) cannot
    // change what a relative secret name means.
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::absolute(dir, ec);
    secrets_dir_ = ec ? dir : absolute.lexically_normal();
  }
}

void ConfigLoader::error(const YAML::Mark& at, std::string message) {
  ConfigError e;
  e.file = file_;
  if (!at.is_null()) {
    e.line = at.line + 1;
    e.column = at.column + 1;
  }
  e.message = std::move(message);
  errors_.push_back(std::move(e));
}

Field ConfigLoader::child(const Field& parent, const YAML::Node& value, const YAML::Mark& key_mark,
                          const std::string& path) {
  YAML::Mark mark = value.IsNull() || value.Mark().is_null() ? key_mark : value.Mark();
  if (mark.is_null()) mark = parent.mark;
  return Field{value, mark, path};
}

std::set<std::string, std::less<>> ConfigLoader::visit_map(const Field& field, const KeyTable& keys) {
  std::set<std::string, std::less<>> present;
  if (field.value.IsNull()) return present;
  if (!field.value.IsMap()) {
    error(field, in_quotes(field.path) + " must be a mapping, got " + describe(field.value));
    return present;
  }
  const std::string where = field.path.empty() ? "at top level" : "in " + field.path;
  std::map<std::string, int> first_line;
  for (const auto& entry : field.value) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      error(key.Mark(), "keys must be names, got " + describe(key) + " " + where);
      continue;
    }
    const std::string& name = key.Scalar();
    if (auto [it, inserted] = first_line.emplace(name, key.Mark().line + 1); !inserted) {
      error(key.Mark(), "duplicate key " + in_quotes(name) + " " + where + " (first at line " +
                            std::to_string(it->second) + ")");
      continue;
    }
    auto spec = std::find_if(keys.begin(), keys.end(), [&](const KeySpec& k) { return k.key == name; });
    if (spec == keys.end()) {
      std::string message = "unknown key " + in_quotes(name) + " " + where;
      for (const KeySpec& k : keys) {
        if (edit_distance(name, k.key) <= std::max<size_t>(1, k.key.size() / 4)) {
          message += "; did you mean " + in_quotes(k.key) + "?";
          break;
        }
      }
      error(key.Mark(), message);
      continue;
    }
    present.insert(name);
    std::string path = field.path.empty() ? name : field.path + "." + name;
    spec->read(child(field, entry.second, key.Mark(), path));
  }
  return present;
}

void ConfigLoader::require_keys(const Field& field, const std::set<std::string, std::less<>>& present,
                                const std::vector<std::string_view>& required, const std::string& what) {
  // A section that is not a mapping at all was already reported.
  if (!field.value.IsMap() && !field.value.IsNull()) return;
  for (std::string_view key : required) {
    if (!present.contains(key)) error(field, what + " needs " + in_quotes(key));
  }
}

bool ConfigLoader::read_string(const Field& f, std::string& out) {
  if (!f.value.IsScalar()) {
    error(f, in_quotes(f.path) + " must be a string, got " + describe(f.value));
    return false;
  }
  out = f.value.Scalar();
  return true;
}

bool ConfigLoader::read_nonempty_string(const Field& f, std::string& out) {
  std::string value;
  if (!read_string(f, value)) return false;
  if (value.empty()) {
    error(f, in_quotes(f.path) + " must not be empty");
    return false;
  }
  out = std::move(value);
  return true;
}

bool ConfigLoader::read_absolute_path(const Field& f, std::string& out) {
  std::string value;
  if (!read_nonempty_string(f, value)) return false;
  if (value.front() != '/') {
    error(f, in_quotes(f.path) + " must be an absolute path, got " + in_quotes(value));
    return false;
  }
  out = std::move(value);
  return true;
}

bool ConfigLoader::read_url(const Field& f, std::initializer_list<std::string_view> schemes,
                            std::string& out) {
  std::string value;
  if (!read_nonempty_string(f, value)) return false;
  if (!starts_with_any(value, schemes)) {
    std::string expected;
    for (std::string_view s : schemes) expected += (expected.empty() ? "" : " or ") + std::string(s);
    error(f, in_quotes(f.path) + " must start with " + expected + ", got " + in_quotes(value));
    return false;
  }
  out = std::move(value);
  return true;
}

bool ConfigLoader::read_one_of(const Field& f, std::initializer_list<std::string_view> allowed,
                               std::string& out) {
  std::string value;
  if (!read_nonempty_string(f, value)) return false;
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    std::string expected;
    for (std::string_view a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
    error(f, in_quotes(f.path) + " must be one of " + expected + ", got " + in_quotes(value));
    return false;
  }
  out = std::move(value);
  return true;
}

bool ConfigLoader::read_host_port(const Field& f, std::string& out) {
  std::string value;
  if (!read_nonempty_string(f, value)) return false;
  // The host may itself hold colons ("[::1]:9469"); the port follows the last.
  size_t colon = value.rfind(':');
  int port = 0;
  bool valid = colon != std::string::npos && colon > 0;
  if (valid) {
    const char* first = value.data() + colon + 1;
    const char* last = value.data() + value.size();
    auto [end, ec] = std::from_chars(first, last, port);
    valid = ec == std::errc() && end == last && port >= 1 && port <= 65535;
  }
  if (!valid) {
    error(f, in_quotes(f.path) + " must be HOST:PORT (e.g. 127.0.0.1:9469), got " + in_quotes(value));
    return false;
  }
  out = std::move(value);
  return true;
}

bool ConfigLoader::read_int(const Field& f, int min, int max, int& out) {
  int value = 0;
  bool parsed = false;
  if (is_plain_scalar(f.value)) {
    const std::string& text = f.value.Scalar();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    parsed = ec == std::errc() && end == text.data() + text.size();
  }
  if (!parsed) {
    error(f, in_quotes(f.path) + " must be an integer, got " + describe(f.value));
    return false;
  }
  if (value < min || value > max) {
    std::string range = max == INT_MAX ? "at least " + std::to_string(min)
                                       : "between " + std::to_string(min) + " and " + std::to_string(max);
    error(f, in_quotes(f.path) + " must be " + range + ", got " + std::to_string(value));
    return false;
  }
  out = value;
  return true;
}

bool ConfigLoader::read_bool(const Field& f, bool& out) {
  bool value = false;
  if (!is_plain_scalar(f.value) || !YAML::convert<bool>::decode(f.value, value)) {
    error(f, in_quotes(f.path) + " must be true or false, got " + describe(f.value));
    return false;
  }
  out = value;
  return true;
}

bool ConfigLoader::read_seconds(const Field& f, std::chrono::seconds min, std::chrono::seconds& out) {
  std::string text;
  if (!read_string(f, text)) return false;
  Result<std::chrono::seconds> span = parse_duration(text);
  if (!span.ok()) {
    error(f, in_quotes(f.path) + ": " + span.status().message() + " (write e.g. 90s, 30min, 48h, 7d)");
    return false;
  }
  if (*span < min) {
    error(f, in_quotes(f.path) + " must be at least " + format_duration(min) + ", got " + in_quotes(text));
    return false;
  }
  out = *span;
  return true;
}

bool ConfigLoader::read_milliseconds(const Field& f, std::chrono::milliseconds& out) {
  std::string text;
  if (!read_string(f, text)) return false;
  Result<std::chrono::milliseconds> span = parse_duration_ms(text);
  if (!span.ok()) {
    error(f, in_quotes(f.path) + ": " + span.status().message() + " (write e.g. 250ms, 5s)");
    return false;
  }
  out = *span;
  return true;
}

bool ConfigLoader::read_string_list(const Field& f, std::vector<std::string>& out) {
  if (!f.value.IsSequence()) {
    error(f, in_quotes(f.path) + " must be a list, got " + describe(f.value));
    return false;
  }
  std::vector<std::string> values;
  bool all_read = true;
  for (size_t i = 0; i < f.value.size(); ++i) {
    std::string value;
    if (read_nonempty_string(child(f, f.value[i], f.mark, f.path + "[" + std::to_string(i) + "]"), value)) {
      values.push_back(std::move(value));
    } else {
      all_read = false;
    }
  }
  if (all_read) out = std::move(values);
  return all_read;
}

bool ConfigLoader::read_secret_file(const Field& f, std::string& out) {
  std::string name;
  if (!read_nonempty_string(f, name)) return false;
  std::filesystem::path resolved = name;
  if (resolved.is_relative()) resolved = secrets_dir_ / resolved;
  // Opened rather than access()ed: the daemon reads it with its effective
  // credentials, and a directory would pass access() too.
  int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    error(f, in_quotes(f.path) + ": cannot read " + in_quotes(resolved.string()) + ": " + std::strerror(err));
    return false;
  }
  struct stat st {};
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) {
    error(f, in_quotes(f.path) + ": " + in_quotes(resolved.string()) + " is not a regular file");
    return false;
  }
  if (auto w = check_file_permissions(resolved.string(), "secret file (" + f.path + ")")) warnings_.push_back(*w);
  out = resolved.string();
  return true;
}

template <typename Enum, size_t N>
bool ConfigLoader::read_enum(const Field& f, const EnumName<Enum> (&names)[N], Enum& out) {
  std::string text;
  if (f.value.IsScalar()) text = f.value.Scalar();
  for (const EnumName<Enum>& n : names) {
    if (f.value.IsScalar() && n.name == text) {
      out = n.value;
      return true;
    }
  }
  std::string expected;
  for (const EnumName<Enum>& n : names) expected += (expected.empty() ? "" : ", ") + std::string(n.name);
  error(f, in_quotes(f.path) + " must be one of " + expected + ", got " + describe(f.value));
  return false;
}

void ConfigLoader::read_targets(const Field& f) {
  if (f.value.IsNull()) return;
  if (!f.value.IsMap()) {
    error(f, "'targets' must be a mapping of target names to targets, got " + describe(f.value));
    return;
  }
  for (const auto& entry : f.value) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      error(key.Mark(), "target names must be strings, got " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!is_valid_name(name)) {
      error(key.Mark(), "target name " + in_quotes(name) + " must match [A-Za-z0-9_.-]+");
      continue;
    }
    if (config_.targets.contains(name)) {
      error(key.Mark(), "duplicate target " + in_quotes(name));
      continue;
    }
    read_target(child(f, entry.second, key.Mark(), "targets." + name), name);
  }
}

void ConfigLoader::read_target(const Field& f, const std::string& name) {
  // Recorded even when invalid, so that databases naming it are not also
  // reported as naming an unknown target.
  TargetConfig& target = config_.targets[name];
  target.name = name;
  const std::string what = "target " + in_quotes(name);
  if (!f.value.IsMap()) {
    error(f, what + " must be a mapping with a 'type' (local or s3), got " + describe(f.value));
    return;
  }

  // The type decides which other keys are allowed, so it is read first.
  Field type_field;
  bool has_type = false;
  for (const auto& entry : f.value) {
    if (entry.first.IsScalar() && entry.first.Scalar() == "type") {
      type_field = child(f, entry.second, entry.first.Mark(), f.path + ".type");
      has_type = true;
    }
  }
  if (!has_type) {
    error(f, what + " needs 'type: local' or 'type: s3'");
    return;
  }
  if (!read_string(type_field, target.type)) return;

  KeyTable keys = {{"type", [](const Field&) {}}};
  std::vector<std::string_view> required;
  if (target.type == "local") {
    keys.push_back({"path", [&](const Field& v) { read_absolute_path(v, target.path); }});
    required = {"path"};
  } else if (target.type == "s3") {
    auto text = [this](std::string& out) {
      return [this, &out](const Field& v) { read_nonempty_string(v, out); };
    };
    auto secret = [this](std::string& out) {
      return [this, &out](const Field& v) { read_secret_file(v, out); };
    };
    keys.insert(keys.end(), {
        {"endpoint", [&](const Field& v) { read_url(v, {"https://", "http://"}, target.endpoint); }},
        {"region", text(target.region)},
        {"bucket", text(target.bucket)},
        {"prefix", [&](const Field& v) { read_string(v, target.prefix); }},
        {"access_key_id_file", secret(target.access_key_id_file)},
        {"secret_access_key_file", secret(target.secret_access_key_file)},
        {"storage_class", text(target.storage_class)},
        {"sse", [&](const Field& v) { read_one_of(v, {"AES256", "aws:kms"}, target.sse); }},
        {"sse_kms_key_id", text(target.sse_kms_key_id)},
    });
    required = {"endpoint", "region", "bucket", "access_key_id_file", "secret_access_key_file"};
  } else {
    error(type_field, in_quotes(type_field.path) + " must be local or s3, got " + in_quotes(target.type));
    return;
  }
  auto present = visit_map(f, keys);
  require_keys(f, present, required, what + " (" + target.type + ")");
  if (present.contains("sse_kms_key_id") && target.sse != "aws:kms") {
    error(f, what + ": 'sse_kms_key_id' needs 'sse: aws:kms'");
  }
}

KeyTable ConfigLoader::settings_keys(DatabaseSettings& s, bool& targets_given) {
  auto calendar = [this](std::string& out) {
    // Checked with the scheduler's own parser, so that a bad expression is a
    // config error with its line and column, not a surprise at run time.
    return [this, &out](const Field& v) {
      if (!read_nonempty_string(v, out)) return;
      auto spec = parse_calendar(out);
      if (!spec.ok()) error(v, spec.status().message());
    };
  };
  return {
      {"schedule", calendar(s.schedule)},
      {"rotate", calendar(s.rotate)},
      {"compression", [this, &s](const Field& v) { read_compression(v, s.compression); }},
      {"verify", [this, &s](const Field& v) { read_enum(v, kVerifyNames, s.verify); }},
      {"step_pages", [this, &s](const Field& v) { read_int(v, 1, INT_MAX, s.step_pages); }},
      {"retention", [this, &s](const Field& v) { read_retention(v, s.retention); }},
      {"targets",
       [this, &s, &targets_given](const Field& v) {
         targets_given = true;
         read_target_names(v, s.targets);
       }},
      {"max_age", [this, &s](const Field& v) { read_seconds(v, std::chrono::seconds(1), s.max_age); }},
      {"verify_schedule", calendar(s.verify_schedule)},
      {"verify_latest", [this, &s](const Field& v) { read_int(v, 0, INT_MAX, s.verify_latest); }},
      {"busy_timeout", [this, &s](const Field& v) { read_milliseconds(v, s.busy_timeout); }},
  };
}

void ConfigLoader::read_compression(const Field& f, CompressionSettings& out) {
  Field level_field;
  bool level_ok = true;
  const KeyTable keys = {
      {"algorithm", [&](const Field& v) { read_enum(v, kCompressionNames, out.algorithm); }},
      {"level", [&](const Field& v) {
         level_field = v;
         level_ok = read_int(v, INT_MIN, INT_MAX, out.level);
       }},
  };
  auto present = visit_map(f, keys);
  if (!level_ok || out.algorithm == CompressionAlgorithm::kNone) return;
  // Checked on the effective pair: switching a database to gzip must not
  // silently keep a zstd level inherited from `defaults:`.
  int max_level = out.algorithm == CompressionAlgorithm::kZstd ? 19 : 9;
  if (out.level >= 1 && out.level <= max_level) return;
  std::string message = in_quotes(f.path + ".level") + " must be between 1 and " + std::to_string(max_level) +
                        " for " + to_string(out.algorithm) + ", got " + std::to_string(out.level);
  if (present.contains("level")) {
    error(level_field, message);
  } else {
    error(f, message + " (inherited; set 'level' here)");
  }
}

void ConfigLoader::read_retention(const Field& f, RetentionPolicy& out) {
  KeyTable keys;
  for (const RetentionCount& count : kRetentionCounts) {
    keys.push_back({count.key, [this, &out, &count](const Field& v) {
                      read_int(v, 0, INT_MAX, out.*count.count);
                    }});
  }
  keys.push_back({"keep_within", [this, &out](const Field& v) {
                    read_seconds(v, std::chrono::seconds(0), out.keep_within);
                  }});
  visit_map(f, keys);
}

void ConfigLoader::read_target_names(const Field& f, std::vector<std::string>& out) {
  std::vector<std::string> names;
  if (!read_string_list(f, names)) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    Field item = child(f, f.value[i], f.mark, f.path + "[" + std::to_string(i) + "]");
    if (!config_.targets.contains(names[i])) {
      error(item, in_quotes(f.path) + " names target " + in_quotes(names[i]) +
                      ", which is not defined under 'targets:'");
    }
    if (!seen.insert(names[i]).second) {
      error(item, "target " + in_quotes(names[i]) + " is listed twice in " + in_quotes(f.path));
    }
  }
  // Kept even when a name is unknown: that was reported once, and an empty
  // list would add a second, misleading "has no targets".
  out = std::move(names);
}

void ConfigLoader::read_databases(const Field& f) {
  if (f.value.IsNull()) return;
  if (!f.value.IsSequence()) {
    error(f, "'databases' must be a list, got " + describe(f.value));
    return;
  }
  for (size_t i = 0; i < f.value.size(); ++i) {
    read_database(child(f, f.value[i], f.mark, "databases[" + std::to_string(i) + "]"));
  }
}

void ConfigLoader::read_database_name(const Field& f, std::string& out) {
  if (!read_nonempty_string(f, out)) return;
  if (!is_valid_name(out)) {
    error(f, "database name " + in_quotes(out) + " must match [A-Za-z0-9_.-]+");
    return;
  }
  auto [first, inserted] = database_name_lines_.emplace(out, f.mark.line + 1);
  if (!inserted) {
    error(f, "duplicate database name " + in_quotes(out) + " (first defined at line " +
                 std::to_string(first->second) + ")");
  }
}

void ConfigLoader::read_database(const Field& f) {
  if (!f.value.IsMap()) {
    error(f, in_quotes(f.path) + " must be a mapping with 'name' and 'path', got " + describe(f.value));
    return;
  }
  DatabaseConfig db;
  db.settings = config_.defaults;
  bool targets_given = false;
  KeyTable keys = settings_keys(db.settings, targets_given);
  keys.push_back({"name", [&](const Field& v) { read_database_name(v, db.name); }});
  keys.push_back({"path", [&](const Field& v) { read_absolute_path(v, db.path); }});
  auto present = visit_map(f, keys);
  require_keys(f, present, {"name", "path"}, in_quotes(f.path));

  const std::string what = db.name.empty() ? in_quotes(f.path) : "database " + in_quotes(db.name);
  if (targets_given) {
    if (db.settings.targets.empty()) error(f, what + " has no targets");
  } else if (!defaults_targets_given_ && !config_.targets.contains("local")) {
    error(f, what + " has no targets: define a target named 'local', "
                    "or set 'targets' here or under 'defaults:'");
  } else if (db.settings.targets.empty()) {
    error(f, what + " has no targets ('defaults.targets' is empty)");
  }
  config_.databases.push_back(std::move(db));
}

void ConfigLoader::read_http(const Field& f) {
  // An empty `http:` (everything under it commented out) leaves HTTP off.
  if (f.value.IsNull()) return;
  HttpConfig http;
  http.listen = "127.0.0.1:9469";
  const KeyTable keys = {
      {"listen", [&](const Field& v) { read_host_port(v, http.listen); }},
      {"token_file", [&](const Field& v) { read_secret_file(v, http.token_file); }},
  };
  visit_map(f, keys);
  config_.http = std::move(http);
}

void ConfigLoader::read_alert_events(const Field& f, std::vector<std::string>& out) {
  std::vector<std::string> events;
  if (!read_string_list(f, events)) return;
  for (size_t i = 0; i < events.size(); ++i) {
    if (std::find(std::begin(kAlertEvents), std::end(kAlertEvents), events[i]) == std::end(kAlertEvents)) {
      error(child(f, f.value[i], f.mark, ""),
            in_quotes(f.path) + " may contain failure, success and health, got " + in_quotes(events[i]));
    }
  }
  out = std::move(events);
}

void ConfigLoader::read_email_alert(const Field& f) {
  if (f.value.IsNull()) return;
  EmailAlertConfig email;
  email.on = default_alert_events();
  const KeyTable keys = {
      {"url", [&](const Field& v) { read_url(v, {"smtp://", "smtps://"}, email.url); }},
      {"starttls", [&](const Field& v) { read_bool(v, email.starttls); }},
      {"from", [&](const Field& v) { read_nonempty_string(v, email.from); }},
      {"to", [&](const Field& v) {
         if (read_string_list(v, email.to) && email.to.empty()) {
           error(v, in_quotes(v.path) + " needs at least one address");
         }
       }},
      {"username", [&](const Field& v) { read_string(v, email.username); }},
      {"password_file", [&](const Field& v) { read_secret_file(v, email.password_file); }},
      {"on", [&](const Field& v) { read_alert_events(v, email.on); }},
  };
  auto present = visit_map(f, keys);
  require_keys(f, present, {"url", "from", "to"}, in_quotes(f.path));
  config_.alerts.email = std::move(email);
}

void ConfigLoader::read_webhook_alert(const Field& f) {
  if (f.value.IsNull()) return;
  WebhookAlertConfig webhook;
  webhook.on = default_alert_events();
  const KeyTable keys = {
      {"url", [&](const Field& v) { read_url(v, {"https://", "http://"}, webhook.url); }},
      {"token_file", [&](const Field& v) { read_secret_file(v, webhook.token_file); }},
      {"on", [&](const Field& v) { read_alert_events(v, webhook.on); }},
  };
  auto present = visit_map(f, keys);
  require_keys(f, present, {"url"}, in_quotes(f.path));
  config_.alerts.webhook = std::move(webhook);
}

void ConfigLoader::read_alerts(const Field& f) {
  const KeyTable keys = {
      {"email", [this](const Field& v) { read_email_alert(v); }},
      {"webhook", [this](const Field& v) { read_webhook_alert(v); }},
      {"repeat_after", [this](const Field& v) {
         read_seconds(v, std::chrono::seconds(0), config_.alerts.repeat_after);
       }},
  };
  visit_map(f, keys);
}

// Records where each document of a YAML stream starts and where its root
// node is, and nothing else.
class DocumentPlaces : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark start;  // the document's first token
    YAML::Mark root;   // its root node (what YAML::Node::Mark() gives)
    bool has_root = false;
  };
  std::vector<Document> documents;

  void OnDocumentStart(const YAML::Mark& mark) override { documents.push_back({mark, mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (documents.empty() || documents.back().has_root) return;
    documents.back().root = mark;
    documents.back().has_root = true;
  }
};

ConfigLoadResult ConfigLoader::load(const std::string& text) {
  // Not YAML::LoadAll(): in yaml-cpp 0.7 it never returns on text such as ","
  // or "\"a\",". Its parser meets a token that starts no node, reports an
  // empty document without consuming the token, and does so again on every
  // call; LoadAll collects these documents until memory runs out
  // (jbeder/yaml-cpp#1040, fixed after 0.8.0). So the documents are counted
  // with the parser itself, stopping at the third, and only a text of one
  // document is loaded.
  YAML::Node root;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentPlaces places;
    while (places.documents.size() < 3 && parser.HandleNextDocument(places)) {
    }
    const std::vector<DocumentPlaces::Document>& docs = places.documents;
    // Two documents that start at the same place: the first consumed nothing,
    // so the parser is stuck on the token there.
    const DocumentPlaces::Document* stuck = nullptr;
    for (size_t i = 0; i + 1 < docs.size() && stuck == nullptr; ++i)
      if (docs[i].start.pos == docs[i + 1].start.pos) stuck = &docs[i];
    if (stuck != nullptr) {
      error(stuck->start, "YAML syntax error: unexpected token (a ',' outside [ ] or { }?)");
    } else if (docs.size() > 1) {
      error(docs[1].root, "only one YAML document is allowed");
    } else {
      root = YAML::Load(text);
    }
  } catch (const YAML::ParserException& e) {
    error(e.mark, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    error(e.mark, "cannot parse YAML: " + e.msg);
  }

  if (errors_.empty()) {
    try {
      Field root_field{root, root.Mark(), ""};
      // Sections refer to each other (databases name targets and inherit
      // defaults), so they are collected first and read in dependency order.
      Field targets, defaults, databases, http, alerts;
      auto keep = [](Field& slot) { return [&slot](const Field& v) { slot = v; }; };
      if (!root.IsNull() && !root.IsMap()) {
        error(root_field, "the configuration must be a mapping of keys (socket, targets, databases, ...), "
                          "got " + describe(root));
        root_field.value = YAML::Node();
      }
      const KeyTable top_level_keys = {
          {"socket", [this](const Field& v) { read_absolute_path(v, config_.socket); }},
          {"socket_group", [this](const Field& v) { read_nonempty_string(v, config_.socket_group); }},
          {"state_dir", [this](const Field& v) { read_absolute_path(v, config_.state_dir); }},
          {"workers", [this](const Field& v) { read_int(v, 1, INT_MAX, config_.workers); }},
          {"http", keep(http)},
          {"defaults", keep(defaults)},
          {"targets", keep(targets)},
          {"alerts", keep(alerts)},
          {"databases", keep(databases)},
      };
      visit_map(root_field, top_level_keys);
      read_targets(targets);
      visit_map(defaults, settings_keys(config_.defaults, defaults_targets_given_));
      read_databases(databases);
      read_http(http);
      read_alerts(alerts);
    } catch (const YAML::Exception& e) {
      // A yaml-cpp call that should not throw did; report it rather than let
      // it escape.
      error(e.mark, "internal error while reading the configuration: " + e.msg);
    } catch (const std::exception& e) {
      error(YAML::Mark::null_mark(),
            std::string("internal error while reading the configuration: ") + e.what());
    }
  }

  // Document order reads best; errors without a place go last.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    auto key = [](const ConfigError& e) { return std::pair(e.line == 0 ? INT_MAX : e.line, e.column); };
    return key(a) < key(b);
  });
  ConfigLoadResult result;
  result.errors = std::move(errors_);
  if (result.errors.empty()) result.config = std::move(config_);
  return result;
}

}  // namespace

ConfigLoadResult load_config_from_string(const std::string& text, const std::string& file) {
  ConfigLoader loader(file);
  ConfigLoadResult result = loader.load(text);
  result.warnings = loader.take_warnings();
  return result;
}

ConfigLoadResult load_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    int err = errno;
    ConfigLoadResult result;
    result.errors.push_back(ConfigError{file, 0, 0, std::string("cannot read: ") + std::strerror(err)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    ConfigLoadResult result;
    result.errors.push_back(ConfigError{file, 0, 0, "cannot read: I/O error"});
    return result;
  }
  ConfigLoadResult result = load_config_from_string(text.str(), file);
  if (auto w = check_file_permissions(file, "configuration file")) result.warnings.insert(result.warnings.begin(), *w);
  return result;
}

std::string example_config() {
  return R"(# sqlbak configuration (/etc/sqlbak/sqlbak.yaml).
# Durations: 90s, 30min, 48h, 7d, 1w. Schedules: systemd calendar expressions
# (see systemd.time(7)): daily, hourly, "Sun 01:00", "Mon..Fri 22:30".
# Check a change with: sqlbakd --check-config -c FILE

socket: /run/sqlbak/control.sock
socket_group: sqlbak          # members may use the socket; everyone else is refused
state_dir: /var/lib/sqlbak    # the catalog: backup history and metrics
workers: 2                    # worker pool for backup steps, compression, uploads

http:                         # dashboard, JSON API, /metrics; remove to turn off
  listen: 127.0.0.1:9469
  # token_file: http.token    # optional bearer token; relative names are
                              # looked up in $CREDENTIALS_DIRECTORY

defaults:                     # every key here may be overridden per database
  schedule: "*-*-* 02:00:00"
  rotate: "Sun 01:00"         # when retention runs
  compression: {algorithm: zstd, level: 3}   # zstd (1..19) | gzip (1..9) | none
  verify: integrity           # integrity | quick | none
  step_pages: 1024            # pages per online-backup step
  retention: {keep_last: 1, keep_hourly: 0, keep_daily: 7, keep_weekly: 4,
              keep_monthly: 12, keep_yearly: 0, keep_within: 0s}
  targets: [local]
  max_age: 48h                # health: older last backup is WARNING, twice that CRITICAL
  verify_schedule: weekly     # scheduled restore test of the newest backups
  verify_latest: 3
  busy_timeout: 5s            # how long to wait for a locked database

targets:
  local: {type: local, path: /var/backups/sqlbak}
  # offsite:
  #   type: s3
  #   endpoint: "https://s3.eu-west-1.amazonaws.com"
  #   region: eu-west-1
  #   bucket: my-backups
  #   prefix: sqlbak/
  #   access_key_id_file: s3.key-id          # files holding the credentials
  #   secret_access_key_file: s3.secret-key
  #   storage_class: STANDARD_IA
  #   sse: AES256

# alerts:
#   email:
#     url: "smtp://mail.example.com:587"
#     starttls: true
#     from: sqlbak@example.com
#     to: [ops@example.com]
#     username: sqlbak
#     password_file: smtp.password
#     on: [failure, health]                  # failure | success | health
#   webhook: {url: "https://hooks.example.com/sqlbak", on: [failure, health]}
#   repeat_after: 1h          # identical alerts within this window are folded into one

databases:
  - name: shop                # [A-Za-z0-9_.-]+, used in object names
    path: /srv/app/shop.db
  # - name: crm
  #   path: /srv/app/crm.db
  #   schedule: hourly
  #   targets: [local, offsite]
  #   retention: {keep_hourly: 24}   # other retention keys come from defaults
)";
}

}  // namespace sqlbak
