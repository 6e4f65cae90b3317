#include "lib/alert.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "lib/timefmt.h"

namespace sqlbak {
namespace {

constexpr size_t kMaxHeaderColumns = 78;
constexpr size_t kSubjectErrorChars = 100;

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// TEXT cut to at most MAX bytes on a UTF-8 character boundary, with "..." when cut.
std::string truncate_utf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && is_continuation(static_cast<unsigned char>(text[end]))) --end;
  return std::string(text.substr(0, end)) + "...";
}

std::string first_line(std::string_view text) {
  const size_t nl = text.find('\n');
  std::string line(text.substr(0, nl));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// One line of text: control characters (line breaks included) become spaces.
std::string one_line(std::string_view text) {
  std::string out = valid_utf8(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = ' ';
  }
  return out;
}

// Text for a body: valid UTF-8, "\n" line ends, no other control characters but tabs.
std::string body_text(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') continue;
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7F) c = ' ';
    out += c;
  }
  return out;
}

bool shell_safe(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/' || c == ':' || c == '@' || c == '=' || c == '+' || c == ',';
  });
}

std::string shell_quote(std::string_view s) {
  if (shell_safe(s)) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string quoted_line(std::string_view s) { return "'" + one_line(s) + "'"; }

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += '=';
  }
  return out;
}

// "of database 'shop' on target 'local'" (parts left out when empty).
std::string object_phrase(const AlertEvent& e) {
  std::string s;
  if (!e.database.empty()) s += " of database " + quoted_line(e.database);
  if (!e.target.empty()) s += " on target " + quoted_line(e.target);
  return s;
}

std::string host_of(const AlertEvent& e) { return e.host.empty() ? "(unknown host)" : one_line(e.host); }

std::string job_of(const AlertEvent& e) { return e.job.empty() ? "job" : one_line(e.job); }

// The sentence saying what happened.
std::string what_happened(const AlertEvent& e) {
  const std::string host = host_of(e);
  switch (e.kind) {
    case AlertKind::kFailure:
      return "The " + job_of(e) + object_phrase(e) + " failed on host " + host + ".";
    case AlertKind::kSuccess:
      return "The " + (e.job.empty() ? std::string("backup") : one_line(e.job)) + object_phrase(e) +
             " succeeded on host " + host + ".";
    case AlertKind::kHealth: {
      std::string s = "The health" + object_phrase(e) + " on host " + host + " changed from " +
                      (e.health_old.empty() ? "UNKNOWN" : one_line(e.health_old)) + " to " +
                      (e.health_new.empty() ? "UNKNOWN" : one_line(e.health_new)) + ".";
      if (e.health_new == "OK") s += " Nothing needs to be done.";
      return s;
    }
    case AlertKind::kTest:
      return "This is a test alert from host " + host +
             ", sent by `sqlbakctl alert test`. If you can read it, this alert channel works.";
  }
  return "";
}

std::string folded_note(const AlertEvent& e) {
  if (e.folded == 0) return "";
  return std::to_string(e.folded) + " identical alert" + (e.folded == 1 ? " was" : "s were") +
         " folded into this one (not sent) since " + format_iso_utc(e.folded_since_ms) + ".";
}

// Rows of the fact table: (label, value), values as plain text.
std::vector<std::pair<std::string, std::string>> facts(const AlertEvent& e) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("Host", host_of(e));
  if (!e.database.empty()) rows.emplace_back("Database", one_line(e.database));
  if (!e.target.empty()) rows.emplace_back("Target", one_line(e.target));
  if (!e.job.empty()) rows.emplace_back("Job", one_line(e.job));
  if (!e.backup_id.empty()) rows.emplace_back("Backup", one_line(e.backup_id));
  if (e.kind == AlertKind::kHealth)
    rows.emplace_back("Health", (e.health_old.empty() ? std::string("UNKNOWN") : one_line(e.health_old)) +
                                    " -> " +
                                    (e.health_new.empty() ? std::string("UNKNOWN") : one_line(e.health_new)));
  rows.emplace_back("Severity", to_string(e.severity));
  rows.emplace_back("Time", format_iso_utc(e.time_ms));
  return rows;
}

const char* error_label(const AlertEvent& e) { return e.kind == AlertKind::kHealth ? "Findings" : "Error"; }

void append_header(std::string& out, std::string_view name, const std::string& value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

std::string header_atom(std::string_view text) { return encode_header_text(text, 16); }

// A UTF-8 character count of bytes starting at TEXT[I] (1 for a stray byte).
size_t utf8_char_length(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  return std::min(n, text.size() - i);
}

}  // namespace

const char* to_string(AlertKind kind) {
  switch (kind) {
    case AlertKind::kFailure:
      return "failure";
    case AlertKind::kSuccess:
      return "success";
    case AlertKind::kHealth:
      return "health";
    case AlertKind::kTest:
      return "test";
  }
  return "?";
}

const char* to_string(AlertSeverity severity) {
  switch (severity) {
    case AlertSeverity::kInfo:
      return "info";
    case AlertSeverity::kOk:
      return "ok";
    case AlertSeverity::kWarning:
      return "warning";
    case AlertSeverity::kCritical:
      return "critical";
  }
  return "?";
}

std::optional<AlertKind> parse_alert_kind(std::string_view name) {
  for (AlertKind k : {AlertKind::kFailure, AlertKind::kSuccess, AlertKind::kHealth, AlertKind::kTest})
    if (name == to_string(k)) return k;
  return std::nullopt;
}

AlertEvent make_failure_alert(std::string job, std::string database, std::string target, std::string error,
                              int64_t time_ms, std::string backup_id) {
  AlertEvent e;
  e.kind = AlertKind::kFailure;
  e.severity = AlertSeverity::kCritical;
  e.job = std::move(job);
  e.database = std::move(database);
  e.target = std::move(target);
  e.error = std::move(error);
  e.time_ms = time_ms;
  e.backup_id = std::move(backup_id);
  return e;
}

AlertEvent make_success_alert(std::string database, std::string target, std::string backup_id,
                              std::string details, int64_t time_ms) {
  AlertEvent e;
  e.kind = AlertKind::kSuccess;
  e.severity = AlertSeverity::kOk;
  e.job = "backup";
  e.database = std::move(database);
  e.target = std::move(target);
  e.backup_id = std::move(backup_id);
  e.details = std::move(details);
  e.time_ms = time_ms;
  return e;
}

AlertEvent make_health_alert(std::string database, std::string target, std::string old_state,
                             std::string new_state, std::string findings, int64_t time_ms) {
  AlertEvent e;
  e.kind = AlertKind::kHealth;
  e.severity = new_state == "OK"        ? AlertSeverity::kOk
               : new_state == "WARNING" ? AlertSeverity::kWarning
                                        : AlertSeverity::kCritical;
  e.database = std::move(database);
  e.target = std::move(target);
  e.health_old = std::move(old_state);
  e.health_new = std::move(new_state);
  e.error = std::move(findings);
  e.time_ms = time_ms;
  return e;
}

AlertEvent make_test_alert(std::string host, int64_t time_ms) {
  AlertEvent e;
  e.kind = AlertKind::kTest;
  e.severity = AlertSeverity::kInfo;
  e.host = std::move(host);
  e.time_ms = time_ms;
  return e;
}

std::string alert_summary(const AlertEvent& e) {
  std::string object;
  if (!e.database.empty()) object += " " + one_line(e.database);
  if (!e.target.empty()) object += " (target " + one_line(e.target) + ")";
  const std::string host = host_of(e);
  std::string s = "[sqlbak] ";
  switch (e.kind) {
    case AlertKind::kFailure:
      s += "FAILED: " + job_of(e) + (object.empty() ? "" : " of" + object) + " on " + host;
      if (!e.error.empty()) s += ": " + truncate_utf8(one_line(first_line(e.error)), kSubjectErrorChars);
      break;
    case AlertKind::kSuccess:
      s += "OK: " + (e.job.empty() ? std::string("backup") : one_line(e.job)) +
           (object.empty() ? "" : " of" + object) + " on " + host;
      if (!e.backup_id.empty()) s += ": " + one_line(e.backup_id);
      break;
    case AlertKind::kHealth: {
      const std::string now = e.health_new.empty() ? "UNKNOWN" : one_line(e.health_new);
      const std::string was = e.health_old.empty() ? "UNKNOWN" : one_line(e.health_old);
      s += now + ": health of" + (object.empty() ? " sqlbak" : object) + " on " + host;
      if (now == "OK")
        s += " is back to OK (was " + was + ")";
      else {
        s += " (was " + was + ")";
        if (!e.error.empty()) s += ": " + truncate_utf8(one_line(first_line(e.error)), kSubjectErrorChars);
      }
      break;
    }
    case AlertKind::kTest:
      s += "test alert from " + host;
      break;
  }
  if (e.folded > 0) s += " (+" + std::to_string(e.folded) + " folded)";
  return s;
}

std::vector<std::string> alert_next_steps(const AlertEvent& e) {
  const std::string db = shell_quote(e.database);
  const std::string target = e.target.empty() ? "" : " --target " + shell_quote(e.target);
  const std::string journal = "journalctl -u sqlbakd" + (e.database.empty() ? "" : " SQLBAK_DB=" + db);
  std::vector<std::string> steps;
  switch (e.kind) {
    case AlertKind::kFailure:
      if (e.job == "verify") {
        steps.push_back(!e.backup_id.empty()  ? "sqlbakctl verify " + shell_quote(e.backup_id) + target
                        : !e.database.empty() ? "sqlbakctl verify --db " + db + target
                                              : "sqlbakctl verify --all" + target);
      } else if (e.job == "rotate" || e.job == "prune") {
        steps.push_back("sqlbakctl rotate" + (e.database.empty() ? "" : " " + db) + " --dry-run");
      } else {
        steps.push_back("sqlbakctl status");
        if (!e.database.empty()) steps.push_back("sqlbakctl backup " + db + " --wait");
      }
      steps.push_back(journal);
      break;
    case AlertKind::kSuccess:
      if (!e.backup_id.empty())
        steps.push_back("sqlbakctl show " + shell_quote(e.backup_id) + target);
      else
        steps.push_back("sqlbakctl list" + (e.database.empty() ? "" : " " + db) + target);
      break;
    case AlertKind::kHealth:
      steps.push_back("sqlbakctl health" + (e.database.empty() ? "" : " " + db));
      if (e.health_new != "OK") {
        steps.push_back("sqlbakctl list" + (e.database.empty() ? "" : " " + db) + target);
        steps.push_back(journal);
      }
      break;
    case AlertKind::kTest:
      steps.push_back("sqlbakctl alert test");
      break;
  }
  return steps;
}

std::string render_alert_text(const AlertEvent& e) {
  std::string out = alert_summary(e) + "\n\n" + what_happened(e) + "\n";
  if (!e.error.empty()) {
    out += "\n" + std::string(error_label(e)) + ":\n";
    std::string error = body_text(e.error);
    size_t start = 0;
    while (start <= error.size()) {
      const size_t nl = error.find('\n', start);
      const std::string line = error.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      out += "  " + line + "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  out += "\n";
  for (const auto& [label, value] : facts(e)) {
    out += label + ":" + std::string(10 - std::min<size_t>(label.size(), 9), ' ') + value + "\n";
  }
  if (!e.details.empty()) out += "\n" + body_text(e.details) + "\n";
  out += "\nWhat to do next:\n";
  for (const std::string& step : alert_next_steps(e)) out += "  " + step + "\n";
  if (e.folded > 0) out += "\n" + folded_note(e) + "\n";
  out += "\n-- \nsqlbak on " + host_of(e) +
         ". Alert channels and `on:` events are set under `alerts:` in the\n"
         "sqlbak configuration; identical alerts are folded for `alerts.repeat_after`.\n";
  return out;
}

std::string render_alert_html(const AlertEvent& e) {
  const char* color = e.severity == AlertSeverity::kCritical  ? "#b00020"
                      : e.severity == AlertSeverity::kWarning ? "#a05a00"
                      : e.severity == AlertSeverity::kOk      ? "#1b6e20"
                                                              : "#1f4e8c";
  std::string out = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>" +
                    html_escape(alert_summary(e)) +
                    "</title></head>\n<body style=\"font-family: sans-serif; color: #222;\">\n";
  out += "<h2 style=\"color: " + std::string(color) + ";\">" + html_escape(alert_summary(e)) + "</h2>\n";
  out += "<p>" + html_escape(what_happened(e)) + "</p>\n";
  if (!e.error.empty()) {
    out += "<h3>" + std::string(error_label(e)) +
           "</h3>\n<pre style=\"background: #f4f4f4; padding: 8px;\">" + html_escape(body_text(e.error)) +
           "</pre>\n";
  }
  out += "<table style=\"border-collapse: collapse;\">\n";
  for (const auto& [label, value] : facts(e)) {
    out += "<tr><th style=\"text-align: left; padding: 2px 12px 2px 0;\">" + html_escape(label) +
           "</th><td>" + html_escape(value) + "</td></tr>\n";
  }
  out += "</table>\n";
  if (!e.details.empty()) out += "<p>" + html_escape(body_text(e.details)) + "</p>\n";
  out += "<h3>What to do next</h3>\n<pre style=\"background: #f4f4f4; padding: 8px;\">";
  for (const std::string& step : alert_next_steps(e)) out += html_escape(step) + "\n";
  out += "</pre>\n";
  if (e.folded > 0) out += "<p><em>" + html_escape(folded_note(e)) + "</em></p>\n";
  out += "<hr>\n<p><small>sqlbak on " + html_escape(host_of(e)) +
         ". Alert channels and events are set under <code>alerts:</code> in the sqlbak configuration; "
         "identical alerts are folded for <code>alerts.repeat_after</code>.</small></p>\n</body>\n</html>\n";
  return out;
}

std::string render_alert_email(const AlertEvent& e, const AlertEmailOptions& o) {
  const std::string boundary = "=_sqlbak_" + o.unique;
  std::string host;
  for (char c : e.host)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
      host += c;
  if (host.empty()) host = "localhost";

  std::string to;
  for (size_t i = 0; i < o.to.size(); ++i) {
    if (i > 0) to += ",\r\n ";  // one address per line keeps every line short
    to += one_line(o.to[i]);
  }

  std::string out;
  append_header(out, "Date", rfc5322_date(o.date_ms));
  append_header(out, "Message-ID", "<" + o.unique + "@" + host + ">");
  append_header(out, "From", one_line(o.from));
  append_header(out, "To", to);
  append_header(out, "Subject", encode_header_text(alert_summary(e), 7));
  append_header(out, "MIME-Version", "1.0");
  append_header(out, "Content-Type", "multipart/alternative;\r\n boundary=\"" + boundary + "\"");
  append_header(out, "Auto-Submitted", "auto-generated");
  append_header(out, "X-Sqlbak-Event", to_string(e.kind));
  append_header(out, "X-Sqlbak-Severity", to_string(e.severity));
  append_header(out, "X-Sqlbak-Host", header_atom(host_of(e)));
  if (!e.database.empty()) append_header(out, "X-Sqlbak-Database", header_atom(e.database));
  if (!e.target.empty()) append_header(out, "X-Sqlbak-Target", header_atom(e.target));
  out += "\r\nThis is a multi-part message in MIME format.\r\n";
  const std::pair<const char*, std::string> parts[] = {{"text/plain", render_alert_text(e)},
                                                       {"text/html", render_alert_html(e)}};
  for (const auto& [type, body] : parts) {
    out += "\r\n--" + boundary + "\r\n";
    out += "Content-Type: " + std::string(type) + "; charset=utf-8\r\n";
    out += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    out += quoted_printable(body);
  }
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

std::string render_alert_webhook(const AlertEvent& e) {
  using nlohmann::ordered_json;
  auto text_or_null = [](const std::string& s) -> ordered_json {
    if (s.empty()) return nullptr;
    return valid_utf8(s);
  };
  ordered_json doc;
  doc["version"] = 1;
  doc["event"] = to_string(e.kind);
  doc["severity"] = to_string(e.severity);
  doc["summary"] = alert_summary(e);
  doc["message"] = what_happened(e);
  doc["host"] = valid_utf8(e.host);
  doc["database"] = text_or_null(e.database);
  doc["target"] = text_or_null(e.target);
  doc["backup_id"] = text_or_null(e.backup_id);
  doc["job"] = text_or_null(e.job);
  doc["error"] = text_or_null(e.error);
  doc["details"] = text_or_null(e.details);
  if (e.kind == AlertKind::kHealth)
    doc["health"] = {{"old", text_or_null(e.health_old)}, {"new", text_or_null(e.health_new)}};
  else
    doc["health"] = nullptr;
  doc["time"] = format_iso_utc(e.time_ms);
  doc["time_unix_ms"] = e.time_ms;
  doc["folded"] = e.folded;
  doc["folded_since"] =
      e.folded > 0 ? ordered_json(format_iso_utc(e.folded_since_ms)) : ordered_json(nullptr);
  doc["next_steps"] = alert_next_steps(e);
  return doc.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string valid_utf8(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c >> 4) == 0xE) {
      n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c >> 3) == 0x1E) {
      n = 4, cp = c & 0x07, min = 0x10000;
    }
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if (!is_continuation(cc)) ok = false;
      cp = cp << 6 | (cc & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  constexpr size_t kMaxLine = 76;
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const bool has_newline = end != std::string_view::npos;
    if (!has_newline) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string current;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      const bool last = i + 1 == line.size();
      std::string token;
      if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
        token = static_cast<char>(c);
      } else {
        token = {'=', kHex[c >> 4], kHex[c & 15]};
      }
      // Keep room for the "=" of a soft line break.
      if (current.size() + token.size() > kMaxLine - 1) {
        out += current + "=\r\n";
        current.clear();
      }
      current += token;
    }
    out += current;
    if (has_newline) out += "\r\n";
    start = end + 1;
  }
  return out;
}

std::string encode_header_text(std::string_view raw, size_t name_length) {
  const std::string text = one_line(raw);
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7E; }) &&
                     text.find("=?") == std::string::npos;
  size_t column = name_length + 2;
  std::string out;
  if (plain) {
    // Fold before a space once a line would pass 78 columns.
    size_t i = 0;
    while (i < text.size()) {
      size_t next = text.find(' ', i + 1);
      if (next == std::string::npos) next = text.size();
      const std::string_view word = std::string_view(text).substr(i, next - i);
      if (!out.empty() && column + word.size() > kMaxHeaderColumns && word.front() == ' ') {
        out += "\r\n";
        column = 0;
      }
      out += word;
      column += word.size();
      i = next;
    }
    return out;
  }
  // Encoded-words of whole UTF-8 characters, each at most 75 characters and
  // each line at most 78 columns.
  size_t i = 0;
  while (i < text.size()) {
    const size_t prefix = out.empty() ? column : 1;
    const size_t room =
        std::min<size_t>(75, kMaxHeaderColumns - std::min(prefix, kMaxHeaderColumns - 16)) - 12;
    const size_t max_bytes = std::max<size_t>(room / 4 * 3, 3);
    size_t end = i;
    while (end < text.size()) {
      const size_t n = utf8_char_length(text, end);
      if (end + n - i > max_bytes && end > i) break;
      end += n;
    }
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(text).substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string rfc5322_date(int64_t unix_ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string smtp_address(std::string_view mailbox) {
  const size_t open = mailbox.rfind('<');
  if (open != std::string_view::npos) {
    const size_t close = mailbox.find('>', open);
    if (close != std::string_view::npos) return std::string(mailbox.substr(open + 1, close - open - 1));
  }
  const size_t b = mailbox.find_first_not_of(" \t");
  const size_t e = mailbox.find_last_not_of(" \t");
  return b == std::string_view::npos ? "" : std::string(mailbox.substr(b, e - b + 1));
}

AlertFolder::Decision AlertFolder::offer(const AlertEvent& e, int64_t now_ms) {
  if (e.kind == AlertKind::kTest || repeat_after_.count() <= 0) return {};
  prune(now_ms);
  std::string key = to_string(e.kind);
  for (const std::string* part : {&e.job, &e.database, &e.target, &e.error, &e.health_new}) {
    key += '\x1f';
    key += *part;
  }
  auto [it, inserted] = entries_.try_emplace(std::move(key));
  Entry& entry = it->second;
  if (!inserted && now_ms - entry.last_sent_ms < repeat_after_.count()) {
    ++entry.folded;
    return {.send = false};
  }
  Decision d{
      .send = true, .folded = entry.folded, .folded_since_ms = entry.folded > 0 ? entry.last_sent_ms : 0};
  entry.last_sent_ms = now_ms;
  entry.folded = 0;
  return d;
}

uint64_t AlertFolder::pending_folded() const {
  uint64_t n = 0;
  for (const auto& [key, entry] : entries_) n += entry.folded;
  return n;
}

void AlertFolder::prune(int64_t now_ms) {
  // Entries that folded something are kept until an identical alert reports
  // the count; the others are only needed while their window lasts.
  constexpr size_t kMaxEntries = 10000;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool expired = now_ms - it->second.last_sent_ms >= repeat_after_.count();
    if (expired && (it->second.folded == 0 || entries_.size() > kMaxEntries))
      it = entries_.erase(it);
    else
      ++it;
  }
}

}  // namespace sqlbak
