// Formatting for sqlbakctl's human output: sizes, durations, tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sqlbak::ctl {

std::string human_bytes(uint64_t bytes);     // "5.1 MiB"
std::string human_millis(int64_t ms);        // "0.8 s", "2 min 3 s"
std::string ratio_text(uint64_t source, uint64_t stored);  // "12.3x"

// Prints rows as aligned columns; the first row is the header.
std::string render_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace sqlbak::ctl
