// Alerts, the pure half: what an alert says (AlertEvent), how it is written
// (an RFC 5322 email with a text and an HTML part, a JSON document for
// webhooks), and storm control (AlertFolder). Nothing here does I/O, reads the
// clock or draws random numbers: the time and the unique parts of a message
// are parameters. Sending lives in lib/alert_delivery.h. The documents are
// specified in docs/ALERTS.md.
//
// Thread-safety: the functions are reentrant; AlertEvent is a plain value;
// AlertFolder is not thread-safe (its owner, AlertDispatcher, locks it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sqlbak {

// Which event an alert reports; the names are those of the config's `on:`.
enum class AlertKind {
  kFailure,  // a job failed: backup, verify, rotate, prune
  kSuccess,  // a backup succeeded
  kHealth,   // a database's health state changed (either way)
  kTest,     // `sqlbakctl alert test`: sent to every channel, whatever its `on:`
};

enum class AlertSeverity { kInfo, kOk, kWarning, kCritical };

const char* to_string(AlertKind kind);          // "failure", "success", "health", "test"
const char* to_string(AlertSeverity severity);  // "info", "ok", "warning", "critical"
std::optional<AlertKind> parse_alert_kind(std::string_view name);

struct AlertEvent {
  AlertKind kind = AlertKind::kFailure;
  AlertSeverity severity = AlertSeverity::kCritical;
  std::string host;                    // the machine sqlbakd runs on (AlertDispatcher fills it when empty)
  std::string database;                // empty when the event concerns no single database
  std::string target;                  // empty when it concerns no single target
  std::string backup_id;               // the backup made or concerned, may be empty
  std::string job;                     // failure/success: "backup", "verify", "rotate", "prune"
  std::string error;                   // failure: the error text; health: the findings (one per line)
  std::string details;                 // optional free text (sizes and duration of a success, ...)
  std::string health_old, health_new;  // health: "OK", "WARNING", "CRITICAL", "UNKNOWN"
  int64_t time_ms = 0;                 // when it happened, Unix ms (AlertDispatcher fills it when 0)
  // Set by storm control: identical alerts not sent since FOLDED_SINCE_MS (the
  // time the previous one of them was sent). 0 when nothing was folded.
  uint64_t folded = 0;
  int64_t folded_since_ms = 0;
};

// Events with the severity filled in: failure is critical, success ok, test
// info; a health event takes the severity of its new state (OK: ok, WARNING:
// warning, anything else: critical).
AlertEvent make_failure_alert(std::string job, std::string database, std::string target, std::string error,
                              int64_t time_ms, std::string backup_id = {});
AlertEvent make_success_alert(std::string database, std::string target, std::string backup_id,
                              std::string details, int64_t time_ms);
AlertEvent make_health_alert(std::string database, std::string target, std::string old_state,
                             std::string new_state, std::string findings, int64_t time_ms);
AlertEvent make_test_alert(std::string host, int64_t time_ms);

// One line saying what happened, naming host, database, target and (for a
// failure) the start of the error: the email's Subject, the webhook's
// "summary", a log line. Plain UTF-8, no line breaks.
std::string alert_summary(const AlertEvent& event);

// The sqlbakctl (or journalctl) commands to look closer, one per element.
std::vector<std::string> alert_next_steps(const AlertEvent& event);

// The text/plain and text/html bodies (UTF-8, "\n" line ends). Every string
// taken from EVENT is HTML-escaped in the HTML body.
std::string render_alert_text(const AlertEvent& event);
std::string render_alert_html(const AlertEvent& event);

struct AlertEmailOptions {
  std::string from;             // as configured: "a@b" or "Name <a@b>"
  std::vector<std::string> to;  // as configured
  int64_t date_ms = 0;          // the Date: header
  // A token unique to this message ([A-Za-z0-9.]), used in Message-ID and the
  // MIME boundary. REQUIRES: not empty.
  std::string unique;
};

// The whole message as it goes after SMTP DATA: CRLF line ends, headers
// (Date, Message-ID, From, To, Subject, MIME-Version, Auto-Submitted,
// X-Sqlbak-*) and a multipart/alternative body of a text/plain and a
// text/html part, both UTF-8, quoted-printable. No line is longer than 78
// characters. (Dot-stuffing is the SMTP client's job.)
std::string render_alert_email(const AlertEvent& event, const AlertEmailOptions& options);

// The JSON document POSTed to a webhook (docs/ALERTS.md lists its fields).
std::string render_alert_webhook(const AlertEvent& event);

// Building blocks, public for the tests.
std::string html_escape(std::string_view text);
// TEXT with invalid UTF-8 sequences replaced by U+FFFD.
std::string valid_utf8(std::string_view text);
// Quoted-printable (RFC 2045) of TEXT whose lines end in "\n"; output lines
// end in CRLF and are at most 76 characters.
std::string quoted_printable(std::string_view text);
// An unstructured header value (RFC 5322 + RFC 2047), folded for a header
// whose name and ": " take NAME_LENGTH + 2 columns. Line breaks in TEXT
// become spaces; non-ASCII text becomes UTF-8 "B" encoded-words.
std::string encode_header_text(std::string_view text, size_t name_length);
// "Date:" form of a Unix ms time, in UTC: "Tue, 25 Nov 2026 16:50:12 +0000".
std::string rfc5322_date(int64_t unix_ms);
// The address in "Name <a@b>" (or "a@b" itself), as SMTP's MAIL FROM and RCPT TO take it.
std::string smtp_address(std::string_view mailbox);

// Storm control: identical alerts (same kind, job, database, target, error
// and new health state) within REPEAT_AFTER of the last one sent are folded;
// the next identical alert sent after the window carries their count. Test
// alerts are never folded; a REPEAT_AFTER of 0 folds nothing.
//
// The clock is the caller's: each call passes the current time. Memory:
// entries whose window has passed and that folded nothing are dropped.
class AlertFolder {
 public:
  explicit AlertFolder(std::chrono::milliseconds repeat_after) : repeat_after_(repeat_after) {}

  struct Decision {
    bool send = true;
    uint64_t folded = 0;          // when SEND: identical alerts folded before this one
    int64_t folded_since_ms = 0;  // when SEND and FOLDED: when the previous one was sent
  };

  // Counts EVENT at NOW_MS and says whether to send it.
  Decision offer(const AlertEvent& event, int64_t now_ms);

  // Alerts folded so far and not yet reported by a later alert.
  uint64_t pending_folded() const;
  size_t tracked() const { return entries_.size(); }
  void set_repeat_after(std::chrono::milliseconds repeat_after) { repeat_after_ = repeat_after; }

 private:
  struct Entry {
    int64_t last_sent_ms = 0;
    uint64_t folded = 0;
  };
  void prune(int64_t now_ms);

  std::chrono::milliseconds repeat_after_;
  std::map<std::string, Entry> entries_;
};

}  // namespace sqlbak
