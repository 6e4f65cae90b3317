// Alerts, the I/O half: sending an AlertEvent by email (SMTP through libcurl)
// and to a webhook (HTTP POST of a JSON document), with bounded timeouts and
// a few retries; and AlertDispatcher, which the daemon owns to turn its
// events into deliveries without ever blocking. What is sent is rendered by
// lib/alert.h; docs/ALERTS.md describes both for users.
//
// Secrets: the SMTP password (password_file) and the webhook token
// (token_file) are read from their files at each delivery and never appear in
// a result, a status or a log message (URLs are shown without user
// information or query string, see redact_url()).
//
// TLS: certificates are verified against the system's trust store; the
// environment variable SSL_CERT_FILE (a PEM bundle), as read by OpenSSL and
// curl(1), replaces it.
//
// Thread-safety: the send_* functions are reentrant. AlertDispatcher is
// thread-safe (see the class).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/alert.h"
#include "lib/config.h"

namespace sqlbak {

struct AlertDeliveryOptions {
  int attempts = 3;                               // tries per delivery, >= 1
  std::chrono::milliseconds first_backoff{1000};  // wait before the 2nd try; doubles after each
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{30000};  // one whole try (connect, TLS, SMTP dialogue or HTTP)
  // When set and true, waits end and transfers abort at once (shutdown).
  const std::atomic<bool>* cancel = nullptr;
};

// The outcome of one delivery to one channel.
struct AlertChannelResult {
  std::string channel;  // "email" | "webhook"
  std::string url;      // redact_url() of the channel's url
  bool ok = false;      // delivered: the SMTP server accepted the message / the webhook answered 2xx
  std::string error;    // why not (the last try's error); empty when OK
  int attempts = 0;     // tries made
  int64_t duration_ms = 0;
};

// "email smtp://mail.example.com:587: not delivered after 3 attempts: <error>"
// or "... delivered (1 attempt)".
std::string describe(const AlertChannelResult& result);

// Sends EVENT, synchronously, retrying transient errors (connection refused
// or timed out, SMTP 4xx, HTTP 5xx, 408 and 429) up to OPTIONS.attempts
// times. Permanent errors (login denied, STARTTLS refused, certificate not
// trusted, SMTP 5xx, other HTTP 4xx) are not retried.
// Email: `smtp://` sends in clear unless `starttls: true`, which makes
// STARTTLS required (the delivery fails when the server does not offer it);
// `smtps://` is TLS from the start. AUTH is used when `username` is set, with
// the first line of password_file. Every address in `to` is a recipient.
AlertChannelResult send_email_alert(const EmailAlertConfig& config, const AlertEvent& event,
                                    const AlertDeliveryOptions& options = {});
// Webhook: POST of render_alert_webhook(EVENT), Content-Type:
// application/json, "Authorization: Bearer TOKEN" when token_file is set
// (its content, trimmed). Redirects are not followed.
AlertChannelResult send_webhook_alert(const WebhookAlertConfig& config, const AlertEvent& event,
                                      const AlertDeliveryOptions& options = {});

// EVENT through every channel configured in ALERTS, one after the other,
// whatever their `on:`, without folding: what `sqlbakctl alert test` does.
// Empty when no channel is configured.
std::vector<AlertChannelResult> send_alert_now(const AlertsConfig& alerts, const AlertEvent& event,
                                               const AlertDeliveryOptions& options = {});

// URL without user information and query string:
// "smtp://u:p@mail:25/x?y" -> "smtp://mail:25/x".
std::string redact_url(std::string_view url);

// What `status` and `health` show of one channel.
struct AlertChannelStatus {
  std::string channel;  // "email" | "webhook"
  std::string url;      // redacted
  std::vector<std::string> on;
  uint64_t delivered = 0, failed = 0;  // deliveries since the dispatcher was made
  uint64_t dropped = 0;                // alerts not even tried: too many deliveries pending
  int consecutive_failures = 0;        // failed deliveries since the last success
  std::string last_error;              // of the last failed delivery; kept after a success
  int64_t last_success_ms = 0;         // 0: never
  int64_t last_failure_ms = 0;         // 0: never
  int pending = 0;                     // deliveries queued or running now
};

// Routes the daemon's alert events to the configured channels.
//
// Threads:
// - raise() may be called from any thread (the event loop, a job's worker);
//   it never blocks on I/O: it filters, folds, and hands one delivery per
//   channel to EXECUTOR, then returns.
// - EXECUTOR runs the deliveries. Each one may take up to about
//   attempts x (timeout + backoff) (~100 s with the defaults) when a server is
//   unreachable, so the executor must not be the event loop, nor a pool whose
//   threads backups need: a dedicated thread or small pool is right. Deliveries
//   to different channels are separate tasks and may run in parallel.
// - LOG is called from the executor's threads, once per delivery that failed
//   after its retries (and once when a failing channel delivers again); the
//   message names the channel, the redacted URL, the attempts, the error and
//   the alert, never a secret.
// - channel_status() and folded_pending() may be called from any thread.
// - shutdown() (also run by the destructor) makes waiting retries and running
//   transfers stop at once, waits for running deliveries to return, and turns
//   later raise() calls and queued deliveries into no-ops; after it LOG is not
//   called again. Tasks still queued in the executor keep only shared state
//   alive and may run (as no-ops) after the dispatcher is gone.
//
// A channel with more than kMaxPendingPerChannel deliveries queued or running
// drops further alerts (counted in `dropped`, logged once per burst).
class AlertDispatcher {
 public:
  using Executor = std::function<void(std::function<void()>)>;
  using Logger = std::function<void(const std::string&)>;
  static constexpr int kMaxPendingPerChannel = 16;

  // REQUIRES: EXECUTOR is callable; LOG may be empty (no logging).
  AlertDispatcher(const AlertsConfig& config, std::string host, Executor executor, Logger log,
                  AlertDeliveryOptions options = {});
  ~AlertDispatcher();
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;

  // Sends EVENT to each channel whose `on:` lists its kind (test events go to
  // every channel), unless storm control folds it. Fills EVENT's host (from
  // the constructor) and time (NOW_MS) when empty. Returns the number of
  // deliveries started.
  int raise(AlertEvent event, int64_t now_ms);

  // A new configuration (reload): channels whose url is unchanged keep their
  // counters; storm control keeps its memory.
  void reconfigure(const AlertsConfig& config);

  std::vector<AlertChannelStatus> channel_status() const;
  uint64_t folded_pending() const;  // alerts folded and not yet reported by a later one

  void shutdown();

  struct Shared;  // the state deliveries share with the dispatcher (alert_delivery.cc)

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace sqlbak
