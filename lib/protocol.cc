#include "lib/protocol.h"

namespace sqlbak {

using nlohmann::json;

std::string encode_frame(const json& body) {
  std::string text = body.dump();
  std::string frame;
  frame.reserve(4 + text.size());
  const uint32_t n = static_cast<uint32_t>(text.size());
  for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((n >> shift) & 0xff));
  frame += text;
  return frame;
}

Result<std::optional<json>> FrameDecoder::next() {
  if (buffer_.size() < 4) return std::optional<json>();
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = n << 8 | static_cast<uint8_t>(buffer_[i]);
  if (n == 0 || n > kMaxFrameBytes)
    return Status::InvalidArgument("control message of " + std::to_string(n) +
                                   " bytes (the limit is " + std::to_string(kMaxFrameBytes) + ")");
  if (buffer_.size() < 4 + static_cast<size_t>(n)) return std::optional<json>();
  json body = json::parse(buffer_.begin() + 4, buffer_.begin() + 4 + n, nullptr, false);
  buffer_.erase(0, 4 + static_cast<size_t>(n));
  if (body.is_discarded() || !body.is_object())
    return Status::InvalidArgument("control message is not a JSON object");
  return std::optional<json>(std::move(body));
}

json encode_request(const Request& r) {
  return json{{"v", kProtocolVersion}, {"command", r.command},
              {"args", r.args.is_object() ? r.args : json::object()}};
}

Result<Request> decode_request(const json& j) {
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int>() != kProtocolVersion)
    return Status::InvalidArgument("request has no or an unsupported protocol version (expected \"v\": " +
                                   std::to_string(kProtocolVersion) + ")");
  if (!j.contains("command") || !j["command"].is_string() || j["command"].get<std::string>().empty())
    return Status::InvalidArgument("request has no command");
  Request r;
  r.command = j["command"].get<std::string>();
  r.args = j.contains("args") ? j["args"] : json::object();
  if (!r.args.is_object()) return Status::InvalidArgument("request args must be an object");
  return r;
}

json reply_ok(json result) { return json{{"ok", true}, {"result", std::move(result)}}; }

json reply_error(const Status& st) {
  return json{{"ok", false}, {"error", {{"code", code_name(st.code())}, {"message", st.message()}}}};
}

json event(const std::string& name, json fields) {
  json e = fields.is_object() ? std::move(fields) : json::object();
  e["event"] = name;
  return e;
}

}  // namespace sqlbak
