// Logging of sqlbakd: to the journal with structured fields (SQLBAK_DB=,
// SQLBAK_BACKUP=, SQLBAK_JOB=, PRIORITY=) when stderr is connected to it
// (JOURNAL_STREAM names stderr's device and inode), else plain lines on stderr
// through spdlog. Callers never pass secrets; messages name things, not keys.
// Thread-safety: callable from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace sqlbak::daemon {

enum class Priority { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

struct LogFields {
  std::string database = {};
  std::string backup = {};
  int64_t job = 0;  // 0: none
};

void log_init();
void log(Priority priority, const std::string& message, const LogFields& fields = {});

inline void log_info(const std::string& m, const LogFields& f = {}) { log(Priority::kInfo, m, f); }
inline void log_warning(const std::string& m, const LogFields& f = {}) { log(Priority::kWarning, m, f); }
inline void log_error(const std::string& m, const LogFields& f = {}) { log(Priority::kError, m, f); }

}  // namespace sqlbak::daemon
