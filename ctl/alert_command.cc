#include "ctl/alert_command.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "lib/alert.h"
#include "lib/alert_delivery.h"
#include "lib/config.h"
#include "lib/host_name.h"

namespace sqlbak::ctl {

int alert_test_command(const std::string& config_file, bool json) {
  ConfigLoadResult loaded = load_config(config_file);
  if (!loaded.config) {
    for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
    std::cerr << "sqlbakctl: alert test: " << config_file << " is not valid\n";
    return 1;
  }
  const AlertsConfig& alerts = loaded.config->alerts;
  const std::string host = local_host_name();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  AlertEvent event = make_test_alert(host, now);
  event.details = "Configuration: " + config_file;

  const std::vector<AlertChannelResult> results = send_alert_now(alerts, event);

  nlohmann::json doc = {{"host", host}, {"config", config_file}, {"results", nlohmann::json::array()}};
  for (const AlertChannelResult& r : results) {
    doc["results"].push_back({{"channel", r.channel},
                              {"url", r.url},
                              {"ok", r.ok},
                              {"error", r.ok ? nlohmann::json(nullptr) : nlohmann::json(r.error)},
                              {"attempts", r.attempts},
                              {"duration_ms", r.duration_ms}});
  }
  if (json) {
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    size_t url_width = 0;
    for (const AlertChannelResult& r : results) url_width = std::max(url_width, r.url.size());
    for (const AlertChannelResult& r : results) {
      std::cout << r.channel << std::string(8 - std::min<size_t>(r.channel.size(), 7), ' ') << r.url
                << std::string(url_width - r.url.size() + 2, ' ');
      const std::string tries = std::to_string(r.attempts) + (r.attempts == 1 ? " attempt" : " attempts");
      if (r.ok)
        std::cout << "delivered (" << tries << ", " << r.duration_ms << " ms)\n";
      else
        std::cout << "FAILED after " << tries << ": " << r.error << "\n";
    }
  }
  if (results.empty()) {
    std::cerr << "sqlbakctl: alert test: " << config_file
              << " configures no alert channel: add alerts.email or alerts.webhook\n";
    return 2;
  }
  bool all_ok = true;
  for (const AlertChannelResult& r : results) {
    if (r.ok) continue;
    all_ok = false;
    std::cerr << "sqlbakctl: alert test: " << describe(r) << "\n";
  }
  return all_ok ? 0 : 1;
}

}  // namespace sqlbak::ctl
