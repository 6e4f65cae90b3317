// `sqlbakctl calendar EXPR`: shows how a schedule expression is read and when
// it elapses next, printed exactly as `systemd-analyze calendar` prints it, so
// that schedules can be checked against systemd (and systemd's documentation)
// without the daemon. Runs entirely in sqlbakctl.
#pragma once

#include <string>

namespace sqlbak::ctl {

// Prints EXPR's original form (if it differs from the normalized one), its
// normalized form and its next ITERATIONS elapses after BASE_TIME (a timestamp
// as systemd-analyze --base-time takes it; empty means now), each with the
// same instant in UTC when the local zone is not UTC and its distance from now.
// Returns 0, or 1 after printing the error to stderr if EXPR or BASE_TIME is
// invalid.
int calendar_command(const std::string& expr, int iterations, const std::string& base_time);

}  // namespace sqlbak::ctl
