// The name of this host, as manifests, lock objects and lock files record it.
#pragma once

#include <string>

namespace sqlbak {

// gethostname(), or "unknown-host" when it fails.
std::string local_host_name();

}  // namespace sqlbak
