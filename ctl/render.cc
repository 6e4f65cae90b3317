#include "ctl/render.h"

#include "ctl/format.h"

#include <clocale>
#include <cstring>

#include "ctl/report_render.h"

namespace sqlbak::ctl {

using nlohmann::json;

namespace {

// Block characters for the report's chart only where the terminal's locale
// can show them.
bool locale_is_utf8() {
  const char* names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
  for (const char* n : names) {
    const char* v = std::getenv(n);
    if (v != nullptr && *v != '\0')
      return std::strstr(v, "UTF-8") != nullptr || std::strstr(v, "utf8") != nullptr ||
             std::strstr(v, "UTF8") != nullptr || std::strstr(v, "utf-8") != nullptr;
  }
  return false;
}

uint64_t u64(const json& j, const char* key) { return j.value(key, uint64_t{0}); }
std::string str(const json& j, const char* key) { return j.value(key, std::string()); }

void render_backups(const json& r, std::ostream& out, std::ostream& err) {
  // Without --wait the daemon only says what it started or joined.
  if (r.contains("message")) out << str(r, "message") << "\n";
  for (const json& b : r.value("backups", json::array()))
    out << str(b, "database") << ": backup " << str(b, "id") << " on " << str(b, "target") << ": "
        << u64(b, "page_count") << " pages (" << u64(b, "new_pages") << " new), "
        << human_bytes(u64(b, "stored_bytes")) << " stored, "
        << human_millis(b.value("duration_ms", int64_t{0})) << "\n";
  for (const json& e : r.value("errors", json::array()))
    err << "sqlbakctl: backup of " << str(e, "database") << " failed"
        << (str(e, "target").empty() ? "" : " on target " + str(e, "target")) << ": " << str(e, "error") << "\n";
}

// The last verification when there was one ("ok 2026-11-25T10:00:00Z",
// "FAILED 2026-..."), else what the backup's own check said.
std::string verification_text(const json& b) {
  const json& v = b.value("last_verification", json());
  if (!v.is_object()) return str(b, "verified");
  return (str(v, "result") == "success" ? "ok " : "FAILED ") + str(v, "time");
}

void render_list(const json& r, std::ostream& out) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "DATABASE", "TARGET", "CREATED", "KIND", "STORED", "SIZE", "RATIO", "DURATION", "VERIFIED"}};
  for (const json& b : r.value("backups", json::array()))
    rows.push_back({str(b, "id"), str(b, "database"), str(b, "target"), str(b, "created"),
                    str(b, "kind"), human_bytes(u64(b, "stored_bytes")),
                    human_bytes(u64(b, "database_bytes")),
                    ratio_text(u64(b, "database_bytes"), u64(b, "stored_bytes")),
                    human_millis(b.value("duration_ms", int64_t{0})), verification_text(b)});
  if (rows.size() == 1) {
    out << "no backups\n";
    return;
  }
  out << render_table(rows);
}

void render_show(const json& r, std::ostream& out) {
  const json& m = r.at("manifest");
  const json& s = m.value("settings", json::object());
  out << "id:            " << str(m, "id") << "\n"
      << "database:      " << str(m, "database") << " (" << str(m, "source_path") << ")\n"
      << "target:        " << str(r, "target") << "\n"
      << "created:       " << str(m, "created") << " on " << str(m, "host") << "\n"
      << "kind:          " << str(m, "kind") << "\n"
      << "pages:         " << u64(m, "page_count") << " x " << u64(m, "page_size") << " bytes ("
      << human_bytes(u64(m, "source_bytes")) << "), journal mode " << str(m, "journal_mode") << "\n"
      << "stored:        " << human_bytes(u64(m, "stored_bytes")) << " new (" << u64(m, "new_pages")
      << " new pages), ratio " << ratio_text(u64(m, "source_bytes"), u64(m, "stored_bytes")) << "\n"
      << "duration:      " << human_millis(m.value("duration_ms", int64_t{0})) << ", "
      << u64(m, "restarts") << " restart(s)\n"
      << "settings:      " << str(s, "compression") << " level " << s.value("compression_level", 0)
      << ", verify " << str(s, "verify") << ", step_pages " << u64(s, "step_pages") << "\n"
      << "verification:  " << str(m, "verification") << "\n"
      << "sqlite:        " << str(m, "sqlite_version") << "\n"
      << "objects:       " << m.value("packs", json::array()).size() << " pack(s), "
      << m.value("pages", json::array()).size() << " page run(s)\n";
}

void render_verify(const json& r, std::ostream& out, std::ostream& err) {
  const json& results = r.value("results", json::array());
  if (results.empty()) out << "no backups to verify\n";
  for (const json& v : results) {
    std::string label = str(v, "id");
    if (!str(v, "database").empty()) label += " (" + str(v, "database") + " on " + str(v, "target") + ")";
    if (v.value("ok", false)) {
      out << label << ": OK\n";
    } else {
      out << label << ": FAILED\n";
      err << "sqlbakctl: backup " << label << " failed verification: " << str(v, "error") << "\n";
    }
  }
}

void render_status(const json& r, std::ostream& out) {
  const int64_t up = r.value("uptime_seconds", int64_t{0});
  out << "sqlbakd " << str(r, "version") << ", pid " << r.value("pid", 0) << ", up "
      << human_millis(up * 1000) << ", config " << str(r, "config") << "\n\n";
  std::vector<std::vector<std::string>> rows{{"DATABASE", "LAST BACKUP", "RESULT", "AT", "NEXT BACKUP", "RUNNING"}};
  for (const json& d : r.value("databases", json::array())) {
    const json& last = d.value("last_backup", json());
    const json& run = d.value("running", json());
    std::string running = "-";
    if (run.is_object()) {
      const uint64_t total = u64(run, "total");
      running = "job " + std::to_string(run.value("job", 0)) + " " +
                (total > 0 ? std::to_string(u64(run, "done") * 100 / total) + "%" : "starting");
    }
    rows.push_back({str(d, "name"), last.is_object() && !str(last, "id").empty() ? str(last, "id") : "-",
                    last.is_object() ? str(last, "result") : "never", last.is_object() ? str(last, "time") : "-",
                    d.value("next_backup", json()).is_string() ? d["next_backup"].get<std::string>() : "-", running});
    if (last.is_object() && !str(last, "error").empty()) rows.back()[2] += ": " + str(last, "error");
  }
  out << render_table(rows);
}

void render_health(const json& r, std::ostream& out) {
  // The summary first, alone on its line: monitoring systems read that one.
  out << str(r, "summary") << "\n";
  for (const json& f : r.value("findings", json::array()))
    out << "  " << str(f, "state") << ": " << str(f, "message") << "\n";
  std::vector<std::vector<std::string>> rows{{"DATABASE", "TARGET", "STATE", "NEWEST BACKUP", "AGE", "FREE"}};
  for (const json& d : r.value("databases", json::array()))
    for (const json& t : d.value("targets", json::array()))
      rows.push_back({str(d, "name"), str(t, "target"), str(t, "state"),
                      t.value("newest_backup", json()).is_string() ? str(t, "newest_backup") : "-",
                      t.value("age_seconds", json()).is_number()
                          ? human_millis(t.value("age_seconds", int64_t{0}) * 1000)
                          : "-",
                      t.value("free_bytes", json()).is_number() ? human_bytes(u64(t, "free_bytes")) : "-"});
  if (rows.size() > 1) out << "\n" << render_table(rows);
}

void render_rotate(const json& r, std::ostream& out, std::ostream& err) {
  const bool dry = r.value("dry_run", false);
  for (const json& rot : r.value("rotations", json::array())) {
    out << str(rot, "database") << " on " << str(rot, "target") << ":";
    if (!str(rot, "error").empty()) {
      out << " not rotated\n";
      continue;
    }
    out << " keep " << rot.value("kept", json::array()).size() << ", "
        << (dry ? "would remove " : "remove ") << rot.value("removed", json::array()).size() << "\n";
    for (const json& k : rot.value("kept", json::array())) {
      std::string reasons;
      for (const json& reason : k.value("reasons", json::array()))
        reasons += (reasons.empty() ? "" : ", ") + reason.get<std::string>();
      out << "  keep    " << str(k, "id") << "  " << str(k, "created") << "  (" << reasons << ")\n";
    }
    for (const json& d : rot.value("removed", json::array()))
      out << "  " << (dry ? "would remove " : "remove  ") << str(d, "id") << "  " << str(d, "created")
          << "\n";
  }
  for (const json& p : r.value("prunes", json::array())) {
    if (!str(p, "error").empty()) continue;
    out << "prune " << str(p, "target") << ": " << (dry ? "would delete " : "deleted ")
        << u64(p, "packs_removed") << " of " << u64(p, "packs_total") << " pack(s), "
        << human_bytes(u64(p, "bytes_removed")) << " of " << human_bytes(u64(p, "bytes_before"))
        << (dry ? " (once the backups above are removed)" : "") << "\n";
    if (u64(p, "packs_repacked") > 0)
      out << "repack " << str(p, "target") << ": " << (dry ? "would repack " : "repacked ")
          << u64(p, "packs_repacked") << " mostly unused pack(s) into " << (dry ? "about " : "")
          << human_bytes(u64(p, "bytes_written")) << (dry ? "" : " (" + std::to_string(u64(p, "packs_written")) + " pack(s))")
          << ", " << (dry ? "freeing about " : "freed ") << human_bytes(u64(p, "bytes_reclaimed"))
          << "; " << u64(p, "manifests_rewritten") << " backup manifest(s) " << (dry ? "to rewrite" : "rewritten")
          << "\n";
  }
  for (const json& e : r.value("errors", json::array()))
    err << "sqlbakctl: rotate" << (str(e, "database").empty() ? "" : " of " + str(e, "database"))
        << (str(e, "target").empty() ? "" : " on target " + str(e, "target")) << " failed: "
        << str(e, "error") << "\n";
}

}  // namespace

void render(const std::string& command, const json& result, std::ostream& out, std::ostream& err) {
  if (command == "backup") return render_backups(result, out, err);
  if (command == "list") return render_list(result, out);
  if (command == "show") return render_show(result, out);
  if (command == "verify") return render_verify(result, out, err);
  if (command == "status") return render_status(result, out);
  if (command == "health") return render_health(result, out);
  if (command == "rotate") return render_rotate(result, out, err);
  if (command == "report") return render_report(result, out, locale_is_utf8());
  if (command == "restore") {
    out << "restored backup " << str(result, "id") << " of " << str(result, "database") << " ("
        << str(result, "created") << ", " << human_bytes(u64(result, "bytes")) << ") from "
        << str(result, "target") << " to " << str(result, "path") << "\n";
    return;
  }
  if (result.contains("message")) {
    out << str(result, "message") << "\n";
    return;
  }
  out << result.dump(2) << "\n";
}

int result_exit_status(const std::string& command, const json& result) {
  if (command == "verify")
    for (const json& v : result.value("results", json::array()))
      if (!v.value("ok", false)) return 1;
  if ((command == "backup" || command == "rotate") && !result.value("errors", json::array()).empty())
    return 1;
  if (command == "health") return result.value("exit_code", 3);
  return 0;
}

}  // namespace sqlbak::ctl
