#include <catch2/catch.hpp>

#include <random>

#include "lib/repository.h"

using namespace sqlbak;

namespace {

Digest digest_with_prefix(std::mt19937_64& rng, uint8_t first, uint8_t second) {
  Digest d{};
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  d[0] = first;
  d[1] = second;
  return d;
}

}  // namespace

TEST_CASE("known pages are found by hash through the bucket index, absent ones are not", "[repository]") {
  std::mt19937_64 rng(7);
  KnownPages known;
  std::vector<Digest> present;
  // Random hashes, plus crowded buckets at both ends of the prefix range and
  // in the middle, where a bucket's bounds are easiest to get wrong.
  for (int i = 0; i < 20000; ++i) present.push_back(digest_with_prefix(rng, uint8_t(rng()), uint8_t(rng())));
  for (int i = 0; i < 50; ++i) {
    present.push_back(digest_with_prefix(rng, 0x00, 0x00));
    present.push_back(digest_with_prefix(rng, 0xff, 0xff));
    present.push_back(digest_with_prefix(rng, 0x80, 0x00));
    present.push_back(digest_with_prefix(rng, 0x7f, 0xff));
  }
  for (uint32_t i = 0; i < present.size(); ++i) known.pages.push_back({present[i], i % 7, i});
  known.index_pages();

  for (uint32_t i = 0; i < present.size(); ++i) {
    const KnownPage* k = known.find(present[i]);
    REQUIRE(k != nullptr);
    CHECK(k->hash == present[i]);
    CHECK(k->entry == i);
    CHECK(k->pack == i % 7);
  }
  for (uint8_t first : {0x00, 0x7f, 0x80, 0xff, 0x12}) {
    for (uint8_t second : {0x00, 0xff, 0x34}) {
      const Digest absent = digest_with_prefix(rng, first, second);
      CHECK(known.find(absent) == nullptr);
    }
  }
}

TEST_CASE("an empty set of known pages finds nothing, indexed or not", "[repository]") {
  std::mt19937_64 rng(9);
  KnownPages known;
  CHECK(known.find(digest_with_prefix(rng, 1, 2)) == nullptr);
  known.index_pages();
  CHECK(known.find(digest_with_prefix(rng, 0xff, 0xff)) == nullptr);
}
