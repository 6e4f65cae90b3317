// The control protocol between sqlbakctl and sqlbakd (docs/PROTOCOL.md).
//
// Framing: each message is a 4-byte big-endian length N (1 <= N <=
// kMaxFrameBytes) followed by N bytes of UTF-8 JSON holding one object. A
// client sends one request per connection; the daemon answers with zero or
// more event frames (progress) and exactly one final reply, then closes.
//
// Pure: encoding and an incremental decoder; no sockets. Thread-safety: values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "lib/status.h"

namespace sqlbak {

inline constexpr uint32_t kMaxFrameBytes = 1 << 20;
inline constexpr int kProtocolVersion = 1;

// Wraps BODY (a JSON object) in a frame.
std::string encode_frame(const nlohmann::json& body);

// Accumulates bytes from a stream and yields whole messages.
class FrameDecoder {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next message, std::nullopt when more bytes are needed, or an error
  // (oversized or zero length frame, not a JSON object) after which the
  // stream is unusable.
  Result<std::optional<nlohmann::json>> next();
  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

struct Request {
  std::string command;   // "status", "backup", ...
  nlohmann::json args;   // an object
};

// {"v":1,"command":...,"args":{...}}
nlohmann::json encode_request(const Request& r);
// kInvalidArgument naming what is wrong (missing command, wrong version, args not an object).
Result<Request> decode_request(const nlohmann::json& j);

// Final replies: {"ok":true,"result":...} or {"ok":false,"error":{"code","message"}}.
nlohmann::json reply_ok(nlohmann::json result);
nlohmann::json reply_error(const Status& st);
// Events before the reply: {"event":NAME, ...fields}.
nlohmann::json event(const std::string& name, nlohmann::json fields);

}  // namespace sqlbak
