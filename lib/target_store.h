// Opening the ObjectStore behind one configured target: the one place that
// knows which implementation serves which `type:` (local directory, S3).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "lib/config.h"
#include "lib/object_store.h"
#include "lib/status.h"

namespace sqlbak {

// Receives a store's warnings (an S3 lock taken over from an expired holder,
// a lock lost or not released), from whichever thread noticed: the lock
// refresher runs on a thread of its own. Must be thread-safe, and must stay
// callable as long as the store or any of its locks exists.
using StoreWarningHandler = std::function<void(const std::string&)>;

// Opens TARGET. WRITABLE checks that the process may write there. A local
// directory that does not exist is kNotFound naming the target and its path.
// ON_WARNING gets the store's warnings; when empty they go to stderr.
Result<std::unique_ptr<ObjectStore>> open_target_store(const TargetConfig& target, bool writable,
                                                       StoreWarningHandler on_warning = {});

}  // namespace sqlbak
