// `sqlbakctl alert test`: sends one test alert through every channel of the
// config's `alerts:` (email, webhook), whatever their `on:`, right here in
// sqlbakctl (no daemon needed), and prints each channel's result. Deliveries
// retry as the daemon's do (lib/alert_delivery.h), so a dead server takes a
// few seconds to be reported.
#pragma once

#include <string>

namespace sqlbak::ctl {

// Loads CONFIG_FILE and sends the test alert. Prints one line per channel on
// stdout (with JSON: {"host","config","results":[{"channel","url","ok",
// "error","attempts","duration_ms"}]}), and one line per failed channel on
// stderr, naming the channel, its URL and the reason.
// Returns 0 when every channel delivered, 1 when one did not or the config is
// invalid, 2 when the config has no alert channel.
int alert_test_command(const std::string& config_file, bool json);

}  // namespace sqlbak::ctl
