// The control protocol between sqlbakctl and sqlbakd (docs/PROTOCOL.md).
//
// Framing: JSON lines. Each message is one JSON object on one line, ended by
// "\n", at most kMaxFrameBytes long. A client sends one request per
// connection, with an "id" of its choosing; the daemon answers with zero or
// more event lines (progress) and exactly one final reply, each carrying the
// request's id, then closes.
//
// Pure: encoding and an incremental decoder; no sockets. Thread-safety: values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/status.h"

namespace sqlbak {

inline constexpr size_t kMaxFrameBytes = 1 << 20;
inline constexpr int kProtocolVersion = 1;

// BODY (a JSON object) as one line.
std::string encode_frame(const nlohmann::json& body);

// Accumulates bytes from a stream and yields whole messages.
class FrameDecoder {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next message, std::nullopt when more bytes are needed, or an error
  // (a line over kMaxFrameBytes, or not a JSON object). After an oversized
  // line the stream is unusable; other errors skip just that line.
  Result<std::optional<nlohmann::json>> next();
  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

struct Request {
  std::string command;   // "status", "backup", ...
  nlohmann::json args;   // an object
  int64_t id = 0;        // echoed in every event and reply
};

// {"v":1,"id":N,"command":...,"args":{...}}
nlohmann::json encode_request(const Request& r);
// kInvalidArgument naming what is wrong (missing command, wrong version, args not an object).
Result<Request> decode_request(const nlohmann::json& j);

// Reading request arguments: a missing or mistyped argument reads as empty.
std::string arg_text(const nlohmann::json& args, const char* key);
std::vector<std::string> arg_strings(const nlohmann::json& args, const char* key);

// Final replies: {"ok":true,"result":...} or {"ok":false,"error":{"code","message"}}.
// The server adds the request's "id".
nlohmann::json reply_ok(nlohmann::json result);
nlohmann::json reply_error(const Status& st);
// Events before the reply: {"event":NAME, ...fields}.
nlohmann::json event(const std::string& name, nlohmann::json fields);

}  // namespace sqlbak
