#include "lib/status.h"

#include <cstring>

namespace sqlbak {

const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kUsage: return "usage";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kIOError: return "io_error";
    case ErrorCode::kNoSpace: return "no_space";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kLocked: return "locked";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Status Status::FromErrno(int err, const std::string& context) {
  ErrorCode code = ErrorCode::kIOError;
  switch (err) {
    case ENOSPC:
    case EDQUOT: code = ErrorCode::kNoSpace; break;
    case ENOENT: code = ErrorCode::kNotFound; break;
    case EACCES:
    case EPERM:
    case EROFS: code = ErrorCode::kPermissionDenied; break;
    default: break;
  }
  return Status(code, context + ": " + std::strerror(err));
}

Status Status::WithContext(const std::string& prefix) const {
  if (ok()) return *this;
  return Status(code_, prefix + ": " + message_);
}

}  // namespace sqlbak
