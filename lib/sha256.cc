#include "lib/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace sqlbak {

Digest sha256(const void* data, size_t size) {
  Digest d{};
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; nothing sensible to do but abort.
  if (EVP_Digest(data, size, d.data(), &len, EVP_sha256(), nullptr) != 1) std::abort();
  return d;
}

std::string to_hex(const Digest& d) {
  static const char* kHex = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    s[2 * i] = kHex[d[i] >> 4];
    s[2 * i + 1] = kHex[d[i] & 15];
  }
  return s;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool from_hex(std::string_view text, Digest* out) {
  if (text.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) std::abort();
}
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }
void Sha256::update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }
Digest Sha256::finish() {
  Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, d.data(), &len);
  return d;
}

}  // namespace sqlbak
