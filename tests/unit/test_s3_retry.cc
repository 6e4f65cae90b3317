#include <catch2/catch.hpp>

#include <vector>

#include "lib/s3_retry.h"

using namespace sqlbak;
using std::chrono::milliseconds;

namespace {

// A fixed sequence of "random" numbers, repeated.
std::function<double()> sequence(std::vector<double> values) {
  auto i = std::make_shared<size_t>(0);
  return [values, i] { return values[(*i)++ % values.size()]; };
}

}  // namespace

TEST_CASE("transient failures are retried, final ones are not", "[s3]") {
  // Server trouble and throttling.
  CHECK(is_transient_failure(500, TransportError::kNone, "InternalError"));
  CHECK(is_transient_failure(503, TransportError::kNone, "SlowDown"));
  CHECK(is_transient_failure(502, TransportError::kNone, ""));
  CHECK(is_transient_failure(429, TransportError::kNone, ""));
  CHECK(is_transient_failure(400, TransportError::kNone, "RequestTimeout"));
  CHECK(is_transient_failure(400, TransportError::kNone, "BadDigest"));
  // No answer, or an answer cut short.
  CHECK(is_transient_failure(0, TransportError::kConnect, ""));
  CHECK(is_transient_failure(0, TransportError::kResolve, ""));
  CHECK(is_transient_failure(0, TransportError::kTimeout, ""));
  CHECK(is_transient_failure(0, TransportError::kConnection, ""));
  CHECK(is_transient_failure(200, TransportError::kConnection, ""));
  // Final: the request itself is wrong, or TLS does not trust the server.
  CHECK_FALSE(is_transient_failure(403, TransportError::kNone, "AccessDenied"));
  CHECK_FALSE(is_transient_failure(404, TransportError::kNone, "NoSuchKey"));
  CHECK_FALSE(is_transient_failure(404, TransportError::kNone, "NoSuchBucket"));
  CHECK_FALSE(is_transient_failure(400, TransportError::kNone, "InvalidArgument"));
  CHECK_FALSE(is_transient_failure(412, TransportError::kNone, "PreconditionFailed"));
  CHECK_FALSE(is_transient_failure(0, TransportError::kTls, ""));
  CHECK_FALSE(is_transient_failure(0, TransportError::kOther, ""));
}

TEST_CASE("backoff doubles its ceiling up to max_delay, with full jitter", "[s3]") {
  RetryPolicy p;
  p.base_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  // unit close to 1 gives the ceiling: 100, 200, 400, 800, 1000, 1000.
  CHECK(backoff_delay(p, 1, 0.999999).count() == 99);
  CHECK(backoff_delay(p, 2, 0.999999).count() == 199);
  CHECK(backoff_delay(p, 3, 0.999999).count() == 399);
  CHECK(backoff_delay(p, 4, 0.999999).count() == 799);
  CHECK(backoff_delay(p, 5, 0.999999).count() == 999);
  CHECK(backoff_delay(p, 60, 0.999999).count() == 999);
  // Full jitter: anywhere from zero.
  CHECK(backoff_delay(p, 4, 0.0).count() == 0);
  CHECK(backoff_delay(p, 4, 0.5).count() == 400);
  // Out-of-range inputs are clamped.
  CHECK(backoff_delay(p, 0, 0.5).count() == 50);
  CHECK(backoff_delay(p, 3, 7.0).count() == 400);
}

TEST_CASE("a retry schedule gives up after max_attempts", "[s3]") {
  RetryPolicy p;
  p.max_attempts = 4;
  p.base_delay = milliseconds(100);
  p.max_delay = milliseconds(10'000);
  p.max_total = milliseconds(1'000'000);
  RetrySchedule s(p, sequence({0.5}));
  auto d1 = s.after_failure(milliseconds(0));
  auto d2 = s.after_failure(milliseconds(100));
  auto d3 = s.after_failure(milliseconds(300));
  REQUIRE(d1);
  REQUIRE(d2);
  REQUIRE(d3);
  CHECK(d1->count() == 50);
  CHECK(d2->count() == 100);
  CHECK(d3->count() == 200);
  CHECK_FALSE(s.after_failure(milliseconds(600)));  // the 4th attempt failed: done
  CHECK(s.attempts() == 4);
}

TEST_CASE("a retry schedule gives up when the next wait would pass max_total", "[s3]") {
  RetryPolicy p;
  p.max_attempts = 100;
  p.base_delay = milliseconds(1000);
  p.max_delay = milliseconds(1000);
  p.max_total = milliseconds(5000);
  RetrySchedule s(p, sequence({0.9, 0.1}));
  CHECK(s.after_failure(milliseconds(0)).value().count() == 900);
  CHECK(s.after_failure(milliseconds(3000)).value().count() == 100);
  // 4500 + 900 > 5000: give up rather than start an attempt past the budget.
  CHECK_FALSE(s.after_failure(milliseconds(4500)));
  CHECK(s.attempts() == 3);
}

TEST_CASE("a single attempt policy never retries", "[s3]") {
  RetryPolicy p;
  p.max_attempts = 1;
  RetrySchedule s(p, sequence({0.5}));
  CHECK_FALSE(s.after_failure(milliseconds(0)));
  CHECK(s.attempts() == 1);
}
