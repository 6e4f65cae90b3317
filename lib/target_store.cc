#include "lib/target_store.h"

#include "lib/local_store.h"
#include "lib/s3_store.h"

namespace sqlbak {

Result<std::unique_ptr<ObjectStore>> open_target_store(const TargetConfig& target, bool writable,
                                                       StoreWarningHandler on_warning) {
  if (target.type == "local") {
    auto store = LocalObjectStore::open(target.name, target.path, writable);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ObjectStore>(std::move(store).value());
  }
  if (target.type == "s3") {
    S3StoreOptions options;
    options.on_warning = std::move(on_warning);
    auto store = S3ObjectStore::open(target, writable, std::move(options));
    if (!store.ok()) return store.status();
    return std::unique_ptr<ObjectStore>(std::move(store).value());
  }
  return Status::Unsupported("target '" + target.name + "' is of type " + target.type +
                             ", which this version of sqlbak cannot use yet");
}

}  // namespace sqlbak
