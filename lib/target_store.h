// Opening the ObjectStore behind one configured target: the one place that
// knows which implementation serves which `type:` (local directory, S3).
#pragma once

#include <memory>

#include "lib/config.h"
#include "lib/object_store.h"
#include "lib/status.h"

namespace sqlbak {

// Opens TARGET. WRITABLE checks that the process may write there. A local
// directory that does not exist is kNotFound naming the target and its path.
Result<std::unique_ptr<ObjectStore>> open_target_store(const TargetConfig& target, bool writable);

}  // namespace sqlbak
