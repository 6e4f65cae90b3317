// Block compression for pack objects: zstd, gzip (RFC 1952, readable with
// `gzip -d`) or none. Each call compresses one self-contained block.
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/config.h"
#include "lib/status.h"

namespace sqlbak {

// The codec byte stored in each pack block header (docs/FORMAT.md).
enum class BlockCodec : uint8_t { kNone = 0, kZstd = 1, kGzip = 2 };

BlockCodec codec_for(CompressionAlgorithm algorithm);

// The most bytes a block holds after decompression. Writers close a block once
// it holds 1 MiB of pages (lib/backup.cc, kBlockBytes), so a block is at most
// 1 MiB plus one page, and a page is at most 64 KiB. A block header that
// announces more is damaged; it is refused before anything is allocated.
inline constexpr size_t kMaxBlockRawSize = (1u << 20) + (64u << 10);

// Appends the compressed form of INPUT to OUT.
Status compress_block(BlockCodec codec, int level, std::string_view input, std::string* out);

// Decompresses INPUT, which must expand to exactly EXPECTED_SIZE bytes, into OUT
// (replacing its content). A size mismatch, an EXPECTED_SIZE above
// kMaxBlockRawSize or a decoder error is kCorruption.
Status decompress_block(BlockCodec codec, std::string_view input, size_t expected_size,
                        std::string* out);

}  // namespace sqlbak
