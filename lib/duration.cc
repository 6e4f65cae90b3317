#include "lib/duration.h"

#include <cstdint>
#include <limits>

namespace sqlbak {

namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;

struct DurationUnit {
  std::string_view name;
  int64_t micros;
};

// systemd's month and year: a year is 365.25 days and a month a twelfth of
// it (30.44 days), so that twelve months make a year.
constexpr int64_t kSecondsPerYear = 31'557'600;
constexpr int64_t kSecondsPerMonth = kSecondsPerYear / 12;

constexpr DurationUnit kParseUnits[] = {
    {"us", 1},
    {"usec", 1},
    {"ms", 1'000},
    {"msec", 1'000},
    {"s", kMicrosPerSecond},
    {"sec", kMicrosPerSecond},
    {"secs", kMicrosPerSecond},
    {"second", kMicrosPerSecond},
    {"seconds", kMicrosPerSecond},
    {"m", 60 * kMicrosPerSecond},
    {"min", 60 * kMicrosPerSecond},
    {"mins", 60 * kMicrosPerSecond},
    {"minute", 60 * kMicrosPerSecond},
    {"minutes", 60 * kMicrosPerSecond},
    {"h", 3'600 * kMicrosPerSecond},
    {"hr", 3'600 * kMicrosPerSecond},
    {"hrs", 3'600 * kMicrosPerSecond},
    {"hour", 3'600 * kMicrosPerSecond},
    {"hours", 3'600 * kMicrosPerSecond},
    {"d", 86'400 * kMicrosPerSecond},
    {"day", 86'400 * kMicrosPerSecond},
    {"days", 86'400 * kMicrosPerSecond},
    {"w", 604'800 * kMicrosPerSecond},
    {"week", 604'800 * kMicrosPerSecond},
    {"weeks", 604'800 * kMicrosPerSecond},
    {"M", kSecondsPerMonth * kMicrosPerSecond},
    {"month", kSecondsPerMonth * kMicrosPerSecond},
    {"months", kSecondsPerMonth * kMicrosPerSecond},
    {"y", kSecondsPerYear * kMicrosPerSecond},
    {"year", kSecondsPerYear * kMicrosPerSecond},
    {"years", kSecondsPerYear * kMicrosPerSecond},
};

struct FormatUnit {
  std::string_view name;
  int64_t seconds;
};

// Largest first, as systemd's format_timespan() prints them.
constexpr FormatUnit kFormatUnits[] = {
    {"y", kSecondsPerYear}, {"month", kSecondsPerMonth}, {"w", 604'800}, {"d", 86'400},
    {"h", 3'600},           {"min", 60},                 {"s", 1},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

const DurationUnit* find_unit(std::string_view name) {
  for (const DurationUnit& unit : kParseUnits) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

Status invalid(std::string_view text, const std::string& why) {
  return Status::InvalidArgument("invalid duration '" + std::string(text) + "': " + why);
}

// Parses to microseconds, the finest unit of the grammar, so that callers
// can truncate to the precision they store.
Result<int64_t> parse_micros(std::string_view text) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  size_t pos = 0;
  auto skip_spaces = [&] {
    while (pos < text.size() && is_space(text[pos])) ++pos;
  };
  skip_spaces();
  if (pos == text.size()) return invalid(text, "empty");

  int64_t total = 0;
  int groups = 0;
  while (pos < text.size()) {
    if (text[pos] == '-') return invalid(text, "negative spans are not allowed");
    if (!is_digit(text[pos])) {
      return invalid(text, "expected a number at '" + std::string(text.substr(pos)) + "'");
    }
    int64_t whole = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      int digit = text[pos++] - '0';
      if (whole > (kMax - digit) / 10) return invalid(text, "too large");
      whole = whole * 10 + digit;
    }
    std::string_view fraction;
    if (pos < text.size() && text[pos] == '.') {
      size_t start = ++pos;
      while (pos < text.size() && is_digit(text[pos])) ++pos;
      fraction = text.substr(start, pos - start);
      if (fraction.empty()) return invalid(text, "expected digits after '.'");
    }
    skip_spaces();
    size_t unit_start = pos;
    while (pos < text.size() && is_letter(text[pos])) ++pos;
    std::string_view unit_name = text.substr(unit_start, pos - unit_start);
    ++groups;

    int64_t unit_micros = kMicrosPerSecond;
    if (unit_name.empty()) {
      // "90" alone is 90 seconds; in "1h 30" the bare number is more likely a
      // mistake than seconds, so it is refused.
      skip_spaces();
      if (groups > 1 || pos < text.size()) {
        return invalid(text, "missing unit after '" + std::string(text.substr(0, unit_start)) + "'");
      }
    } else {
      const DurationUnit* unit = find_unit(unit_name);
      if (unit == nullptr) return invalid(text, "unknown unit '" + std::string(unit_name) + "'");
      unit_micros = unit->micros;
    }

    if (whole > kMax / unit_micros) return invalid(text, "too large");
    int64_t group = whole * unit_micros;
    // Each fraction digit is worth a tenth of the previous one; below a
    // microsecond nothing is left to add.
    int64_t digit_value = unit_micros;
    for (char c : fraction) {
      digit_value /= 10;
      if (digit_value == 0) break;
      const int64_t add = (c - '0') * digit_value;
      if (group > kMax - add) return invalid(text, "too large");
      group += add;
    }
    if (group > kMax - total) return invalid(text, "too large");
    total += group;
    skip_spaces();
  }
  return total;
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  Result<int64_t> micros = parse_micros(text);
  if (!micros.ok()) return micros.status();
  return std::chrono::seconds(*micros / kMicrosPerSecond);
}

Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
  Result<int64_t> micros = parse_micros(text);
  if (!micros.ok()) return micros.status();
  return std::chrono::milliseconds(*micros / 1'000);
}

std::string format_duration(std::chrono::seconds span) {
  int64_t remaining = span.count();
  if (remaining == 0) return "0s";
  std::string out;
  if (remaining < 0) {
    out = "-";
    // Negating the minimum would overflow; no caller has such a span.
    remaining = remaining == std::numeric_limits<int64_t>::min()
                    ? std::numeric_limits<int64_t>::max()
                    : -remaining;
  }
  bool first = true;
  for (const FormatUnit& unit : kFormatUnits) {
    int64_t count = remaining / unit.seconds;
    if (count == 0) continue;
    remaining -= count * unit.seconds;
    if (!first) out += ' ';
    out += std::to_string(count);
    out += unit.name;
    first = false;
  }
  return out;
}

}  // namespace sqlbak
