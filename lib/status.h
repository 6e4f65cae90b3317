// Status and Result<T>: the value-returning error type used at every module
// boundary of the engine. Nothing in lib/ throws across its public API; callers
// test ok() and read code() / message().
//
// The error codes form the one table users see: ErrorCode maps to the exit status
// of sqlbakctl (exit_status()) and to the "error" field of its JSON output
// (code_name()).
//
// Thread-safety: values, no shared state.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace sqlbak {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad input from the user: config, path, existing file
  kUsage,            // a command used wrongly (sqlbakctl exits 2)
  kNotFound,         // a database, backup, object or file that does not exist
  kIOError,          // the operating system refused a read, write, fsync, rename
  kNoSpace,          // ENOSPC / EDQUOT: the target is full
  kCorruption,       // a checksum, format or integrity check failed
  kBusy,             // SQLite stayed busy/locked past the retry budget
  kLocked,           // another process holds the repository lock of the database
  kCancelled,        // the job was cancelled between steps
  kPermissionDenied, // EACCES / EPERM / EROFS
  kUnsupported,      // a format version or feature this build does not know
  kInternal,         // a bug: an invariant of sqlbak itself did not hold
};

// The short stable name of a code, as printed in JSON ("corruption", "no_space").
const char* code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Status Usage(std::string m) { return {ErrorCode::kUsage, std::move(m)}; }
  static Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Status IOError(std::string m) { return {ErrorCode::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {ErrorCode::kCorruption, std::move(m)}; }
  static Status Busy(std::string m) { return {ErrorCode::kBusy, std::move(m)}; }
  static Status Locked(std::string m) { return {ErrorCode::kLocked, std::move(m)}; }
  static Status Cancelled(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
  static Status Unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }
  static Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  // Turns an errno value into a Status whose message is "CONTEXT: strerror".
  // ENOSPC/EDQUOT become kNoSpace, ENOENT kNotFound, EACCES/EPERM/EROFS
  // kPermissionDenied, everything else kIOError.
  static Status FromErrno(int err, const std::string& context);

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // A copy whose message is "PREFIX: message"; the code is kept.
  Status WithContext(const std::string& prefix) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}     // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: !ok()
  const Status& status() const { return std::get<Status>(v_); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sqlbak

// Returns early from the enclosing function when EXPR yields a non-OK Status.
#define SQLBAK_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::sqlbak::Status _sqlbak_st = (expr);       \
    if (!_sqlbak_st.ok()) return _sqlbak_st;    \
  } while (0)
