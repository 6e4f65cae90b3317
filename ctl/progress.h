// Progress of backups on stderr: a bar redrawn in place on a terminal, a
// plain line per tenth otherwise (logs, pipes, CI).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace sqlbak::ctl {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool terminal) : terminal_(terminal) {}
  void update(const std::string& database, uint64_t done, uint64_t total);
  // Clears the bar from the terminal line.
  void finish();

 private:
  bool terminal_;
  std::map<std::string, uint64_t> last_tenth_;
};

}  // namespace sqlbak::ctl
