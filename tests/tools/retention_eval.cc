// retention_eval: apply_retention() from the command line, for
// tests/integration/test_retention_vs_restic.py.
//
// Reads one JSON document on stdin
//   {"policy": {"keep_last": N, "keep_hourly": N, "keep_daily": N, "keep_weekly": N,
//               "keep_monthly": N, "keep_yearly": N, "keep_within_seconds": S},
//    "backups": [{"id": "...", "time_unix": SECONDS}, ...],   // or "time_unix_ms"
//    "now_unix": SECONDS}                                       // optional, default: now
// (policy keys left out are 0, not the configuration's defaults), or a JSON
// array of such documents, and prints
//   {"decisions": [{"id": "...", "time_unix_ms": MS, "keep": true, "reasons": ["daily"]}, ...]}
// (newest first), or an array of those, one per input document. Local time is
// the process's ($TZ). Exit status 2 and a message on stderr for bad input.
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/config.h"
#include "lib/retention.h"

namespace {

using nlohmann::json;

sqlbak::RetentionPolicy read_policy(const json& p) {
  sqlbak::RetentionPolicy policy;
  policy.keep_last = p.value("keep_last", 0);
  policy.keep_hourly = p.value("keep_hourly", 0);
  policy.keep_daily = p.value("keep_daily", 0);
  policy.keep_weekly = p.value("keep_weekly", 0);
  policy.keep_monthly = p.value("keep_monthly", 0);
  policy.keep_yearly = p.value("keep_yearly", 0);
  policy.keep_within = std::chrono::seconds(p.value("keep_within_seconds", int64_t{0}));
  return policy;
}

json evaluate(const json& doc, int64_t default_now_ms) {
  const sqlbak::RetentionPolicy policy = read_policy(doc.at("policy"));
  std::vector<sqlbak::RetentionCandidate> candidates;
  for (const json& b : doc.at("backups")) {
    const int64_t ms = b.contains("time_unix_ms") ? b.at("time_unix_ms").get<int64_t>()
                                                  : b.at("time_unix").get<int64_t>() * 1000;
    candidates.push_back({b.at("id").get<std::string>(), ms});
  }
  const int64_t now_ms = doc.contains("now_unix") ? doc.at("now_unix").get<int64_t>() * 1000 : default_now_ms;

  json decisions = json::array();
  for (const sqlbak::RetentionDecision& d : sqlbak::apply_retention(policy, std::move(candidates), now_ms)) {
    decisions.push_back(
        {{"id", d.id}, {"time_unix_ms", d.created_unix_ms}, {"keep", d.keep}, {"reasons", d.reasons}});
  }
  return json{{"decisions", decisions}};
}

}  // namespace

int main() {
  // The one clock read: this is a test tool, the module itself takes `now`.
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  try {
    std::ostringstream text;
    text << std::cin.rdbuf();
    const json input = json::parse(text.str());
    json output;
    if (input.is_array()) {
      output = json::array();
      for (const json& doc : input) output.push_back(evaluate(doc, now_ms));
    } else {
      output = evaluate(input, now_ms);
    }
    std::cout << output.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "retention_eval: " << e.what() << "\n";
    return 2;
  }
}
