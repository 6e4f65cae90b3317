#include "lib/compression.h"

#include <zlib.h>
#include <zstd.h>

namespace sqlbak {

BlockCodec codec_for(CompressionAlgorithm algorithm) {
  switch (algorithm) {
    case CompressionAlgorithm::kNone: return BlockCodec::kNone;
    case CompressionAlgorithm::kZstd: return BlockCodec::kZstd;
    case CompressionAlgorithm::kGzip: return BlockCodec::kGzip;
  }
  return BlockCodec::kZstd;
}

namespace {

// zstd contexts are expensive to create; one per thread is reused across blocks.
ZSTD_CCtx* thread_cctx() {
  thread_local struct Holder {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    ~Holder() { ZSTD_freeCCtx(ctx); }
  } holder;
  return holder.ctx;
}
ZSTD_DCtx* thread_dctx() {
  thread_local struct Holder {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~Holder() { ZSTD_freeDCtx(ctx); }
  } holder;
  return holder.ctx;
}

Status gzip_compress(int level, std::string_view input, std::string* out) {
  z_stream zs{};
  // windowBits 15 + 16 selects the gzip wrapper.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Status::Internal("gzip: deflateInit2 failed");
  size_t start = out->size();
  out->resize(start + deflateBound(&zs, input.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  zs.avail_in = static_cast<uInt>(input.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data() + start);
  zs.avail_out = static_cast<uInt>(out->size() - start);
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("gzip: deflate did not finish");
  out->resize(start + produced);
  return Status::Ok();
}

Status gzip_decompress(std::string_view input, size_t expected, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Status::Internal("gzip: inflateInit2 failed");
  out->resize(expected);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  zs.avail_in = static_cast<uInt>(input.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(expected);
  int rc = inflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  bool consumed_all = zs.avail_in == 0;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != expected || !consumed_all)
    return Status::Corruption("gzip block does not decompress to " + std::to_string(expected) +
                              " bytes");
  return Status::Ok();
}

}  // namespace

Status compress_block(BlockCodec codec, int level, std::string_view input, std::string* out) {
  switch (codec) {
    case BlockCodec::kNone:
      out->append(input);
      return Status::Ok();
    case BlockCodec::kZstd: {
      size_t start = out->size();
      out->resize(start + ZSTD_compressBound(input.size()));
      size_t n = ZSTD_compressCCtx(thread_cctx(), out->data() + start, out->size() - start,
                                   input.data(), input.size(), level);
      if (ZSTD_isError(n)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
      out->resize(start + n);
      return Status::Ok();
    }
    case BlockCodec::kGzip:
      return gzip_compress(level, input, out);
  }
  return Status::Internal("unknown codec");
}

Status decompress_block(BlockCodec codec, std::string_view input, size_t expected_size,
                        std::string* out) {
  // The size comes from the block header: checked before OUT is sized to it.
  if (expected_size > kMaxBlockRawSize)
    return Status::Corruption("damaged block header: it announces " + std::to_string(expected_size) +
                              " bytes, more than a block holds (" + std::to_string(kMaxBlockRawSize) + ")");
  switch (codec) {
    case BlockCodec::kNone:
      if (input.size() != expected_size)
        return Status::Corruption("stored block has " + std::to_string(input.size()) +
                                  " bytes, expected " + std::to_string(expected_size));
      out->assign(input);
      return Status::Ok();
    case BlockCodec::kZstd: {
      out->resize(expected_size);
      size_t n = ZSTD_decompressDCtx(thread_dctx(), out->data(), expected_size, input.data(),
                                     input.size());
      if (ZSTD_isError(n))
        return Status::Corruption(std::string("zstd block: ") + ZSTD_getErrorName(n));
      if (n != expected_size)
        return Status::Corruption("zstd block decompresses to " + std::to_string(n) +
                                  " bytes, expected " + std::to_string(expected_size));
      return Status::Ok();
    }
    case BlockCodec::kGzip:
      return gzip_decompress(input, expected_size, out);
  }
  return Status::Corruption("unknown block codec " + std::to_string(static_cast<int>(codec)));
}

}  // namespace sqlbak
