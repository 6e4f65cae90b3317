// When to try an S3 request again, and how long to wait first. Pure: the time
// elapsed and the random numbers are parameters, so tests need no clock.
//
// Backoff is exponential with "full jitter": before retry n (n = 1 after the
// first failure) the wait is uniform in [0, min(max_delay, base_delay * 2^(n-1))].
// A request is given up after max_attempts attempts, or when the next wait
// would end past max_total since the first attempt began.
//
// Transient (retried): HTTP 5xx, 429, S3's RequestTimeout and BadDigest (a body
// damaged in transit) and a response that does not match what was sent (an
// ETag that is not the body's MD5), and transport failures: connection refused
// or reset, a name that did not resolve, timeouts, a body cut short.
// Everything else (403, 404, other 4xx) is final at once.
//
// Thread-safety: RetrySchedule is used by one thread; the rest are values.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

namespace sqlbak {

struct RetryPolicy {
  int max_attempts = 6;
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{20'000};
  std::chrono::milliseconds max_total{120'000};
};

// How a request failed below HTTP (none when a status line arrived whole).
enum class TransportError {
  kNone,
  kResolve,     // the endpoint's host name did not resolve
  kConnect,     // connection refused or unreachable
  kTimeout,     // connect timeout, or the transfer stalled
  kConnection,  // reset, closed early, empty reply, body cut short
  kTls,         // TLS handshake or certificate failure
  kOther,       // anything else libcurl reports
};

// Whether a failed attempt is worth repeating. HTTP_STATUS is 0 when no
// response arrived; S3_CODE is the <Code> of S3's error document ("" if none).
bool is_transient_failure(int http_status, TransportError transport, std::string_view s3_code);

// The wait before retry RETRY (1-based) for a uniform random UNIT in [0, 1).
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, double unit);

class RetrySchedule {
 public:
  // RANDOM returns uniform numbers in [0, 1); tests inject a fixed sequence.
  RetrySchedule(RetryPolicy policy, std::function<double()> random);

  // Call after each failed transient attempt with the time ELAPSED since the
  // first attempt began. Returns the wait before the next attempt, or nullopt
  // when the request must be given up.
  std::optional<std::chrono::milliseconds> after_failure(std::chrono::milliseconds elapsed);

  // Attempts made so far (failures recorded by after_failure).
  int attempts() const { return attempts_; }

 private:
  RetryPolicy policy_;
  std::function<double()> random_;
  int attempts_ = 0;
};

}  // namespace sqlbak
