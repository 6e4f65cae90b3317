#include <catch2/catch.hpp>

#include "lib/duration.h"

using namespace std::chrono_literals;
using sqlbak::format_duration;
using sqlbak::parse_duration;
using sqlbak::parse_duration_ms;

namespace {

std::chrono::seconds parsed(std::string_view text) {
  auto span = parse_duration(text);
  INFO("parse_duration(\"" << text << "\")");
  REQUIRE(span.ok());
  return span.value();
}

std::string parse_error(std::string_view text) {
  auto span = parse_duration(text);
  INFO("parse_duration(\"" << text << "\") should fail");
  REQUIRE_FALSE(span.ok());
  CHECK(span.status().code() == sqlbak::ErrorCode::kInvalidArgument);
  return span.status().message();
}

}  // namespace

TEST_CASE("parse_duration reads the spans the configuration uses", "[duration]") {
  CHECK(parsed("48h") == 48h);
  CHECK(parsed("1h30m") == 90min);
  CHECK(parsed("90s") == 90s);
  CHECK(parsed("2d") == 48h);
  CHECK(parsed("0s") == 0s);
  CHECK(parsed("1w") == 7 * 24h);
  CHECK(parsed("1y") == 31'557'600s);
  CHECK(parsed("12M") == parsed("1y"));
  CHECK(parsed("1month") == 2'629'800s);
}

TEST_CASE("parse_duration accepts systemd's unit spellings", "[duration]") {
  for (const char* text : {"1h", "1hr", "1hour", "1hours", "60m", "60min", "60minute", "60minutes", "3600s",
                           "3600sec", "3600second", "3600seconds"}) {
    CHECK(parsed(text) == 1h);
  }
  CHECK(parsed("1day") == 24h);
  CHECK(parsed("2days") == 48h);
  CHECK(parsed("2weeks") == 14 * 24h);
  CHECK(parsed("1years") == parsed("1y"));
}

TEST_CASE("parse_duration allows spaces between groups and around units", "[duration]") {
  CHECK(parsed("1d 2h 3min 4s") == 24h + 2h + 3min + 4s);
  CHECK(parsed("  5 min  ") == 5min);
  CHECK(parsed("1h\t30min") == 90min);
}

TEST_CASE("parse_duration takes a bare number as seconds", "[duration]") {
  CHECK(parsed("90") == 90s);
  CHECK(parsed("0") == 0s);
}

TEST_CASE("parse_duration accepts fractions and truncates below a second", "[duration]") {
  CHECK(parsed("1.5h") == 90min);
  CHECK(parsed("0.5d") == 12h);
  CHECK(parsed("1500ms") == 1s);
  CHECK(parsed("999ms") == 0s);
}

TEST_CASE("parse_duration_ms keeps milliseconds", "[duration]") {
  auto span = parse_duration_ms("250ms");
  REQUIRE(span.ok());
  CHECK(span.value() == 250ms);
  span = parse_duration_ms("5s");
  REQUIRE(span.ok());
  CHECK(span.value() == 5000ms);
  span = parse_duration_ms("1.25s");
  REQUIRE(span.ok());
  CHECK(span.value() == 1250ms);
  span = parse_duration_ms("1500us");
  REQUIRE(span.ok());
  CHECK(span.value() == 1ms);
  CHECK_FALSE(parse_duration_ms("-1ms").ok());
}

TEST_CASE("parse_duration refuses malformed spans", "[duration]") {
  CHECK_THAT(parse_error(""), Catch::Contains("empty"));
  CHECK_THAT(parse_error("   "), Catch::Contains("empty"));
  CHECK_THAT(parse_error("-5s"), Catch::Contains("negative"));
  CHECK_THAT(parse_error("5x"), Catch::Contains("unknown unit 'x'"));
  CHECK_THAT(parse_error("5H"), Catch::Contains("unknown unit 'H'"));
  CHECK_THAT(parse_error("h"), Catch::Contains("expected a number"));
  CHECK_THAT(parse_error("1h 30"), Catch::Contains("missing unit"));
  CHECK_THAT(parse_error("30 1h"), Catch::Contains("missing unit"));
  CHECK_THAT(parse_error("1.h"), Catch::Contains("digits after '.'"));
  CHECK_THAT(parse_error("1h,30m"), Catch::Contains("expected a number"));
  CHECK_THAT(parse_error("99999999999999999999s"), Catch::Contains("too large"));
  CHECK_THAT(parse_error("9999999999999y"), Catch::Contains("too large"));
  CHECK_THAT(parse_error("5000000000000s 5000000000000s"), Catch::Contains("too large"));
  // The message quotes the input, so that a config error is self-explaining.
  CHECK_THAT(parse_error("3 fortnights"), Catch::StartsWith("invalid duration '3 fortnights'"));
}

TEST_CASE("format_duration prints spans like systemd", "[duration]") {
  CHECK(format_duration(0s) == "0s");
  CHECK(format_duration(4s) == "4s");
  CHECK(format_duration(90s) == "1min 30s");
  CHECK(format_duration(24h + 2h + 3min + 4s) == "1d 2h 3min 4s");
  CHECK(format_duration(48h) == "2d");
  CHECK(format_duration(7 * 24h) == "1w");
  CHECK(format_duration(31'557'600s) == "1y");
  CHECK(format_duration(-90s) == "-1min 30s");
}

TEST_CASE("format_duration output parses back to the same span", "[duration]") {
  for (std::chrono::seconds span : {0s, 1s, 59s, 61s, 3599s, 3601s, 86'399s, 86'401s, 1'000'000s, 40'000'000s,
                                    123'456'789s}) {
    INFO(span.count() << "s formats as " << format_duration(span));
    CHECK(parsed(format_duration(span)) == span);
  }
}

TEST_CASE("a fraction that crosses the maximum is too large", "[duration]") {
  // 9223372036854 s is just below 2^63 microseconds; .9 s more is not.
  auto r = parse_duration("9223372036854.9s");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("too large"));
  CHECK(parse_duration("9223372036854.7s").ok());
}
