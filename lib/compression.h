// Block compression for pack objects: zstd, gzip (RFC 1952, readable with
// `gzip -d`) or none. Each call compresses one self-contained block.
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/config.h"
#include "lib/status.h"

namespace sqlbak {

// The codec byte stored in each pack block header (docs/FORMAT.md).
enum class BlockCodec : uint8_t { kNone = 0, kZstd = 1, kGzip = 2 };

BlockCodec codec_for(CompressionAlgorithm algorithm);

// Appends the compressed form of INPUT to OUT.
Status compress_block(BlockCodec codec, int level, std::string_view input, std::string* out);

// Decompresses INPUT, which must expand to exactly EXPECTED_SIZE bytes, into OUT
// (replacing its content). A size mismatch or a decoder error is kCorruption.
Status decompress_block(BlockCodec codec, std::string_view input, size_t expected_size,
                        std::string* out);

}  // namespace sqlbak
