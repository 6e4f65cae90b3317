// Every sd_notify call of sqlbakd, in one place. Without NOTIFY_SOCKET (not
// started by systemd) each call is a silent no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace sqlbak::daemon {

void notify_ready(const std::string& status);
void notify_status(const std::string& status);
// RELOADING=1 with MONOTONIC_USEC, as systemd's Type=notify-reload expects.
void notify_reloading();
void notify_stopping();
void notify_watchdog();
// Half of WATCHDOG_USEC when the watchdog is enabled for this process.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace sqlbak::daemon
