#include <catch2/catch.hpp>

#include "lib/protocol.h"

using namespace sqlbak;
using nlohmann::json;

TEST_CASE("frames round-trip whatever the chunking") {
  std::string stream = encode_frame(encode_request({"backup", {{"databases", {"shop", "é\nnewline"}}}, 7})) +
                       encode_frame(reply_ok({{"id", "x"}}));
  for (size_t chunk : {1, 3, 7, 1000}) {
    FrameDecoder d;
    std::vector<json> got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      d.feed(std::string_view(stream).substr(i, chunk));
      for (;;) {
        auto m = d.next();
        REQUIRE(m.ok());
        if (!m->has_value()) break;
        got.push_back(**m);
      }
    }
    REQUIRE(got.size() == 2);
    auto req = decode_request(got[0]);
    REQUIRE(req.ok());
    CHECK(req->command == "backup");
    CHECK(req->args["databases"][1] == "é\nnewline");
    CHECK(req->id == 7);
    CHECK(got[1]["ok"] == true);
  }
}

TEST_CASE("bad frames and requests are refused with a reason") {
  FrameDecoder big;
  big.feed(std::string(kMaxFrameBytes + 1, 'x'));  // no newline yet, already too long
  CHECK(big.next().status().message().find("longer than") != std::string::npos);
  FrameDecoder empty_line;
  empty_line.feed("\n");
  CHECK_FALSE(empty_line.next().ok());
  FrameDecoder not_json;
  not_json.feed("abc\n");
  CHECK(not_json.next().status().message().find("JSON") != std::string::npos);
  FrameDecoder partial;
  partial.feed("{\"v\":1,");
  REQUIRE(partial.next().ok());
  CHECK_FALSE(partial.next()->has_value());  // waits for the rest of the line
  FrameDecoder array;
  array.feed(encode_frame(json::array({1, 2})));
  CHECK_FALSE(array.next().ok());

  CHECK_FALSE(decode_request(json{{"command", "status"}}).ok());                   // no version
  CHECK_FALSE(decode_request(json{{"v", 99}, {"command", "status"}}).ok());        // future version
  CHECK_FALSE(decode_request(json{{"v", 1}}).ok());                                // no command
  CHECK_FALSE(decode_request(json{{"v", 1}, {"command", 5}}).ok());
  CHECK_FALSE(decode_request(json{{"v", 1}, {"command", "x"}, {"args", 3}}).ok());
  CHECK_FALSE(decode_request(json{{"v", 1}, {"command", "x"}, {"id", "seven"}}).ok());
  auto ok = decode_request(json{{"v", 1}, {"command", "status"}});
  REQUIRE(ok.ok());
  CHECK(ok->args.is_object());
  json e = reply_error(Status::NotFound("backup X does not exist"));
  CHECK(e["error"]["code"] == "not_found");
}

TEST_CASE("request arguments read as empty when missing or mistyped") {
  json args{{"id", "x"}, {"ids", {"a", 3, "b"}}, {"n", 5}};
  CHECK(arg_text(args, "id") == "x");
  CHECK(arg_text(args, "n").empty());
  CHECK(arg_text(args, "missing").empty());
  CHECK(arg_strings(args, "ids") == std::vector<std::string>{"a", "b"});
  CHECK(arg_strings(args, "id").empty());
}

// Found with the manifest's fuzz finding (docs/FUZZING.md): integers were
// read with get<int>() / get<int64_t>(), so "v": 2^32 + 1 passed as version 1
// and an id above INT64_MAX came back negative.
TEST_CASE("request integers out of their range are refused, not truncated") {
  CHECK_FALSE(decode_request(json{{"v", 4294967297ull}, {"command", "status"}}).ok());
  CHECK_FALSE(decode_request(json{{"v", -4294967295ll}, {"command", "status"}}).ok());
  CHECK_FALSE(decode_request(json{{"v", 1.0}, {"command", "status"}}).ok());
  auto big_id = decode_request(json{{"v", 1}, {"command", "status"}, {"id", 18446744073709551615ull}});
  REQUIRE_FALSE(big_id.ok());
  CHECK(big_id.status().message().find("request id") != std::string::npos);
  auto max_id = decode_request(json{{"v", 1}, {"command", "status"}, {"id", 9223372036854775807ull}});
  REQUIRE(max_id.ok());
  CHECK(max_id->id == INT64_MAX);
  auto min_id = decode_request(json::parse(R"({"v":1,"command":"status","id":-9223372036854775808})"));
  REQUIRE(min_id.ok());
  CHECK(min_id->id == INT64_MIN);
}
