#include "ctl/progress.h"

#include <cstdio>

namespace sqlbak::ctl {

void ProgressPrinter::update(const std::string& database, uint64_t done, uint64_t total) {
  if (total == 0) return;
  const uint64_t percent = done * 100 / total;
  if (terminal_) {
    std::fprintf(stderr, "\r%s [%-30s] %3u%%", database.c_str(),
                 std::string(percent * 30 / 100, '#').c_str(), static_cast<unsigned>(percent));
    return;
  }
  auto [it, fresh] = last_tenth_.emplace(database, percent / 10);
  if (!fresh && it->second == percent / 10) return;
  it->second = percent / 10;
  std::fprintf(stderr, "%s: %u%% of %llu pages\n", database.c_str(), static_cast<unsigned>(percent),
               static_cast<unsigned long long>(total));
}

void ProgressPrinter::finish() {
  if (terminal_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace sqlbak::ctl
