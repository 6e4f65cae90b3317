#include <catch2/catch.hpp>

#include "lib/civil_date.h"

using namespace sqlbak;

TEST_CASE("civil dates and day numbers convert both ways, across eras and before 1970", "[calendar]") {
  CHECK(days_from_civil(1970, 1, 1) == 0);
  CHECK(days_from_civil(2000, 3, 1) == 11017);
  CHECK(days_from_civil(1969, 12, 31) == -1);
  CHECK(days_from_civil(2024, 2, 29) - days_from_civil(2024, 2, 28) == 1);
  CHECK(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28) == 1);  // 2100 is not a leap year
  CHECK(floor_div(-1, 400) == -1);
  CHECK(floor_div(-400, 400) == -1);
  CHECK(floor_div(399, 400) == 0);
  int64_t previous = days_from_civil(-1200, 1, 1) - 1;
  for (int64_t days = days_from_civil(-1200, 1, 1); days < days_from_civil(2800, 1, 1); days += 13) {
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    REQUIRE(days_from_civil(y, m, d) == days);
    REQUIRE(days > previous);
    previous = days;
  }
}
