// Metrics: what sqlbakd's `/metrics` endpoint exposes, in the Prometheus text
// exposition format, version 0.0.4 (docs/API.md lists every family).
//
// Two halves, like health.h and report.h:
//   - collect_metrics() reads the catalog (I/O; run it on the worker pool, it
//     is the daemon's `metrics` control request) and folds every job row into
//     aggregates per database and target: counters by result, the newest
//     successful backup, request counts and bytes per target.
//   - render_metrics() is pure: it turns that document, a `status` reply and a
//     `health` reply into exposition text. It knows nothing of the daemon, so
//     the unit tests feed it hand-made documents.
//
// Naming follows the Prometheus conventions: every name starts with `sqlbak_`,
// units are in the name (`_seconds`, `_bytes`), counters end in `_total`.
// Labels are `db` (database name) and `target` (target name), plus `result`,
// `method`, `version` where a family says so. Series exist only for databases
// and targets of the current configuration (the catalog may remember others).
//
// Thread-safety: no shared state. collect_metrics uses its Workspace, which
// belongs to one thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "lib/operations.h"
#include "lib/status.h"

namespace sqlbak {

// The catalog's aggregates, over the whole history, restricted to the
// configured databases and targets:
//   {"databases":[{"name","targets":[{"target",
//        "backups":{"success":N,"failure":N,"cancelled":N},
//        "verifications":{"success":N,"failure":N},
//        "last_success":{"id","started_ms","duration_ms","database_bytes",
//                        "stored_bytes","changed_pages"} or null}]}],
//    "targets":[{"target","stored_bytes","uploaded_bytes","downloaded_bytes",
//        "requests":{"put":N,"get":N,"list":N,"delete":N}}]}
// A backup that failed before it reached a target is counted under target "".
// "stored_bytes" of a target is what the recorded jobs added (backups) minus
// what they removed (prunes), never below 0: an estimate from the catalog, not
// a listing of the target.
// kIOError when the catalog cannot be opened.
Result<nlohmann::json> collect_metrics(Workspace& ws);

// The exposition text from STATUS (the `status` result: version, uptime,
// databases with their running job and next backup), COLLECTED (the document
// above) and HEALTH (the `health` result). COLLECTED or HEALTH may be null
// (their query failed): their families are then left out, and
// sqlbak_scrape_error{source} says which one is missing.
std::string render_metrics(const nlohmann::json& status, const nlohmann::json& collected,
                           const nlohmann::json& health);

// A label value escaped for the exposition format: backslash, double quote and
// newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

}  // namespace sqlbak
