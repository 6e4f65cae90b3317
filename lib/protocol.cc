#include "lib/protocol.h"

#include <cstdint>
#include <utility>

namespace sqlbak {

using nlohmann::json;

std::string encode_frame(const json& body) {
  // dump() escapes control characters, so the text holds no raw newline.
  return body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<std::optional<json>> FrameDecoder::next() {
  const size_t end = buffer_.find('\n');
  if (end == std::string::npos) {
    if (buffer_.size() > kMaxFrameBytes)
      return Status::InvalidArgument("control message longer than " + std::to_string(kMaxFrameBytes) +
                                     " bytes");
    return std::optional<json>();
  }
  if (end > kMaxFrameBytes)
    return Status::InvalidArgument("control message longer than " + std::to_string(kMaxFrameBytes) + " bytes");
  json body = json::parse(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
  buffer_.erase(0, end + 1);
  if (body.is_discarded() || !body.is_object())
    return Status::InvalidArgument("control message is not a JSON object");
  return std::optional<json>(std::move(body));
}

json encode_request(const Request& r) {
  return json{{"v", kProtocolVersion}, {"id", r.id}, {"command", r.command},
              {"args", r.args.is_object() ? r.args : json::object()}};
}

Result<Request> decode_request(const json& j) {
  // "v" is compared as a JSON number: get<int>() would read 4294967297 as 1.
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"] != kProtocolVersion)
    return Status::InvalidArgument("request has no or an unsupported protocol version (expected \"v\": " +
                                   std::to_string(kProtocolVersion) + ")");
  if (!j.contains("command") || !j["command"].is_string() || j["command"].get<std::string>().empty())
    return Status::InvalidArgument("request has no command");
  Request r;
  r.command = j["command"].get<std::string>();
  if (j.contains("id")) {
    const json& id = j["id"];
    // An unsigned id above INT64_MAX would wrap to a negative one.
    if (!id.is_number_integer() || (id.is_number_unsigned() && !std::in_range<int64_t>(id.get<uint64_t>())))
      return Status::InvalidArgument("request id must be an integer between " +
                                     std::to_string(INT64_MIN) + " and " + std::to_string(INT64_MAX));
    r.id = id.get<int64_t>();
  }
  r.args = j.contains("args") ? j["args"] : json::object();
  if (!r.args.is_object()) return Status::InvalidArgument("request args must be an object");
  return r;
}

std::string arg_text(const json& args, const char* key) {
  return args.contains(key) && args[key].is_string() ? args[key].get<std::string>() : "";
}

std::vector<std::string> arg_strings(const json& args, const char* key) {
  std::vector<std::string> out;
  if (args.contains(key) && args[key].is_array())
    for (const json& v : args[key])
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
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
