// SHA-256 through OpenSSL's EVP interface: one-shot and incremental.
// Thread-safety: a Sha256 object is used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace sqlbak {

using Digest = std::array<uint8_t, 32>;

Digest sha256(const void* data, size_t size);
inline Digest sha256(std::string_view s) { return sha256(s.data(), s.size()); }

std::string to_hex(const Digest& d);
// Parses 64 lowercase or uppercase hex characters; false when TEXT is not that.
bool from_hex(std::string_view text, Digest* out);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Returns the digest; the object may not be updated afterwards.
  Digest finish();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace sqlbak
