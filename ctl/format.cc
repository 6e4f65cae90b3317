#include "ctl/format.h"

#include <algorithm>
#include <cstdio>

namespace sqlbak::ctl {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string human_millis(int64_t ms) {
  char buf[32];
  if (ms < 60000)
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000);
  else
    std::snprintf(buf, sizeof buf, "%lld min %lld s", static_cast<long long>(ms / 60000),
                  static_cast<long long>(ms / 1000 % 60));
  return buf;
}

std::string ratio_text(uint64_t source, uint64_t stored) {
  if (stored == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fx", static_cast<double>(source) / static_cast<double>(stored));
  return buf;
}

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace sqlbak::ctl
