// The dashboard served at `/`: one HTML page with its CSS and JavaScript
// inline, compiled into sqlbakd (no CDN, no other request than the JSON API
// of the same server). It shows health per database, the latest backups, a
// 30-day chart of durations and stored bytes, and running jobs with their
// progress; it refreshes itself. Every string that comes from data is put in
// the page as text (textContent), never parsed as HTML.
//
// Thread-safety: immutable data, computed once.
#pragma once

#include <string>
#include <string_view>

namespace sqlbak::daemon {

// The page, UTF-8.
std::string_view dashboard_html();

// The Content-Security-Policy the page is served with: nothing may load from
// elsewhere, and only the page's own inline script and style (allowed by their
// SHA-256) run.
const std::string& dashboard_csp();

}  // namespace sqlbak::daemon
