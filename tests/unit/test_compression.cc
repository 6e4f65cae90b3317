#include <catch2/catch.hpp>

#include "lib/compression.h"

using namespace sqlbak;

TEST_CASE("every codec round-trips a block") {
  std::string input;
  for (int i = 0; i < 5000; ++i) input += "page " + std::to_string(i % 97) + " ";
  for (BlockCodec codec : {BlockCodec::kNone, BlockCodec::kZstd, BlockCodec::kGzip}) {
    std::string stored, back;
    REQUIRE(compress_block(codec, 3, input, &stored).ok());
    if (codec != BlockCodec::kNone) CHECK(stored.size() < input.size() / 4);
    REQUIRE(decompress_block(codec, stored, input.size(), &back).ok());
    CHECK(back == input);
  }
}

TEST_CASE("damaged or mis-sized blocks are corruption, not crashes") {
  std::string input(100000, 'x'), stored, back;
  for (BlockCodec codec : {BlockCodec::kZstd, BlockCodec::kGzip}) {
    stored.clear();
    REQUIRE(compress_block(codec, 3, input, &stored).ok());
    Status wrong_size = decompress_block(codec, stored, input.size() - 1, &back);
    CHECK(wrong_size.code() == ErrorCode::kCorruption);
    std::string damaged = stored.substr(0, stored.size() / 2);
    CHECK(decompress_block(codec, damaged, input.size(), &back).code() == ErrorCode::kCorruption);
  }
  CHECK(decompress_block(BlockCodec::kNone, "abc", 4, &back).code() == ErrorCode::kCorruption);
  CHECK(decompress_block(static_cast<BlockCodec>(9), "abc", 3, &back).code() == ErrorCode::kCorruption);
}

// Found by fuzz_pack: decompress_block() sized its output to the size a block
// header announces (up to 4 GiB) before decompressing anything.
TEST_CASE("a block size beyond the largest block is refused before allocating") {
  std::string largest(kMaxBlockRawSize, 'x'), stored, back;
  for (BlockCodec codec : {BlockCodec::kZstd, BlockCodec::kGzip, BlockCodec::kNone}) {
    INFO(static_cast<int>(codec));
    stored.clear();
    REQUIRE(compress_block(codec, 3, largest, &stored).ok());
    REQUIRE(decompress_block(codec, stored, largest.size(), &back).ok());
    CHECK(back == largest);
    std::string untouched;
    Status st = decompress_block(codec, stored, UINT32_MAX, &untouched);
    CHECK(st.code() == ErrorCode::kCorruption);
    CHECK(st.message().find("damaged block header") != std::string::npos);
    CHECK(untouched.capacity() < kMaxBlockRawSize);
    CHECK(decompress_block(codec, stored, kMaxBlockRawSize + 1, &back).code() == ErrorCode::kCorruption);
  }
}
