// Proleptic Gregorian calendar arithmetic on 64-bit day numbers (days since
// 1970-01-01), shared by the calendar-event parser and the retention policy.
// Pure functions, valid for any year an int64_t of days can hold.
#pragma once

#include <cstdint>

namespace sqlbak {

// A / B rounded towards negative infinity (B != 0).
int64_t floor_div(int64_t a, int64_t b);

// Days since 1970-01-01 of YEAR-MONTH-DAY (MONTH 1..12).
int64_t days_from_civil(int64_t year, int month, int day);

// The date of DAYS since 1970-01-01.
void civil_from_days(int64_t days, int64_t* year, int* month, int* day);

}  // namespace sqlbak
