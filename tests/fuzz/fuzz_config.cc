// Fuzzes the configuration loader (lib/config.h): any text, YAML or not, must
// come back either as a Config or as located errors, never as a crash, a leak,
// a hang or an escaped exception.
//
// Checked on every input:
//  - exactly one of `config` and `errors` is set;
//  - every error has a message, and a line/column that are both 0 (no place)
//    or both >= 1, with the line inside the text (+1: yaml-cpp may point just
//    past the last line);
//  - errors come in document order, placeless ones last (as config.h says);
//  - a Config that loads has what the loader promises: unique valid database
//    names, absolute paths, databases naming only defined targets.
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "lib/config.h"

namespace {

// Relative *_file names resolve here: a directory that does not exist, so that
// the outcome does not depend on what lies next to the fuzzer.
constexpr const char* kConfigFile = "/nonexistent/sqlbak-fuzz/sqlbak.yaml";

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

// An upper bound of the lines yaml-cpp can count: every byte that starts a
// line break (\n, \r, NEL, and the first byte of U+2028/U+2029) counts.
int count_lines(const std::string& text) {
  int lines = 1;
  for (char c : text) lines += c == '\n' || c == '\r' || c == '\x85' || c == '\xe2';
  return lines;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  }
  return true;
}

std::string describe(const sqlbak::ConfigLoadResult& r) {
  std::string out = r.config ? "config" : "no config";
  for (const auto& e : r.errors) out += "\n  " + e.to_string();
  return out;
}

void check_config(const sqlbak::Config& c) {
  std::set<std::string> names;
  for (const sqlbak::DatabaseConfig& db : c.databases) {
    if (!valid_name(db.name)) fail("accepted database name", db.name);
    if (!names.insert(db.name).second) fail("accepted duplicate database name", db.name);
    if (db.path.empty() || db.path.front() != '/') fail("accepted relative database path", db.path);
    if (db.settings.targets.empty()) fail("accepted database without targets", db.name);
    for (const std::string& t : db.settings.targets)
      if (!c.targets.contains(t)) fail("accepted unknown target", db.name + " -> " + t);
    if (db.settings.step_pages < 1) fail("accepted step_pages", std::to_string(db.settings.step_pages));
    if (c.find_database(db.name) == nullptr) fail("find_database", db.name);
  }
  for (const auto& [name, t] : c.targets) {
    if (!valid_name(name)) fail("accepted target name", name);
    if (t.type != "local" && t.type != "s3") fail("accepted target type", t.type);
  }
  if (c.workers < 1) fail("accepted workers", std::to_string(c.workers));
  if (c.socket.empty() || c.socket.front() != '/') fail("accepted socket", c.socket);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The loader prefers $CREDENTIALS_DIRECTORY over the config's directory.
  ::unsetenv("CREDENTIALS_DIRECTORY");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const sqlbak::ConfigLoadResult r = sqlbak::load_config_from_string(text, kConfigFile);

  if (r.config.has_value() == !r.errors.empty()) fail("config xor errors", describe(r));
  const int lines = count_lines(text);
  std::pair<int, int> previous{0, 0};
  for (const sqlbak::ConfigError& e : r.errors) {
    if (e.message.empty()) fail("empty error message", e.to_string());
    if (e.file != kConfigFile) fail("error names another file", e.to_string());
    const bool placeless = e.line == 0 && e.column == 0;
    if (!placeless && (e.line < 1 || e.column < 1 || e.line > lines + 1))
      fail("error place", e.to_string() + " (text has " + std::to_string(lines) + " lines)");
    const std::pair<int, int> key{e.line == 0 ? INT_MAX : e.line, e.column};
    if (key < previous) fail("errors out of document order", describe(r));
    previous = key;
    (void)e.to_string();
  }
  if (r.config) check_config(*r.config);
  return 0;
}
