#include "lib/timefmt.h"

#include <cstdio>
#include <ctime>

namespace sqlbak {

std::string format_iso_utc(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> parse_timestamp(std::string_view text, int64_t now_ms) {
  if (text == "now") return now_ms;
  const std::string s(text);
  int y = 0, mo = 0, d = 0, h = 23, mi = 59, sec = 59, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
    return Status::InvalidArgument("'" + s + "' is not a time (expected YYYY-MM-DD[THH:MM[:SS]][Z])");
  size_t pos = 10;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    int n = 0;
    sec = 0;
    if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
      return Status::InvalidArgument("'" + s + "' has a malformed time of day");
    pos += 1 + 5;
    if (pos < s.size() && s[pos] == ':') {
      if (std::sscanf(s.c_str() + pos + 1, "%2d%n", &sec, &n) != 1 || n != 2)
        return Status::InvalidArgument("'" + s + "' has malformed seconds");
      pos += 3;
    }
  }
  bool utc = false;
  int offset_minutes = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      utc = true;
    } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
      int oh = 0, om = 0;
      if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2)
        return Status::InvalidArgument("'" + s + "' has a malformed zone offset");
      utc = true;
      offset_minutes = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    } else {
      return Status::InvalidArgument("'" + s + "' has trailing characters");
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return Status::InvalidArgument("'" + s + "' is not a valid date and time");
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  tm.tm_isdst = -1;
  std::time_t t = utc ? timegm(&tm) - offset_minutes * 60 : std::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return Status::InvalidArgument("'" + s + "' is out of range");
  return static_cast<int64_t>(t) * 1000 + 999;  // the whole second counts
}

}  // namespace sqlbak
