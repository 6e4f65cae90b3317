// The client side of the control protocol: one request to sqlbakd over its
// Unix socket, progress events, one reply.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/protocol.h"
#include "lib/status.h"

namespace sqlbak::ctl {

// Why a remote call failed: the daemon could not be reached (exit 3), or it
// answered with an error (exit 1).
struct RemoteError {
  bool unreachable = false;
  Status status;
};

// Sends REQUEST to the daemon at SOCKET_PATH. ON_EVENT receives every event
// frame before the reply. Returns the reply's result, or fills ERROR.
std::optional<nlohmann::json> call_daemon(const std::string& socket_path, const Request& request,
                                          const std::function<void(const nlohmann::json&)>& on_event,
                                          RemoteError* error);

}  // namespace sqlbak::ctl
