#include "daemon/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sqlbak::daemon {
namespace {

bool g_to_journal = false;
std::shared_ptr<spdlog::logger> g_stderr;

// systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connected stderr to;
// if stderr is still that stream, structured journal entries are better.
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

spdlog::level::level_enum spd_level(Priority p) {
  switch (p) {
    case Priority::kError: return spdlog::level::err;
    case Priority::kWarning: return spdlog::level::warn;
    case Priority::kNotice:
    case Priority::kInfo: return spdlog::level::info;
    case Priority::kDebug: return spdlog::level::debug;
  }
  return spdlog::level::info;
}

}  // namespace

void log_init() {
  g_to_journal = stderr_is_journal();
  g_stderr = spdlog::stderr_logger_mt("sqlbakd");
  g_stderr->set_pattern("%Y-%m-%d %H:%M:%S %l: %v");
  g_stderr->flush_on(spdlog::level::debug);
}

void log(Priority priority, const std::string& message, const LogFields& f) {
  if (g_to_journal) {
    const std::string job = f.job > 0 ? std::to_string(f.job) : "";
    sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%d", static_cast<int>(priority),
                    "SYSLOG_IDENTIFIER=sqlbakd", "SQLBAK_DB=%s", f.database.c_str(),
                    "SQLBAK_BACKUP=%s", f.backup.c_str(), "SQLBAK_JOB=%s", job.c_str(), nullptr);
    return;
  }
  if (!g_stderr) log_init();
  std::string line = message;
  if (!f.database.empty() || f.job > 0) {
    line += " [";
    if (!f.database.empty()) line += "db=" + f.database;
    if (!f.backup.empty()) line += " backup=" + f.backup;
    if (f.job > 0) line += " job=" + std::to_string(f.job);
    line += "]";
  }
  g_stderr->log(spd_level(priority), "{}", line);
}

}  // namespace sqlbak::daemon
