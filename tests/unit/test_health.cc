#include <catch2/catch.hpp>

#include "lib/health.h"

namespace sqlbak {
namespace {

constexpr int64_t kNow = 1795600000000;  // ms
constexpr int64_t kHour = 3600 * 1000;

HealthTargetObservation target_with_backup(int64_t age_ms) {
  HealthTargetObservation t;
  t.target = "local";
  t.newest_backup_ms = kNow - age_ms;
  t.newest_backup_id = "20261125T000000Z-abcdef";
  t.newest_database_bytes = 1000;
  t.newest_stored_bytes = 100;
  return t;
}

HealthDatabaseObservation db_with(std::vector<HealthTargetObservation> targets) {
  HealthDatabaseObservation d;
  d.name = "shop";
  d.max_age = std::chrono::hours(48);
  d.targets = std::move(targets);
  return d;
}

TEST_CASE("health: a fresh backup everywhere is OK", "[health]") {
  auto r = evaluate_health({db_with({target_with_backup(kHour)})}, kNow);
  CHECK(r.state == HealthState::kOk);
  CHECK(r.findings.empty());
  CHECK_THAT(r.summary, Catch::StartsWith("SQLBAK OK - "));
}

TEST_CASE("health: no backup at all is CRITICAL and names database and target", "[health]") {
  HealthTargetObservation t;
  t.target = "offsite";
  auto r = evaluate_health({db_with({t})}, kNow);
  CHECK(r.state == HealthState::kCritical);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].database == "shop");
  CHECK(r.findings[0].target == "offsite");
  CHECK_THAT(r.summary, Catch::StartsWith("SQLBAK CRITICAL - ") && Catch::Contains("'shop'") &&
                            Catch::Contains("'offsite'") && Catch::Contains("no backup at all"));
}

TEST_CASE("health: age against max_age and twice max_age", "[health]") {
  CHECK(evaluate_health({db_with({target_with_backup(48 * kHour - 1000)})}, kNow).state ==
        HealthState::kOk);
  auto warn = evaluate_health({db_with({target_with_backup(50 * kHour)})}, kNow);
  CHECK(warn.state == HealthState::kWarning);
  CHECK_THAT(warn.findings[0].message, Catch::Contains("2d old") && Catch::Contains("max_age 2d"));
  CHECK(evaluate_health({db_with({target_with_backup(96 * kHour + 1000)})}, kNow).state ==
        HealthState::kCritical);
}

TEST_CASE("health: a failed verification of a recent backup is CRITICAL", "[health]") {
  auto t = target_with_backup(kHour);
  t.failed_verifications.push_back({"20261124T000000Z-123456", kNow - kHour, "pack xyz: checksum mismatch"});
  auto r = evaluate_health({db_with({t})}, kNow);
  CHECK(r.state == HealthState::kCritical);
  CHECK_THAT(r.findings[0].message, Catch::Contains("20261124T000000Z-123456") &&
                                        Catch::Contains("checksum mismatch") &&
                                        Catch::Contains("sqlbakctl verify"));
}

TEST_CASE("health: an unusable target is CRITICAL with its error", "[health]") {
  HealthTargetObservation t;
  t.target = "local";
  t.access = Status(ErrorCode::kPermissionDenied, "target 'local' directory /x is not writable");
  auto r = evaluate_health({db_with({t})}, kNow);
  CHECK(r.state == HealthState::kCritical);
  REQUIRE(r.findings.size() == 1);  // not also "no backup at all": the cause is named once
  CHECK_THAT(r.findings[0].message, Catch::Contains("not writable"));
}

TEST_CASE("health: free space below the next backup's need or the database size", "[health]") {
  auto t = target_with_backup(kHour);
  t.free_bytes = 5000;
  CHECK(evaluate_health({db_with({t})}, kNow).state == HealthState::kOk);
  t.free_bytes = 500;  // below the database's 1000 bytes, above the 100 stored
  CHECK(evaluate_health({db_with({t})}, kNow).state == HealthState::kWarning);
  t.free_bytes = 50;  // below what the last backup stored
  CHECK(evaluate_health({db_with({t})}, kNow).state == HealthState::kCritical);
}

TEST_CASE("health: the worst finding leads, and the summary counts the rest", "[health]") {
  auto old = target_with_backup(50 * kHour);
  HealthTargetObservation none;
  none.target = "offsite";
  auto r = evaluate_health({db_with({old, none})}, kNow);
  CHECK(r.state == HealthState::kCritical);
  REQUIRE(r.findings.size() == 2);
  CHECK(r.findings[0].state == HealthState::kCritical);
  CHECK(r.findings[1].state == HealthState::kWarning);
  CHECK_THAT(r.summary, Catch::EndsWith("(+1 more)"));
}

TEST_CASE("health: a failed last attempt after a good backup is a WARNING", "[health]") {
  auto d = db_with({target_with_backup(kHour)});
  d.last_backup_error = "database is locked";
  d.last_backup_attempt_ms = kNow - 1000;
  auto r = evaluate_health({d}, kNow);
  CHECK(r.state == HealthState::kWarning);
  CHECK_THAT(r.findings[0].message, Catch::Contains("database is locked"));
}

TEST_CASE("health: JSON carries state, exit code and per-target details", "[health]") {
  auto t = target_with_backup(50 * kHour);
  t.free_bytes = 123456;
  std::vector<HealthDatabaseObservation> obs{db_with({t})};
  auto j = health_to_json(evaluate_health(obs, kNow), obs, kNow);
  CHECK(j["state"] == "WARNING");
  CHECK(j["exit_code"] == 1);
  CHECK(j["databases"][0]["state"] == "WARNING");
  CHECK(j["databases"][0]["targets"][0]["age_seconds"] == 50 * 3600);
  CHECK(j["databases"][0]["targets"][0]["free_bytes"] == 123456);
}

}  // namespace
}  // namespace sqlbak
