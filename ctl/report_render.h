// Human output of `sqlbakctl report`: turns the report document of
// lib/report.h (the same JSON `--json` prints, from the daemon or --offline)
// into text for a terminal.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

namespace sqlbak::ctl {

// Prints REPORT on OUT: a header with the window, the totals, a table of the
// databases, the requests and bytes of each target, a chart of the bytes stored per day (per week or month when the
// window is long: at most about 60 lines), the most frequent errors and the
// recommendations. The chart's bars are drawn with the Unicode block elements
// when UNICODE_CHART (eighths of a cell), else with ASCII '#'. Missing fields
// print as "-": a report from an older daemon still renders.
void render_report(const nlohmann::json& report, std::ostream& out, bool unicode_chart);

}  // namespace sqlbak::ctl
