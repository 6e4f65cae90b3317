// The name of this host, as manifests, lock objects and lock files record it.
#pragma once

#include <string>

namespace sqlbak {

// gethostname(), or "localhost" when it fails or gives nothing (a name SMTP's
// EHLO accepts too).
std::string local_host_name();

}  // namespace sqlbak
