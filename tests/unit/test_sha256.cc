#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "lib/sha256.h"

using namespace sqlbak;

// FIPS 180-2 test vectors.
TEST_CASE("sha256 gives the standard digests, one-shot and incremental", "[sha256]") {
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(to_hex(sha256(two_blocks)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  Sha256 incremental;
  for (char c : two_blocks) incremental.update(&c, 1);
  CHECK(to_hex(incremental.finish()) == to_hex(sha256(two_blocks)));

  // One million 'a': many calls on one thread's reused context in a row.
  const std::string a_million(1000000, 'a');
  for (int i = 0; i < 3; ++i)
    CHECK(to_hex(sha256(a_million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 from several threads at once gives each its own digest", "[sha256]") {
  std::vector<std::string> inputs;
  for (int i = 0; i < 8; ++i) inputs.push_back(std::string(4096 + i, static_cast<char>('a' + i)));
  std::vector<Digest> expected;
  for (const std::string& s : inputs) expected.push_back(sha256(s));
  std::vector<int> mismatches(inputs.size(), 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < inputs.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i)
        if (sha256(inputs[t]) != expected[t]) ++mismatches[t];
    });
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < inputs.size(); ++t) CHECK(mismatches[t] == 0);
}
