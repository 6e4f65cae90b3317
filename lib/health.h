// Health: is every database backed up, recently, verifiably, to targets that
// can take the next backup? One implementation for `sqlbakctl health`, the
// daemon's periodic check (which alerts on changes) and `/api/status`.
//
// evaluate_health() is pure: it judges observations gathered by
// observe_health() (which reads the targets and the catalog), so every rule
// is unit-tested without a disk or a clock.
//
// Rules, for each database and each of its targets:
//   - no backup at all                                          CRITICAL
//   - newest backup older than max_age                          WARNING
//   - newest backup older than twice max_age                    CRITICAL
//   - one of the newest `verify_latest` backups failed its last
//     verification                                              CRITICAL
//   - target unreachable or not writable                        CRITICAL
//   - free space below what the next backup needs (estimated as
//     the bytes the newest backup stored)                       CRITICAL
//   - free space below the size of the newest backup's database WARNING
//   - the last backup attempt failed (an older backup exists)   WARNING
// States order OK < WARNING < CRITICAL < UNKNOWN and map to the exit codes of
// the monitoring-plugins convention: 0, 1, 2, 3.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/operations.h"
#include "lib/status.h"

namespace sqlbak {

enum class HealthState { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
const char* to_string(HealthState s);  // "OK", "WARNING", ...

struct HealthTargetObservation {
  std::string target;
  Status access;  // opening the target for writing
  std::optional<int64_t> newest_backup_ms;
  std::string newest_backup_id;
  uint64_t newest_database_bytes = 0;
  uint64_t newest_stored_bytes = 0;
  // Among the newest verify_latest backups: those whose last verification failed.
  struct FailedVerification {
    std::string backup_id;
    int64_t verified_at_ms = 0;
    std::string error;
  };
  std::vector<FailedVerification> failed_verifications;
  std::optional<uint64_t> free_bytes;  // local targets
};

struct HealthDatabaseObservation {
  std::string name;
  std::chrono::seconds max_age{0};
  std::vector<HealthTargetObservation> targets;
  std::string last_backup_error;  // when the newest backup job failed
  int64_t last_backup_attempt_ms = 0;
};

struct HealthFinding {
  std::string database;
  std::string target;  // empty when about the database as a whole
  HealthState state = HealthState::kOk;
  std::string message;
};

struct HealthReport {
  HealthState state = HealthState::kOk;
  std::vector<HealthFinding> findings;  // worst first
  std::string summary;                  // one line, for monitoring systems
};

HealthReport evaluate_health(const std::vector<HealthDatabaseObservation>& databases, int64_t now_ms);

// Reads what evaluate_health needs for DATABASE (every configured database
// when empty). kNotFound for an unknown database.
Result<std::vector<HealthDatabaseObservation>> observe_health(Workspace& ws,
                                                              const std::string& database);

// {"state","exit_code","summary","findings":[{"database","target","state","message"}],
//  "databases":[{"name","state","targets":[{"target","state","newest_backup",
//  "newest_backup_time","age_seconds","free_bytes"}]}]}
nlohmann::json health_to_json(const HealthReport& report,
                              const std::vector<HealthDatabaseObservation>& observed, int64_t now_ms);

// observe + evaluate + to_json: the `health` command.
Result<nlohmann::json> check_health(Workspace& ws, const std::string& database);

}  // namespace sqlbak
