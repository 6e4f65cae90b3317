// Fuzzes the control-protocol decoder (lib/protocol.h) the way sqlbakd meets
// it: bytes from a socket, through FrameDecoder, then decode_request().
//
// Checked on every input:
//  - feeding the bytes at once or in small pieces yields the same messages and
//    errors (the decoder is incremental and must not depend on read sizes);
//  - each decoded message is a JSON object; a request that decodes re-encodes
//    (encode_request) to one that decodes to the same request, and survives a
//    trip through encode_frame() and a fresh FrameDecoder (one line, one
//    message);
//  - the argument readers (arg_text, arg_strings) accept whatever args hold.
// The input is kept below kMaxFrameBytes (run.sh's -max_len), so the
// oversized-line error is not reached here; the unit tests cover it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/protocol.h"

namespace {

using nlohmann::json;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_protocol: invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// One result of FrameDecoder::next(), as text: "M <json>" or "E <message>".
std::string outcome(const sqlbak::Result<std::optional<json>>& r) {
  if (!r.ok()) return "E " + r.status().message();
  return "M " + dump(**r);
}

// Everything the decoder yields for BYTES fed in pieces of the sizes in STEPS
// (cycled), asking for messages after every piece.
std::vector<std::string> decode_stream(std::string_view bytes, const std::vector<size_t>& steps,
                                       std::vector<json>* messages) {
  sqlbak::FrameDecoder decoder;
  std::vector<std::string> out;
  size_t pos = 0, k = 0;
  while (pos < bytes.size()) {
    const size_t n = std::min(steps[k++ % steps.size()], bytes.size() - pos);
    decoder.feed(bytes.substr(pos, n));
    pos += n;
    for (;;) {
      auto r = decoder.next();
      if (r.ok() && !r->has_value()) break;
      out.push_back(outcome(r));
      if (r.ok() && messages != nullptr) messages->push_back(**r);
    }
  }
  if (decoder.buffered() > bytes.size()) fail("buffered more than fed", std::to_string(decoder.buffered()));
  return out;
}

// nlohmann parses 1e999 as infinity, which dump() writes as null: such a
// request cannot survive a trip through text, by design of JSON.
bool has_nonfinite(const json& j) {
  if (j.is_number_float()) return !std::isfinite(j.get<double>());
  if (j.is_structured())
    for (const json& v : j)
      if (has_nonfinite(v)) return true;
  return false;
}

bool same_request(const sqlbak::Request& a, const sqlbak::Request& b) {
  return a.command == b.command && a.id == b.id && a.args == b.args;
}

void check_request(const json& message) {
  auto decoded = sqlbak::decode_request(message);
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) fail("empty error message", dump(message));
    return;
  }
  const sqlbak::Request& r = *decoded;
  if (r.command.empty()) fail("request without command accepted", dump(message));
  if (!r.args.is_object()) fail("non-object args accepted", dump(message));

  const json encoded = sqlbak::encode_request(r);
  auto again = sqlbak::decode_request(encoded);
  if (!again.ok()) fail("re-encoded request does not decode", dump(encoded) + ": " + again.status().message());
  if (!same_request(r, *again)) fail("re-encoded request differs", dump(message) + " vs " + dump(encoded));

  const std::string frame = sqlbak::encode_frame(encoded);
  if (frame.empty() || frame.back() != '\n' || frame.find('\n') != frame.size() - 1)
    fail("frame is not one line", frame);
  sqlbak::FrameDecoder decoder;
  decoder.feed(frame);
  auto next = decoder.next();
  if (!next.ok() || !next->has_value()) fail("encoded frame does not decode", frame);
  if (decoder.buffered() != 0) fail("frame left bytes behind", frame);
  if (!has_nonfinite(r.args)) {
    auto from_text = sqlbak::decode_request(**next);
    if (!from_text.ok() || !same_request(r, *from_text)) fail("request changed through text", frame);
  }

  for (const auto& [key, value] : r.args.items()) {
    (void)value;
    (void)sqlbak::arg_text(r.args, key.c_str());
    (void)sqlbak::arg_strings(r.args, key.c_str());
  }
  (void)sqlbak::encode_frame(sqlbak::event("progress", r.args));
  (void)sqlbak::encode_frame(sqlbak::reply_ok(r.args));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > sqlbak::kMaxFrameBytes) return -1;  // keep it out of the corpus
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  std::vector<json> messages;
  const std::vector<std::string> whole = decode_stream(bytes, {bytes.size() + 1}, &messages);
  const std::vector<std::string> pieces = decode_stream(bytes, {1, 2, 3, 5, 8, 13, 21, 34}, nullptr);
  if (whole != pieces) fail("decoding depends on read sizes", std::string(bytes));

  for (const json& m : messages) {
    if (!m.is_object()) fail("message is not an object", dump(m));
    check_request(m);
  }
  return 0;
}
