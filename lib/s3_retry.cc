#include "lib/s3_retry.h"

#include <algorithm>
#include <cmath>

namespace sqlbak {

bool is_transient_failure(int http_status, TransportError transport, std::string_view s3_code) {
  if (http_status == 0) {
    // No response: a server restarting, a dropped connection. A TLS failure
    // (a wrong certificate) will not heal by itself; the rest may.
    return transport != TransportError::kNone && transport != TransportError::kTls &&
           transport != TransportError::kOther;
  }
  if (transport != TransportError::kNone) return true;  // a response cut short
  if (http_status >= 500 || http_status == 429) return true;
  return s3_code == "RequestTimeout" || s3_code == "BadDigest" || s3_code == "SlowDown";
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, double unit) {
  if (retry < 1) retry = 1;
  // base * 2^(retry-1), capped, computed in double so that it cannot overflow.
  double ceiling = static_cast<double>(policy.base_delay.count()) * std::ldexp(1.0, std::min(retry - 1, 40));
  ceiling = std::min(ceiling, static_cast<double>(policy.max_delay.count()));
  unit = std::clamp(unit, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(ceiling * unit));
}

RetrySchedule::RetrySchedule(RetryPolicy policy, std::function<double()> random)
    : policy_(policy), random_(std::move(random)) {}

std::optional<std::chrono::milliseconds> RetrySchedule::after_failure(std::chrono::milliseconds elapsed) {
  ++attempts_;
  if (attempts_ >= policy_.max_attempts) return std::nullopt;
  std::chrono::milliseconds delay = backoff_delay(policy_, attempts_, random_());
  if (elapsed + delay >= policy_.max_total) return std::nullopt;
  return delay;
}

}  // namespace sqlbak
